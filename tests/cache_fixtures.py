"""Shared by the feature-cache tests (test_cache_*.py, test_cached_dataset.py): a tiny ECMC and its
processor, real media, and helpers that build a cache and encode utterances directly. Import the
fixtures into a test module (``from cache_fixtures import built, data, direct, tiny  # noqa: F401``).

Real media: a tiny ECMC-Synth build (session MP4s cut by start/end) plus clips written with ffmpeg
(an audio-only WAV, a video without an audio track). The model is the tiny random config with
MiniLM-tokenizer-sized text embeddings and a HuBERT downsampling like the real one (50 frames/s).
"""

import json
import shutil
from collections import Counter

import pytest
import torch

from conftest import tiny_config
from media_fixtures import make_audio, make_video

from modeling_ecmc.modeling_ecmc import MODALITY_INPUT_NAMES  # noqa: F401  (re-exported for the tests)
from processing_ecmc.cache_build import build_feature_cache

MODALITIES = ("video", "audio", "text")
TEXT_ENCODER = dict(model_type="bert", hidden_size=24, num_hidden_layers=1, num_attention_heads=2,
                    intermediate_size=48, vocab_size=30522)
AUDIO_ENCODER = dict(model_type="hubert", hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, conv_dim=[32] * 4, conv_kernel=[10, 3, 3, 3], conv_stride=[5, 4, 4, 4],
                     num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, apply_spec_augment=False)


def make_model_and_processor(seed=0, **processor_kwargs):
    """Tiny ECMC (random weights from `seed`) and its processor (MiniLM tokenizer for both roles:
    the LLM tokenizer does not touch the cached features, and it loads in milliseconds)."""
    from transformers import AutoTokenizer

    from modeling_ecmc import ECMCForConditionalGeneration
    from modeling_ecmc.presets import build_processor, minilm_path

    config = tiny_config(text_encoder_config=TEXT_ENCODER, audio_config=AUDIO_ENCODER)
    torch.manual_seed(seed)
    model = ECMCForConditionalGeneration(config).eval()
    processor = build_processor(config, AutoTokenizer.from_pretrained(minilm_path()),
                                AutoTokenizer.from_pretrained(minilm_path()), **processor_kwargs)
    return model, processor


@pytest.fixture(scope="module")
def tiny():
    return make_model_and_processor()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """(rows, data_root): 6 synth utterances (two sessions) + audio-only, video-without-audio-track and
    no-transcript rows. Paths are relative to data_root, as in a manifest."""
    from processing_ecmc.synth import generate_synth

    root = tmp_path_factory.mktemp("synth")
    manifest = generate_synth(root, preset="tiny", progress=False)
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    rows = [r for r in rows if r["subject_id"] in ("s000", "s001")]
    assert len(rows) == 6
    (root / "clips").mkdir()
    make_audio(root / "clips" / "speech.wav", 1.5, rate=16000)
    make_video(root / "clips" / "silent.mp4", 1.0, fps=10, size=(64, 48))
    base = dict(rows[0], start=0.0, end=-1.0, video_path="", audio_path="")
    rows.append(dict(base, utterance_id="x_audio_only", audio_path="clips/speech.wav", transcript="Only my voice."))
    rows.append(dict(base, utterance_id="x_no_audio_track", video_path="clips/silent.mp4", transcript="No sound here."))
    rows.append(dict(rows[1], utterance_id="x_no_transcript", transcript=None))
    return rows, root


def copy_data(data, tmp_path):
    """A private copy of the media (for tests that touch or alter files)."""
    rows, root = data
    copy = tmp_path / "data"
    shutil.copytree(root, copy)
    return [dict(r) for r in rows], copy


class EncoderCounter:
    """Counts the samples each encoder of the model processes."""

    def __init__(self, model):
        self.samples = Counter()
        self.handles = [
            encoder.register_forward_hook(self._hook(m), with_kwargs=True)
            for m, encoder in model.model.encoders.items()
        ]

    def _hook(self, modality):
        def hook(module, args, kwargs, output):
            self.samples[modality] += output.last_hidden_state.shape[0]

        return hook

    def remove(self):
        for handle in self.handles:
            handle.remove()


def build(model, processor, rows, cache_dir, root, **kwargs):
    """build_feature_cache recording each utterance's status; returns (folder, statuses)."""
    statuses = {}
    callback = kwargs.pop("callback", None)

    def record(utterance_id, status):
        statuses[utterance_id] = status
        if callback:
            callback(utterance_id, status)

    kwargs.setdefault("batch_size", 4)
    folder = build_feature_cache(model, processor, rows, cache_dir, progress=False, data_root=root, callback=record, **kwargs)
    return folder, statuses


def direct_inputs(processor, row, root):
    """The processor's own inputs for `row`, with the cache's duration rule (none: the data build
    checked it; these clips are 1-1.5 s)."""
    path = lambda p: str(root / p) if p else None  # noqa: E731
    saved, processor.min_seconds = processor.min_seconds, 0
    try:
        return processor(videos=path(row["video_path"]), audios=path(row["audio_path"]), starts=row["start"],
                         ends=row["end"], transcripts=row["transcript"])
    finally:
        processor.min_seconds = saved


@pytest.fixture(scope="module")
def direct(tiny, data):
    """The processor's inputs for each utterance on its own (media decoded once for the module)."""
    _, processor = tiny
    rows, root = data
    return [direct_inputs(processor, row, root) for row in rows]


def direct_features(model, inputs):
    """The encoders run directly on one utterance: ({modality: (T, d)}, modality_mask (3,))."""
    with torch.no_grad():
        encoded = model.model.encode_modalities(**inputs)
    features = {}
    for m, (states, mask) in encoded.items():
        if inputs["modality_mask"][0, MODALITIES.index(m)]:
            features[m] = states[0] if mask is None else states[0][mask[0].bool()]
    return features, inputs["modality_mask"][0].bool()


@pytest.fixture(scope="module")
def built(tiny, data, tmp_path_factory):
    model, processor = tiny
    rows, root = data
    cache_dir = tmp_path_factory.mktemp("cache")
    counter = EncoderCounter(model)
    folder, statuses = build(model, processor, rows, cache_dir, root)
    counter.remove()
    return cache_dir, folder, statuses, counter.samples
