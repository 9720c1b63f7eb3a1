"""Shared fixtures: a tiny random ECMC config (fast unit tests) and the real offline-default
checkpoint (MiniLM + SmolLM2 weights), built once per test session."""

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from modeling_ecmc.presets import TINY_RANDOM as TINY  # noqa: E402  (after the environment is set)
from modeling_ecmc.presets import tiny_config  # noqa: E402,F401


def tiny_raw_inputs(batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(
        pixel_values_videos=torch.randn(batch, 4, 3, 32, 32, generator=g),
        input_values=torch.randn(batch, 1600, generator=g),
        audio_attention_mask=torch.ones(batch, 1600, dtype=torch.long),
        text_input_ids=torch.randint(3, 100, (batch, 7), generator=g),
        text_attention_mask=torch.ones(batch, 7, dtype=torch.long),
    )


def tiny_prompt(batch=2, extra=(5, 6, 7)):
    return torch.tensor([[1] + [120] * 4 + [121] * 4 + list(extra)] * batch)


@pytest.fixture(scope="session")
def offline_checkpoint(tmp_path_factory):
    """The offline default (untrained BridgeNet) saved as a checkpoint folder."""
    from modeling_ecmc.build_offline import save_checkpoint
    from modeling_ecmc.presets import build_offline_default

    torch.manual_seed(0)
    model, processor = build_offline_default()
    return save_checkpoint(model, processor, tmp_path_factory.mktemp("offline-default"))


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A tiny random ECMC with the real tokenizers (MiniLM, SmolLM2), saved with its processor:
    fast enough to train in tests."""
    from transformers import AutoTokenizer

    from modeling_ecmc import ECMCForConditionalGeneration
    from modeling_ecmc.presets import build_processor, load_llm_tokenizer, minilm_path
    from modeling_ecmc.vocabulary_ecmc import COGNITION_TOKEN, EMOTION_TOKEN

    llm_tokenizer = load_llm_tokenizer()
    llm_tokenizer.add_special_tokens({"additional_special_tokens": [EMOTION_TOKEN, COGNITION_TOKEN]})
    config = tiny_config(
        video_config=dict(TINY["video_config"], image_size=32, num_frames=4),
        audio_config=dict(TINY["audio_config"], conv_dim=[32, 32, 32], conv_kernel=[10, 8, 4], conv_stride=[5, 8, 8]),
        text_encoder_config=dict(TINY["text_encoder_config"], vocab_size=30522),
        text_config=dict(TINY["text_config"], vocab_size=49152, bos_token_id=1, eos_token_id=2, pad_token_id=2),
        emotion_token_id=llm_tokenizer.convert_tokens_to_ids(EMOTION_TOKEN),
        cognition_token_id=llm_tokenizer.convert_tokens_to_ids(COGNITION_TOKEN),
    )
    torch.manual_seed(0)
    model = ECMCForConditionalGeneration(config)
    # random weights: greedy decoding degenerates (eos first, or one newline repeated) and writes no
    # text; the demo's and the CLI's tests need some (what it says is noise either way)
    model.generation_config.update(min_new_tokens=8, repetition_penalty=1.5)
    processor = build_processor(config, llm_tokenizer, AutoTokenizer.from_pretrained(minilm_path()))
    folder = tmp_path_factory.mktemp("tiny-checkpoint")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_synth_dataset(tmp_path_factory):
    """ECMC-Synth's tiny preset built into a saved DatasetDict."""
    from processing_ecmc.dataset_build import build_dataset
    from processing_ecmc.dataset_io import save_dataset
    from processing_ecmc.synth import generate_synth

    root = tmp_path_factory.mktemp("tiny-synth")
    manifest = generate_synth(root / "synth", preset="tiny", seed=0, progress=False)
    dsd, _ = build_dataset(manifest, min_duration=1.0)
    return save_dataset(dsd, root / "dataset")


@pytest.fixture(scope="session")
def interview_sessions(tmp_path_factory):
    """(root, manifest, truth): ECMC-Synth's interview preset, three sessions of two answers (~25 s each)."""
    import json

    from processing_ecmc.synth import generate_synth

    root = tmp_path_factory.mktemp("interview")
    manifest = generate_synth(root, preset="interview", num_subjects=3, utterances_per_subject=2, progress=False)
    truth = [json.loads(line) for line in (root / "sessions.jsonl").read_text().splitlines()]
    return root, manifest, truth
