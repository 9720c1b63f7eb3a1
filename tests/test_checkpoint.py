"""The offline default with real weights (MiniLM, SmolLM2): Q-Former initialisation, and a saved
checkpoint that loads and generates in a fresh Python where our packages cannot be imported."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.slow

FRESH_PYTHON = textwrap.dedent(
    """
    import json, sys
    sys.modules["modeling_ecmc"] = None  # as if our packages were not installed
    sys.modules["processing_ecmc"] = None
    import numpy as np, torch
    from transformers import AutoConfig, AutoModel, AutoProcessor
    folder = sys.argv[1]
    config = AutoConfig.from_pretrained(folder, trust_remote_code=True)
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    rng = np.random.RandomState(0)
    inputs = processor(frames=[rng.randint(0, 255, (processor.num_frames, 64, 64, 3), dtype=np.uint8)],
                       waveforms=[rng.randn(32000).astype(np.float32) * 0.1],
                       transcripts=["I keep losing track of what I was saying."])
    with torch.no_grad():
        ids = model.generate(**inputs, max_new_tokens=10, do_sample=False)
    caption = processor.post_process_caption(ids, inputs["input_ids"].shape[1])[0]["caption"]
    print(json.dumps({"config": type(config).__name__, "model": type(model).__name__,
                      "processor": type(processor).__name__, "new_tokens": ids.shape[1] - inputs["input_ids"].shape[1],
                      "caption_chars": len(caption), "module": type(model).__module__}))
    """
)


def test_checkpoint_folder_contents(offline_checkpoint):
    names = {p.name for p in offline_checkpoint.iterdir()}
    assert {"config.json", "model.safetensors", "configuration_ecmc.py", "modeling_ecmc.py", "frontends_ecmc.py", "losses_ecmc.py",
            "processing_ecmc.py", "prompts_ecmc.py", "media_ecmc.py", "processor_config.json"} <= names
    assert not any(n.endswith((".bin", ".pt", ".pkl")) for n in names)
    auto_map = json.loads((offline_checkpoint / "config.json").read_text())["auto_map"]
    assert auto_map["AutoModel"] == auto_map["AutoModelForCausalLM"] == "modeling_ecmc.ECMCForConditionalGeneration"


def test_fresh_python_loads_and_generates(offline_checkpoint, tmp_path):
    script = tmp_path / "load.py"
    script.write_text(FRESH_PYTHON)
    result = subprocess.run([sys.executable, str(script), str(offline_checkpoint)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["config"] == "ECMCConfig" and report["model"] == "ECMCForConditionalGeneration"
    assert report["processor"] == "ECMCProcessor"
    assert report["module"].startswith("transformers_modules")  # the copied code, not our package
    assert report["new_tokens"] > 0 and report["caption_chars"] > 0


def test_our_processor_class_loads_a_checkpoint_without_a_remote_code_prompt(offline_checkpoint, tmp_path):
    # `from modeling_ecmc import ECMCProcessor` in a fresh Python (modeling_ecmc not imported first)
    code = "from modeling_ecmc import ECMCProcessor; print(type(ECMCProcessor.from_pretrained(__import__('sys').argv[1])).__name__)"
    result = subprocess.run([sys.executable, "-c", code, str(offline_checkpoint)], cwd=Path(__file__).parents[1],
                            capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "ECMCProcessor"
    assert "custom code" not in result.stderr and "model of type" not in result.stderr, result.stderr[-2000:]


@pytest.fixture(scope="module")
def loaded(offline_checkpoint):
    from transformers import AutoModel, AutoProcessor

    model = AutoModel.from_pretrained(offline_checkpoint, trust_remote_code=True).eval()
    return model, AutoProcessor.from_pretrained(offline_checkpoint, trust_remote_code=True)


def test_qformers_start_from_minilm_and_cross_attention_fresh(loaded):
    model, _ = loaded
    minilm = model.model.encoders["text"]
    for stream in model.model.bridge.values():
        for qformer in stream.qformers.values():
            layer, bert_layer = qformer.encoder.layer[1], minilm.encoder.layer[1]
            assert torch.equal(layer.attention.attention.query.weight, bert_layer.attention.self.query.weight)
            assert torch.equal(layer.intermediate_query.dense.weight, bert_layer.intermediate.dense.weight)
            assert torch.equal(layer.output_query.LayerNorm.weight, bert_layer.output.LayerNorm.weight)
            cross = qformer.encoder.layer[0].crossattention.attention.key.weight
            assert cross.shape == (384, 384) and not torch.equal(cross, bert_layer.attention.self.key.weight)


def test_llm_weights_are_the_real_smollm2(loaded):
    model, processor = loaded
    ids = processor.tokenizer("The capital of France is", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = model.language_model.generate(ids, max_new_tokens=3, do_sample=False)
    assert "Paris" in processor.tokenizer.decode(out[0, ids.shape[1]:])


def test_real_batched_generation_equals_one_at_a_time(loaded):
    model, processor = loaded
    rng = np.random.RandomState(1)
    frames = [rng.randint(0, 255, (processor.num_frames, 64, 64, 3), dtype=np.uint8) for _ in range(3)]
    waves = [rng.randn(n).astype(np.float32) * 0.1 for n in (16000, 24000, 32000)]
    texts = ["I feel fine today.", "What year is it? I am not sure.", "I, um, forgot the, the word."]
    batch = processor(frames=frames, waveforms=waves, transcripts=texts)
    with torch.no_grad():
        batched = model.generate(**batch, max_new_tokens=12, do_sample=False)
        for i in range(3):
            one = processor(frames=[frames[i]], waveforms=[waves[i]], transcripts=[texts[i]])
            single = model.generate(**one, max_new_tokens=12, do_sample=False)
            assert processor.tokenizer.decode(single[0]) == processor.tokenizer.decode(batched[i])
