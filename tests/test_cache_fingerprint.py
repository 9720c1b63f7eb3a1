"""Fingerprints (processing_ecmc/cache_fingerprint.py): the cache fingerprint covers the encoders
and the processor settings (and survives saving the processor); the input fingerprint notices touched
media and changed transcripts, by modification time or by content."""

import os
from collections import Counter

import pytest
import torch

from cache_fixtures import build, copy_data, make_model_and_processor
from cache_fixtures import data, tiny  # noqa: F401  (fixtures)

from processing_ecmc.cache_fingerprint import cache_fingerprint
from processing_ecmc.cache_store import CacheError
from processing_ecmc.cached_dataset import CachedFeatureDataset

def test_fingerprint_covers_encoders_and_processor_settings(tiny):
    model, processor = tiny
    fingerprint = cache_fingerprint(model, processor)
    assert len(fingerprint) == 64 and cache_fingerprint(model, processor) == fingerprint
    processor.text_tokenizer(["state that a fast tokenizer keeps"], truncation=True, max_length=5, padding=True)
    assert cache_fingerprint(model.model, processor) == fingerprint  # an ECMCModel works too; no per-call state
    for name, value in (("num_frames", 8), ("max_text_tokens", 16), ("face_crop", True)):
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


def test_fingerprint_survives_saving_the_processor(tmp_path):
    # A trained checkpoint must find the cache its training run built: saving adds `auto_map` to the
    # sub-processors' dicts, which must not change the fingerprint.
    from transformers import AutoProcessor

    from modeling_ecmc import ECMCForConditionalGeneration

    model, processor = make_model_and_processor()
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    loaded = ECMCForConditionalGeneration.from_pretrained(tmp_path)
    assert cache_fingerprint(loaded, AutoProcessor.from_pretrained(tmp_path, trust_remote_code=True)) == \
        cache_fingerprint(model, processor)


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
