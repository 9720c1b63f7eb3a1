"""The evaluation runner on a tiny checkpoint: every report file is written, numbers are in range,
and no caption or transcript reaches the log."""

import json
import logging

import yaml

from evaluation_ecmc.run_evaluation import main
from processing_ecmc.datasets_ecmc import load_dataset_dict


def test_evaluation_report(tmp_path, tiny_checkpoint, tiny_synth_dataset, caplog, capsys):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "output_dir": str(tmp_path / "run"),
        "data": {"synth_preset": None, "dataset": str(tiny_synth_dataset), "cache_dir": str(tmp_path / "cache")},
        "evaluate": {"max_new_tokens": 12, "batch_size": 2},
    }))
    with caplog.at_level(logging.INFO):
        main(["--checkpoint", str(tiny_checkpoint), "--config", str(config)])
    out = tmp_path / "run" / "evaluation"
    for name in ("report.md", "report.json", "captions.jsonl", "profiles.json", "loss_curves.png",
                 "tsne_h_e.png", "tsne_h_c.png", "figure4_predicted.png"):
        assert (out / name).is_file(), name
    data = json.loads((out / "report.json").read_text())
    ours = data["metrics"]["ECMC (ours)"]["caption"]
    assert 0 <= ours["BLEU-1"] <= 1 and 0 <= ours["F_BERT"] <= 1
    assert "Most frequent training caption" in data["metrics"]
    text_only = data["metrics"]["Text-only LLM (ECMC's decoder, transcript only)"]["caption"]
    assert 0 <= text_only["F_BERT"] <= 1
    assert data["knn"]["h_e / emotion"]["fitted_on"] > 0  # fitted on the training split, scored on test
    for disorder in ("depression", "anxiety"):
        rows = data["detection"][disorder]["rows"]
        assert list(rows) == ["no profile", "ECMC profile", "Reference-caption profile"]
    profiles = json.loads((out / "profiles.json").read_text())
    assert set(profiles) == set(load_dataset_dict(tiny_synth_dataset)["test"]["subject_id"])  # every subject
    report = (out / "report.md").read_text()
    assert "Table 1 layout" in report and "k-NN" in report and "Tables 3-4 layout" in report
    # a few generated captions beside their references (the report file, never the log)
    examples = report.split("## Example captions")[1].split("\n## ")[0]
    test_ids = load_dataset_dict(tiny_synth_dataset)["test"]["utterance_id"]
    assert [uid for uid in test_ids if f"**{uid}**" in examples] == test_ids[:4]  # evaluate.num_examples
    assert examples.count("reference:") == min(4, len(test_ids))
    captions = [json.loads(line)["caption"] for line in (out / "captions.jsonl").read_text().splitlines()]
    logged = caplog.text + capsys.readouterr().out
    assert not any(c.strip() and c.strip() in logged for c in captions if len(c.strip()) > 15)
