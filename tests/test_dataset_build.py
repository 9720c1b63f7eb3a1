"""processing_ecmc.dataset_build: a manifest -> DatasetDict with every drop reported, logged without transcripts."""

from __future__ import annotations

import logging

import pytest

datasets = pytest.importorskip("datasets")

from processing_ecmc import dataset_build  # noqa: E402
from processing_ecmc.dataset_build import build_dataset  # noqa: E402
from processing_ecmc.dataset_io import data_root_of  # noqa: E402
from processing_ecmc.schema import COLUMNS, SPLITS  # noqa: E402

try:
    from dataset_fixtures import SECRET, media_root, row, write_jsonl  # noqa: F401 (media_root: a fixture)
except ImportError:  # tests/ imported as a package
    from tests.dataset_fixtures import SECRET, media_root, row, write_jsonl  # noqa: F401


def test_per_utterance_clips_with_drops(media_root, tmp_path):
    manifest = write_jsonl(
        media_root / "clips.jsonl",
        [
            row("u1", "s1", video_path="clips/a.mp4", emotion_label="negative", cognition_labels="[0, 1, 0, 0]"),
            row("u2", "s2", video_path="clips/b.mp4", emotion_label=1, cognition_labels=[1, 0, 0, 1], depression=1),
            row("u3", "s3", audio_path="clips/c.wav", emotion_caption="calm", language="en"),
            row("u4", "s1", video_path="clips/short.mp4"),  # 1 s < 2 s
            row("u5", "s2", video_path="clips/nothere.mp4"),  # missing file
            row("u6", "s3", video_path="clips/a.mp4", transcript="   "),  # empty transcript
            row("u7", "s3", video_path="clips/corrupt.mp4"),  # unreadable
        ],
    )
    dsd, dropped = build_dataset(manifest)
    assert set(dsd) == set(SPLITS)
    kept = {r["utterance_id"]: r for split in dsd.values() for r in split}
    assert set(kept) == {"u1", "u2", "u3"}
    assert len(kept) + len(dropped) == 7
    u1 = kept["u1"]
    assert u1["video_path"] == str((media_root / "clips" / "a.mp4").resolve())
    assert u1["emotion_label"] == -1 and u1["cognition_labels"] == [0, 1, 0, 0]
    assert u1["start"] == 0.0 and u1["end"] == -1.0 and u1["language"] == "en" and u1["audio_path"] == ""
    assert u1["depression"] == -1 and u1["anxiety"] == -1 and u1["emotion_caption"] == ""
    assert kept["u2"]["depression"] == 1 and kept["u2"]["cognition_labels"] == [1, 0, 0, 1]
    assert list(dsd["train"].features) == list(COLUMNS)

    by_id = {d["utterance_id"]: d for d in dropped}
    assert set(by_id) == {"u4", "u5", "u6", "u7"}
    for drop in dropped:
        assert {"row", "utterance_id", "file", "reason"} <= set(drop)
        assert SECRET not in drop["reason"]
    assert by_id["u4"]["reason"].startswith("too short") and by_id["u4"]["row"] == 3
    assert by_id["u4"]["file"].endswith("short.mp4")
    assert by_id["u5"]["reason"].startswith("missing file") and by_id["u5"]["file"].endswith("nothere.mp4")
    assert by_id["u6"]["reason"].startswith("empty transcript")
    assert by_id["u7"]["reason"].startswith("unreadable media") and "corrupt.mp4" in by_id["u7"]["reason"]
    assert data_root_of(dsd) == str(media_root.resolve())


def test_drops_logged_by_reason_without_transcripts(media_root, caplog):
    manifest = write_jsonl(
        media_root / "log.jsonl",
        [row("a", video_path="clips/short.mp4"), row("b", video_path="missing.mp4"), row("c", end=1.0)],
    )
    with caplog.at_level(logging.INFO, logger="processing_ecmc.dataset_build"):
        _, dropped = build_dataset(manifest)
    assert len(dropped) == 3
    text = caplog.text
    assert "dropped 3 of 3" in text and "too short: 2" in text and "missing file: 1" in text
    assert SECRET not in text


def test_module_logger_name():
    assert dataset_build.logger.name == "processing_ecmc.dataset_build"
