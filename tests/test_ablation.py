"""Table 5 ablations on one command, on a tiny checkpoint: a modality subset and the no-contrastive
variant are trained from one shared base, evaluated and put in one table."""

import json

import pytest
import yaml

from evaluation_ecmc.ablation import VARIANTS, run_ablation
from modeling_ecmc import ECMCForConditionalGeneration


def write_config(tmp_path, tiny_checkpoint, tiny_synth_dataset):
    """One epoch per stage on the tiny model: what every variant starts from."""
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "model": {"checkpoint": str(tiny_checkpoint)},
        "data": {"synth_preset": None, "dataset": str(tiny_synth_dataset)},
        "stage1": {"epochs": 1, "batch_size": 4, "learning_rate": 1e-3},
        "stage2": {"epochs": 1, "batch_size": 4, "learning_rate": 1e-3},
        "evaluate": {"max_new_tokens": 8, "batch_size": 4},
    }))
    return config


def test_ablation_table(tmp_path, tiny_checkpoint, tiny_synth_dataset):
    config = write_config(tmp_path, tiny_checkpoint, tiny_synth_dataset)
    out = tmp_path / "ablation"
    first = run_ablation(config, variants=["audio+text"], output=out)
    assert not (out / "audio+text" / "checkpoint").exists()  # checkpoints (~6 GB offline) deleted by default
    # resumable: the finished variant's report is reused, not retrained
    rows = run_ablation(config, variants=["audio+text", "no-contrastive"], output=out, keep_checkpoints=True)
    assert rows[0] == first[0]
    assert [r["variant"] for r in rows] == ["audio+text", "no-contrastive"]
    assert all(0 <= r["F_BERT"] <= 1 for r in rows)

    # the subset variant drops the video Q-Formers of the shared base model
    base = ECMCForConditionalGeneration.from_pretrained(out / "base", modalities=list(VARIANTS["audio+text"][0]),
                                                        ignore_mismatched_sizes=True)
    assert set(base.model.bridge["emotion"].qformers) == {"audio", "text"}
    # without EmoCL and CogCL stage 1 has nothing to learn: skipped, the base BridgeNet goes to stage 2
    stage1 = out / "no-contrastive" / "stage1"
    assert (stage1 / "best" / "ecmc_complete.json").exists() and not (stage1 / "log_history.json").exists()
    table = (out / "ablation.md").read_text()
    assert "F.BERT" in table and table.count("\n| ✓") == 2  # one row per variant
    assert "| emotion read-back | cognition exact | k-NN h_e | k-NN h_c |" in table.splitlines()[4]
    assert all(0 <= r["cognition_exact"] <= 1 and 0 <= r["knn_h_c"] <= 1 for r in rows)
    assert json.loads((out / "ablation.json").read_text()) == rows


def test_ablation_over_seeds(tmp_path, tiny_checkpoint, tiny_synth_dataset):
    config = write_config(tmp_path, tiny_checkpoint, tiny_synth_dataset)
    out = tmp_path / "ablation"
    with pytest.raises(ValueError, match="at least two different seeds"):
        run_ablation(config, variants=["text"], output=out, seeds=[3])
    [row] = run_ablation(config, variants=["text"], output=out, seeds=[3, 4])
    assert [r["seed"] for r in row["runs"]] == [3, 4] == row["seeds"]
    for seed in (3, 4):  # each seed trains its own run, with that seed in both stages
        trained = yaml.safe_load((out / "text" / f"seed{seed}" / "config.yaml").read_text())
        assert trained["seed"] == trained["stage1"]["seed"] == trained["stage2"]["seed"] == seed
    values = [r["knn_h_e"] for r in row["runs"]]
    assert row["knn_h_e"] == pytest.approx(sum(values) / 2)
    assert row["knn_h_e_sd"] == pytest.approx(abs(values[0] - values[1]) / 2 ** 0.5)
    line = (out / "ablation.md").read_text().splitlines()[-1]
    assert line.count(" ± ") == 8  # every score column shows its spread
    assert "over seeds 3, 4" in (out / "ablation.md").read_text()
