"""The feature cache's files (processing_ecmc/cache_store.py): written whole, read back verified;
corruption is detected on read (CacheError naming the file) and rebuilt by the next build."""

import pytest
import torch

from cache_fixtures import build
from cache_fixtures import data, tiny  # noqa: F401  (fixtures)

from processing_ecmc.cache_fingerprint import cache_fingerprint
from processing_ecmc.cache_store import CacheError, cache_file_name, load_cached_features, read_verified, write_entry
from processing_ecmc.cached_dataset import CachedFeatureDataset


def test_entry_round_trip(tmp_path):
    tensors = {"audio_features": torch.randn(5, 4).half(), "modality_mask": torch.tensor([False, True, False])}
    (tmp_path / ("f" * 16)).mkdir()
    path = tmp_path / ("f" * 16) / cache_file_name("u1")
    write_entry(path, tensors, "u1", "f" * 64, '{"mode":"stat"}')
    read, metadata = read_verified(path, "u1", "f" * 64)
    assert torch.equal(read["audio_features"], tensors["audio_features"]) and metadata["inputs"] == '{"mode":"stat"}'
    assert torch.equal(load_cached_features(tmp_path, "u1", "f" * 64)["modality_mask"], tensors["modality_mask"])
    with pytest.raises(CacheError, match="features do not match modality_mask"):
        write_entry(path, dict(tensors, modality_mask=torch.tensor([True, True, False])), "u1", "f" * 64, "{}")
        read_verified(path, "u1", "f" * 64)

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

    with caplog.at_level("WARNING", logger="processing_ecmc.cache_build"):
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
