"""processing_ecmc.row_checks: the drops of well-formed but unusable rows, each with its reason."""

from __future__ import annotations

import numpy as np
import pytest

datasets = pytest.importorskip("datasets")

from processing_ecmc.dataset_build import build_dataset  # noqa: E402
from processing_ecmc.feature_files import read_feature_file  # noqa: E402
from processing_ecmc.row_checks import check_features  # noqa: E402

try:
    from dataset_fixtures import media_root, row, write_csv, write_jsonl  # noqa: F401 (media_root: a fixture)
except ImportError:  # tests/ imported as a package
    from tests.dataset_fixtures import media_root, row, write_csv, write_jsonl  # noqa: F401


def test_session_layout_csv(media_root):
    manifest = write_csv(
        media_root / "sessions.csv",
        [
            row("s1_a", video_path="session1.mp4", start=0, end=3.5, cognition_labels="0,0,1,0"),
            row("s1_b", video_path="session1.mp4", start=3.5, end=4.5),  # 1 s: too short
            row("s1_c", video_path="session1.mp4", start=4.5, end=11.0, emotion_label="1"),
            row("s1_d", video_path="session1.mp4", start=10, end=15),  # beyond the 12 s media
            row("s1_e", video_path="session1.mp4", start=9, end=8),  # end before start
            row("s1_f", video_path="session1.mp4", start=11.0, end=-1),  # to the end: 1 s, too short
        ],
    )
    dsd, dropped = build_dataset(manifest, max_duration=6.0)
    kept = {r["utterance_id"]: r for split in dsd.values() for r in split}
    reasons = {d["utterance_id"]: d["reason"].split(":")[0] for d in dropped}
    assert set(kept) == {"s1_a"}
    assert reasons == {
        "s1_b": "too short",
        "s1_c": "too long",  # 6.5 s > max_duration 6
        "s1_d": "segment beyond media",
        "s1_e": "invalid segment",
        "s1_f": "too short",
    }
    assert kept["s1_a"]["start"] == 0.0 and kept["s1_a"]["end"] == 3.5
    assert kept["s1_a"]["cognition_labels"] == [0, 0, 1, 0]


def test_check_media_off_skips_decoding(media_root):
    manifest = write_jsonl(media_root / "nocheck.jsonl", [row("a", video_path="clips/corrupt.mp4", end=3.0)])
    dsd, dropped = build_dataset(manifest, check_media=False)
    assert not dropped and sum(len(s) for s in dsd.values()) == 1


def test_feature_check_is_the_feature_file_reader(tmp_path):
    good, bad = tmp_path / "good.npy", tmp_path / "bad.npy"
    np.save(good, np.zeros((3, 4), np.float32))
    np.save(bad, np.zeros((3, 4, 2), np.float32))
    assert check_features(str(good)) is None
    with pytest.raises(ValueError) as info:
        read_feature_file(bad)
    assert check_features(str(bad)) == f"bad features: {info.value}"
    assert "expected 2-D (frames x dim)" in check_features(str(bad))
