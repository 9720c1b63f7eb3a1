"""Determinism on CPU: the same seed and config give the same data, the same losses and the same
captions.

- Data: a fresh Python (another hash seed) builds ECMC-Synth's tiny preset and its data set
  byte-identical to the session's build (tests/test_synth.py checks the same within one process).
- Losses: the same short two-stage training run twice (tiny model, ECMC-Synth tiny) logs the same
  training and validation losses at every step, bit for bit, and ends with identical weights.
- Captions: greedy captions of the validation split from the two runs' checkpoints are identical,
  and seeded sampling repeats itself.

Feature-cache files are compared as tensors and metadata, not bytes, in tests/test_crash_safety.py:
safetensors writes metadata keys in a per-process hash order.
"""

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]


def tree(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_same_seed_same_data_in_a_fresh_python(tmp_path, tiny_synth_dataset):
    reference = tiny_synth_dataset.parent
    script = textwrap.dedent(f"""
        from processing_ecmc.dataset_build import build_dataset
        from processing_ecmc.dataset_io import save_dataset
        from processing_ecmc.synth import generate_synth
        generate_synth({str(tmp_path / "synth")!r}, preset="tiny", seed=0, progress=False)
        dsd, _ = build_dataset({str(reference / "synth" / "manifest.jsonl")!r}, min_duration=1.0)
        save_dataset(dsd, {str(tmp_path / "dataset")!r})
    """)
    env = dict(os.environ, PYTHONHASHSEED="12345", OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert tree(tmp_path / "synth") == tree(reference / "synth")
    assert tree(tmp_path / "dataset") == tree(reference / "dataset")


def _config(tmp_path, name, tiny_checkpoint, tiny_synth_dataset) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({
        "seed": 0,
        "output_dir": str(tmp_path / name),
        "model": {"checkpoint": str(tiny_checkpoint)},
        "data": {"synth_preset": None, "dataset": str(tiny_synth_dataset), "cache_dir": str(tmp_path / "cache")},
        "stage1": {"epochs": 2, "batch_size": 4, "learning_rate": 1e-3},
        "stage2": {"epochs": 1, "batch_size": 4, "learning_rate": 3e-3},
        "training": {"logging_steps": 1},
    }))
    return path


def _losses(history):
    return [(h["step"], key, h[key]) for h in history for key in ("loss", "eval_loss") if key in h]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, tiny_checkpoint, tiny_synth_dataset):
    from training_ecmc.run import run_training
    from training_ecmc.config import load_config

    tmp_path = tmp_path_factory.mktemp("determinism")
    runs = {}
    for name in ("a", "b"):
        final, histories = run_training(load_config(_config(tmp_path, name, tiny_checkpoint, tiny_synth_dataset)))
        runs[name] = (final, histories)
    return runs


def test_same_config_same_losses_and_weights(two_runs):
    from safetensors.torch import load_file

    (final_a, hist_a), (final_b, hist_b) = two_runs["a"], two_runs["b"]
    for stage in (1, 2):
        losses = _losses(hist_a[stage])
        assert len([x for x in losses if x[1] == "loss"]) >= 3, losses
        assert _losses(hist_b[stage]) == losses  # exactly equal, every step
    weights_a, weights_b = load_file(final_a / "model.safetensors"), load_file(final_b / "model.safetensors")
    assert weights_a.keys() == weights_b.keys()
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    assert (final_a.parent / "stage1" / "rank0.weights.sha256").read_text() == \
        (final_b.parent / "stage1" / "rank0.weights.sha256").read_text()


def test_same_checkpoint_same_captions(two_runs, tiny_synth_dataset):
    from evaluation_ecmc.run_evaluation import caption_split
    from modeling_ecmc import ECMCForConditionalGeneration
    from processing_ecmc.dataset_io import load_dataset_dict
    from processing_ecmc.cached_dataset import cached_dataset
    from modeling_ecmc.processing_ecmc import ECMCProcessor

    rows = load_dataset_dict(tiny_synth_dataset)["validation"]
    captions = {}
    for name, (final, _) in two_runs.items():
        model = ECMCForConditionalGeneration.from_pretrained(final).eval()
        processor = ECMCProcessor.from_pretrained(final, trust_remote_code=False)
        dataset = cached_dataset(model, processor, rows, final.parent.parent / "cache", progress=False)
        captions[name] = caption_split(model, processor, dataset, batch_size=2, max_new_tokens=12)
    (text_a, h_e_a, h_c_a), (text_b, h_e_b, h_c_b) = captions["a"], captions["b"]
    assert text_a == text_b and len(text_a) == len(rows)
    assert (h_e_a == h_e_b).all() and (h_c_a == h_c_b).all()

    # seeded sampling repeats itself
    from processing_ecmc.cached_dataset import collate_cached

    batch = collate_cached([dataset[i] for i in range(len(dataset))])
    for key in ("index", "emotion_labels", "cognition_labels"):
        batch.pop(key, None)
    prompt = processor.caption_inputs(batch=len(rows))
    sampled = []
    for _ in range(2):
        torch.manual_seed(7)
        with torch.no_grad():
            sampled.append(model.generate(**prompt, **batch, max_new_tokens=12, do_sample=True, top_k=10, top_p=0.95))
    assert torch.equal(sampled[0], sampled[1])
    assert json.dumps(text_a)  # plain strings
