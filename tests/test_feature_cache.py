"""Feature cache (processing_ecmc/feature_cache.py): cached features equal the encoders' outputs,
builds are resumable and atomic, corruption and stale media are detected, collation pads and masks.

Real media: a tiny ECMC-Synth build (session MP4s cut by start/end) plus clips written with ffmpeg
(an audio-only WAV, a video without an audio track). The model is the tiny random config with
MiniLM-tokenizer-sized text embeddings and a HuBERT downsampling like the real one (50 frames/s).
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import tiny_config, tiny_prompt
from media_fixtures import make_audio, make_video

from modeling_ecmc.modeling_ecmc import MODALITY_INPUT_NAMES
from processing_ecmc.feature_cache import (
    CacheError,
    CachedFeatureDataset,
    build_feature_cache,
    cache_file_name,
    cache_fingerprint,
    collate_cached,
    load_cached_features,
)

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
    path = lambda p: str(root / p) if p else None  # noqa: E731
    return processor(videos=path(row["video_path"]), audios=path(row["audio_path"]), starts=row["start"],
                     ends=row["end"], transcripts=row["transcript"])


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


# ----------------------------------------------------------------------------- correctness
def test_cached_features_equal_direct_encoding(tiny, data, built, direct):
    model, processor = tiny
    rows, root = data
    cache_dir, folder, statuses, samples = built
    fingerprint = cache_fingerprint(model, processor)
    assert folder == cache_dir / fingerprint[:16]
    assert set(statuses.values()) == {"computed"} and len(statuses) == len(rows)
    assert (folder / "cache_info.json").is_file()
    assert sorted(p.name for p in folder.glob("*.safetensors")) == sorted(cache_file_name(r["utterance_id"]) for r in rows)
    expected_masks = {"x_audio_only": [False, True, True], "x_no_audio_track": [True, False, True],
                      "x_no_transcript": [True, True, False]}
    for row, inputs in zip(rows, direct):
        cached = load_cached_features(cache_dir, row["utterance_id"], fingerprint)
        expected, mask = direct_features(model, inputs)
        assert cached["modality_mask"].tolist() == mask.tolist()
        assert cached["modality_mask"].tolist() == expected_masks.get(row["utterance_id"], [True, True, True])
        assert sorted(k for k in cached if k != "modality_mask") == sorted(f"{m}_features" for m in expected)
        for m, features in expected.items():
            stored = cached[f"{m}_features"]
            assert stored.dtype == torch.float16 and stored.shape == features.shape
            # built in batches of 4 (padded text), compared with single-utterance encoding: fp16 precision
            torch.testing.assert_close(stored.float(), features, rtol=2e-3, atol=2e-3)
    # the cache folder itself, or the file, are accepted too
    first = rows[0]["utterance_id"]
    same = load_cached_features(folder, first, fingerprint)
    by_file = load_cached_features(folder / cache_file_name(first), first, fingerprint)
    assert torch.equal(same["video_features"], by_file["video_features"])
    # audio padding never leaks into the stored frames: ~50 frames per second of segment
    row = rows[0]
    audio = load_cached_features(cache_dir, row["utterance_id"], fingerprint)["audio_features"]
    assert abs(audio.shape[0] - 50 * (row["end"] - row["start"])) <= 2


def test_model_output_from_cache_matches_raw_inputs(tiny, data, built, direct):
    model, processor = tiny
    rows, _ = data
    cache_dir, _, _, _ = built
    fingerprint = cache_fingerprint(model, processor)
    batch = collate_cached([load_cached_features(cache_dir, r["utterance_id"], fingerprint) for r in rows])
    with torch.no_grad():
        cached = model.model(**batch)
        for i, inputs in enumerate(direct):
            raw = model.model(**{k: v for k, v in inputs.items() if k in MODALITY_INPUT_NAMES})
            torch.testing.assert_close(cached.h_e[i], raw.h_e[0], atol=1e-2, rtol=0)
            torch.testing.assert_close(cached.h_c[i], raw.h_c[0], atol=1e-2, rtol=0)
            assert cached.modality_mask[i].tolist() == raw.modality_mask[0].tolist()
        # the stage-2 model reads the same batch
        out = model(input_ids=tiny_prompt(len(rows)), **batch)
    assert torch.isfinite(out.logits).all()
    torch.testing.assert_close(out.h_e, cached.h_e)


def test_second_build_recomputes_nothing(tiny, data, built):
    model, processor = tiny
    rows, root = data
    cache_dir, folder, _, first_samples = built
    assert first_samples["video"] == 8 and first_samples["audio"] == 8 and first_samples["text"] == 8
    mtimes = {p.name: p.stat().st_mtime_ns for p in folder.glob("*.safetensors")}
    counter = EncoderCounter(model)
    try:
        again, statuses = build(model, processor, rows, cache_dir, root)
    finally:
        counter.remove()
    assert again == folder
    assert set(statuses.values()) == {"reused"} and len(statuses) == len(rows)
    assert sum(counter.samples.values()) == 0
    assert {p.name: p.stat().st_mtime_ns for p in folder.glob("*.safetensors")} == mtimes


# ----------------------------------------------------------------------------- resume
class Interrupted(Exception):
    pass


def test_resume_after_interruption(tiny, data, tmp_path):
    model, processor = tiny
    rows, root = data

    def stop_after_three(utterance_id, status):
        if status == "computed" and len(list(folder.glob("*.safetensors"))) >= 3:
            raise Interrupted

    folder = tmp_path / "cache" / cache_fingerprint(model, processor)[:16]
    with pytest.raises(Interrupted):
        build(model, processor, rows, tmp_path / "cache", root, batch_size=2, callback=stop_after_three)
    done = sorted(folder.glob("*.safetensors"))
    assert len(done) == 3 and not list(folder.glob(".*.tmp"))
    # a temporary file left by a killed process is cleaned up; ours are atomic renames
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    leftover = folder / f".{cache_file_name('zzz')}.{dead.pid}.tmp"
    leftover.write_bytes(b"half a file")
    counter = EncoderCounter(model)
    try:
        _, statuses = build(model, processor, rows, tmp_path / "cache", root, batch_size=2)
    finally:
        counter.remove()
    assert Counter(statuses.values()) == {"reused": 3, "computed": len(rows) - 3}
    assert counter.samples["text"] == len(rows) - 3 - 1  # x_no_transcript has no text to encode
    assert not leftover.exists()
    fingerprint = cache_fingerprint(model, processor)
    for row in rows:
        load_cached_features(tmp_path / "cache", row["utterance_id"], fingerprint)


@pytest.mark.slow
def test_resume_after_sigkill(tiny, data, tmp_path):
    """A build killed with SIGKILL mid-run leaves only whole files; the rerun computes the rest."""
    model, processor = tiny
    rows, root = data
    rows_file = tmp_path / "rows.json"
    rows_file.write_text(json.dumps(rows))
    cache_dir = tmp_path / "cache"
    script = textwrap.dedent(f"""
        import json, sys, time
        sys.path[:0] = [{str(Path(__file__).parent)!r}, {str(Path(__file__).parent.parent)!r}]
        from test_feature_cache import make_model_and_processor
        from processing_ecmc.feature_cache import build_feature_cache
        model, processor = make_model_and_processor()
        rows = json.load(open({str(rows_file)!r}))
        build_feature_cache(model, processor, rows, {str(cache_dir)!r}, batch_size=1, progress=False,
                            data_root={str(root)!r}, callback=lambda u, s: time.sleep(0.3))
    """)
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    folder = cache_dir / cache_fingerprint(model, processor)[:16]
    deadline = time.monotonic() + 60
    try:
        while len(list(folder.glob("*.safetensors"))) < 3:
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the build did not start"
            time.sleep(0.05)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    written = len(list(folder.glob("*.safetensors")))
    assert 3 <= written < len(rows)
    _, statuses = build(model, processor, rows, cache_dir, root)
    assert Counter(statuses.values()) == {"reused": written, "computed": len(rows) - written}


# ----------------------------------------------------------------------------- corruption
def test_corrupt_files_are_detected_and_rebuilt(tiny, data, tmp_path, caplog):
    model, processor = tiny
    rows, root = data
    rows = rows[:4]
    fingerprint = cache_fingerprint(model, processor)
    folder, _ = build(model, processor, rows, tmp_path, root)
    ids = [r["utterance_id"] for r in rows]
    original = {u: load_cached_features(folder, u, fingerprint) for u in ids}
    paths = {u: folder / cache_file_name(u) for u in ids}
    # 0: one flipped bit in the tensor data; 1: truncated; 2: flipped byte in the JSON header; 3: intact
    data0 = bytearray(paths[ids[0]].read_bytes())
    data0[-100] ^= 0x01
    paths[ids[0]].write_bytes(bytes(data0))
    paths[ids[1]].write_bytes(paths[ids[1]].read_bytes()[:-500])
    data2 = bytearray(paths[ids[2]].read_bytes())
    data2[8] = ord("[")
    paths[ids[2]].write_bytes(bytes(data2))
    for u, problem in zip(ids[:3], ("checksum mismatch", "not a valid safetensors file", "not a valid safetensors file")):
        with pytest.raises(CacheError, match=problem) as error:
            load_cached_features(folder, u, fingerprint)
        assert str(paths[u]) in str(error.value) and error.value.path == str(paths[u])
    with pytest.raises(CacheError, match="checksum"):
        CachedFeatureDataset(rows, tmp_path, fingerprint, data_root=root)[0]
    with pytest.raises(CacheError, match="no cached features") as error:
        load_cached_features(folder, "never-built", fingerprint)
    assert cache_file_name("never-built") in str(error.value)
    with pytest.raises(CacheError, match="fingerprint"):
        load_cached_features(folder / cache_file_name(ids[3]), ids[3], "0" * 64)
    with pytest.raises(CacheError, match="holds utterance"):
        load_cached_features(paths[ids[3]], ids[2], fingerprint)

    with caplog.at_level("WARNING", logger="processing_ecmc.feature_cache"):
        _, statuses = build(model, processor, rows, tmp_path, root)
    assert statuses == {ids[0]: "rebuilt", ids[1]: "rebuilt", ids[2]: "rebuilt", ids[3]: "reused"}
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    for u in ids[:3]:
        assert str(paths[u]) in warned
    for row in rows:  # transcripts never reach the log
        assert row["transcript"] not in caplog.text
    for u in ids:
        rebuilt = load_cached_features(folder, u, fingerprint)
        for key, value in original[u].items():
            torch.testing.assert_close(rebuilt[key], value, rtol=0, atol=0)


# ----------------------------------------------------------------------------- invalidation
def test_fingerprint_covers_encoders_and_processor_settings(tiny):
    model, processor = tiny
    fingerprint = cache_fingerprint(model, processor)
    assert len(fingerprint) == 64 and cache_fingerprint(model, processor) == fingerprint
    processor.text_tokenizer(["state that a fast tokenizer keeps"], truncation=True, max_length=5, padding=True)
    assert cache_fingerprint(model.model, processor) == fingerprint  # an ECMCModel works too; no per-call state
    for name, value in (("num_frames", 8), ("max_text_tokens", 16)):
        saved = getattr(processor, name)
        setattr(processor, name, value)
        try:
            assert cache_fingerprint(model, processor) != fingerprint, name
        finally:
            setattr(processor, name, saved)
    other_model, _ = make_model_and_processor(seed=1)
    assert cache_fingerprint(other_model, processor) != fingerprint  # other encoder weights
    bias = model.model.encoders["video"].embeddings.patch_embeddings.projection.bias
    saved = bias.detach().clone()
    with torch.no_grad():
        bias.add_(1.0)
    try:
        assert cache_fingerprint(model, processor) != fingerprint  # weights changed in place
    finally:
        with torch.no_grad():
            bias.copy_(saved)
    assert cache_fingerprint(model, processor) == fingerprint
    model.config.text_feature_mode = "mean"
    try:
        assert cache_fingerprint(model, processor) != fingerprint
    finally:
        model.config.text_feature_mode = "tokens"


def test_touched_media_or_changed_transcript_invalidates_entries(tiny, data, tmp_path):
    model, processor = tiny
    rows, root = copy_data(data, tmp_path)
    rows = rows[:6]  # s000 (3 utterances of one session) and s001
    fingerprint = cache_fingerprint(model, processor)
    build(model, processor, rows, tmp_path / "cache", root)
    session = root / rows[0]["video_path"]
    stat = session.stat()
    os.utime(session, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    rows[4] = dict(rows[4], transcript=rows[4]["transcript"] + " And one more thing.")
    dataset = CachedFeatureDataset(rows, tmp_path / "cache", fingerprint, data_root=root)
    with pytest.raises(CacheError, match="stale"):
        dataset[0]
    with pytest.raises(CacheError, match="stale"):
        dataset[4]
    dataset[3]  # an untouched entry still reads
    _, statuses = build(model, processor, rows, tmp_path / "cache", root)
    touched = {r["utterance_id"] for r in rows if r["video_path"] == rows[0]["video_path"]}
    assert len(touched) == 3
    assert {u for u, s in statuses.items() if s == "rebuilt"} == touched | {rows[4]["utterance_id"]}
    assert Counter(statuses.values())["reused"] == 2
    dataset[0], dataset[4]
    # content fingerprints survive a copy that does not keep modification times
    _, statuses = build(model, processor, rows, tmp_path / "cache", root, media_fingerprint="sha256")
    assert set(statuses.values()) == {"rebuilt"}
    os.utime(session, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5 * 10**9))
    _, statuses = build(model, processor, rows, tmp_path / "cache", root, media_fingerprint="sha256")
    assert set(statuses.values()) == {"reused"}


# ----------------------------------------------------------------------------- collation, data set
def test_collate_pads_and_masks_with_a_missing_modality():
    d_v, d_a, d_t = 32, 32, 24
    v1, a1 = torch.randn(8, d_v).half(), torch.randn(5, d_a).half()
    v2, t2 = torch.randn(8, d_v).half(), torch.randn(4, d_t).half()
    a3, t3 = torch.randn(7, d_a).half(), torch.randn(2, d_t).half()
    items = [
        {"video_features": v1, "audio_features": a1, "modality_mask": torch.tensor([True, True, False])},
        {"video_features": v2, "text_features": t2, "modality_mask": torch.tensor([True, False, True])},
        {"audio_features": a3, "text_features": t3, "modality_mask": torch.tensor([False, True, True])},
    ]
    batch = collate_cached(items)
    assert batch["modality_mask"].tolist() == [[True, True, False], [True, False, True], [False, True, True]]
    assert batch["video_features"].shape == (3, 8, d_v) and batch["video_features"].dtype == torch.float32
    assert batch["audio_features"].shape == (3, 7, d_a) and batch["text_features"].shape == (3, 4, d_t)
    assert batch["audio_feature_mask"].tolist() == [[1] * 5 + [0] * 2, [0] * 7, [1] * 7]
    assert batch["text_feature_mask"].tolist() == [[0] * 4, [1] * 4, [1, 1, 0, 0]]
    assert batch["video_feature_mask"].tolist() == [[1] * 8, [1] * 8, [0] * 8]
    assert batch["audio_feature_mask"].dtype == torch.long
    torch.testing.assert_close(batch["audio_features"][0, :5], a1.float())
    assert not batch["audio_features"][0, 5:].any() and not batch["audio_features"][1].any()
    assert not batch["video_features"][2].any() and not batch["text_features"][0].any()
    torch.testing.assert_close(batch["text_features"][2, :2], t3.float())
    assert collate_cached(items, dtype=torch.float16)["text_features"].dtype == torch.float16
    # a modality absent for the whole batch is left out
    only_video = collate_cached([items[0]])
    assert "text_features" not in only_video and "text_feature_mask" not in only_video
    assert only_video["modality_mask"].tolist() == [[True, True, False]]
    # the model takes the batch; padding does not change a sample's embeddings
    model, _ = make_model_and_processor()
    with torch.no_grad():
        together = model.model(**batch)
        for i, item in enumerate(items):
            alone = model.model(**collate_cached([item]))
            torch.testing.assert_close(together.h_e[i], alone.h_e[0], atol=1e-5, rtol=1e-4)
    assert together.modality_mask.tolist() == batch["modality_mask"].tolist()


def test_cached_dataset_with_dataloader(tiny, data, built):
    from datasets import Dataset

    model, processor = tiny
    rows, root = data
    cache_dir, _, _, _ = built
    fingerprint = cache_fingerprint(model, processor)
    _, statuses = build(model, processor, Dataset.from_list(rows), cache_dir, root)  # rows from a datasets split
    assert set(statuses.values()) == {"reused"} and len(statuses) == len(rows)
    dataset = CachedFeatureDataset(Dataset.from_list(rows), cache_dir, fingerprint, data_root=root)
    assert len(dataset) == len(rows)
    item = dataset[2]
    assert item["emotion_label"].item() == rows[2]["emotion_label"]
    assert item["cognition_labels"].tolist() == rows[2]["cognition_labels"] and item["index"].item() == 2
    loader = torch.utils.data.DataLoader(dataset, batch_size=4, shuffle=False, collate_fn=collate_cached)
    batches = list(loader)
    assert [len(b["index"]) for b in batches] == [4, 4, 1]
    batch = batches[0]
    assert batch["emotion_labels"].tolist() == [r["emotion_label"] for r in rows[:4]]
    assert batch["cognition_labels"].shape == (4, 4)
    batch.pop("index")
    out = model.model(**batch)
    assert torch.isfinite(out.loss)
    with pytest.raises(CacheError, match="not cached"):
        CachedFeatureDataset(rows + [dict(rows[0], utterance_id="new")], cache_dir, fingerprint, data_root=root)


def test_pre_extracted_features_and_bad_rows(tiny, data, tmp_path):
    model, processor = tiny
    rows, root = data
    features = np.random.default_rng(0).standard_normal((11, 32)).astype(np.float32)
    np.save(tmp_path / "video.npy", features)
    row = dict(rows[6], utterance_id="npy", video_features_path=str(tmp_path / "video.npy"))
    folder, _ = build(model, processor, [row], tmp_path / "cache", root)
    cached = load_cached_features(folder, "npy", cache_fingerprint(model, processor))
    assert cached["modality_mask"].tolist() == [True, True, True]
    torch.testing.assert_close(cached["video_features"], torch.from_numpy(features).half())
    _, statuses = build(model.model, processor, [row], tmp_path / "cache", root)  # an ECMCModel works too
    assert statuses == {"npy": "reused"}
    np.save(tmp_path / "bad.npy", features[:, :7])
    with pytest.raises(ValueError, match="bad.npy"):
        build(model, processor, [dict(row, utterance_id="bad", video_features_path=str(tmp_path / "bad.npy"))],
              tmp_path / "cache", root)
    with pytest.raises(ValueError, match="duplicate utterance_id"):
        build(model, processor, [row, row], tmp_path / "cache", root)


def test_fingerprint_survives_saving_the_processor(tmp_path):
    # A trained checkpoint must find the cache its training run built: saving adds `auto_map` to the
    # sub-processors' dicts, which must not change the fingerprint.
    from transformers import AutoProcessor

    from modeling_ecmc import ECMCForConditionalGeneration
    from processing_ecmc.feature_cache import cache_fingerprint

    model, processor = make_model_and_processor()
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    loaded = ECMCForConditionalGeneration.from_pretrained(tmp_path)
    assert cache_fingerprint(loaded, AutoProcessor.from_pretrained(tmp_path, trust_remote_code=True)) == \
        cache_fingerprint(model, processor)
