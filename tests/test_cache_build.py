"""Building the feature cache (processing_ecmc/cache_build.py): cached features equal the encoders'
outputs (bit for bit: the builder stores what `ECMCModel.encode_per_row` returns), builds are
resumable and atomic, pre-extracted .npy features are used, bad rows are refused."""

import json
import os
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

from cache_fixtures import MODALITY_INPUT_NAMES, EncoderCounter, build, direct_features, make_model_and_processor
from cache_fixtures import built, data, direct, tiny  # noqa: F401  (fixtures)
from conftest import tiny_prompt

from processing_ecmc.cache_build import _load_row
from processing_ecmc.cache_fingerprint import cache_fingerprint
from processing_ecmc.cache_store import STORE_DTYPE, cache_file_name, load_cached_features
from processing_ecmc.cached_dataset import collate_cached

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


def test_stored_features_are_the_models_per_row_encoding(tiny, data, tmp_path):
    """The builder stores `encode_per_row` of its batch, converted to float16, bit for bit (batches of
    3 and of all rows; the group-norm HuBERT of the tiny model runs on equal-length groups)."""
    model, processor = tiny
    rows, root = data
    fingerprint = cache_fingerprint(model, processor)
    config = model.config
    for batch_size in (3, len(rows)):
        folder, _ = build(model, processor, rows, tmp_path / str(batch_size), root, batch_size=batch_size)
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            loaded = [_load_row(processor, r, root, True, True, config) for r in batch]
            inputs = processor(frames=[x[0] for x in loaded], waveforms=[x[1] for x in loaded],
                               transcripts=[x[2] for x in loaded], return_tensors="pt")
            with torch.no_grad():
                encoded = model.model.encode_per_row(**inputs)
            for b, row in enumerate(batch):
                cached = load_cached_features(folder, row["utterance_id"], fingerprint)
                for m, per_row in encoded.items():
                    if per_row[b] is None:
                        assert f"{m}_features" not in cached
                    else:
                        assert torch.equal(cached[f"{m}_features"], per_row[b].to(STORE_DTYPE)), (row["utterance_id"], m)


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
        from cache_fixtures import make_model_and_processor
        from processing_ecmc.cache_build import build_feature_cache
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


# ----------------------------------------------------------------------------- pre-extracted features, bad rows
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
