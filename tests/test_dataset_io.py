"""processing_ecmc.dataset_io: atomic save, checked load, the recorded data_root, relative paths for publishing."""

from __future__ import annotations

import json

import pytest

datasets = pytest.importorskip("datasets")

from processing_ecmc.dataset_build import build_dataset  # noqa: E402
from processing_ecmc.dataset_io import data_root_of, load_dataset_dict, save_dataset, with_relative_paths  # noqa: E402
from processing_ecmc.schema import SPLITS  # noqa: E402

try:
    from dataset_fixtures import row, write_jsonl
except ImportError:  # tests/ imported as a package
    from tests.dataset_fixtures import row, write_jsonl


def test_save_load_round_trip(tmp_path):
    rows = [row("a", "s1", split="train", end=3.0), row("b", "s2", split="test", end=4.0, emotion_label=-1)]
    dsd, _ = build_dataset(write_jsonl(tmp_path / "m.jsonl", rows), check_media=False)
    target = tmp_path / "out" / "ecmc"
    save_dataset(dsd, target)
    loaded = load_dataset_dict(target)
    for split in SPLITS:
        assert loaded[split].to_list() == dsd[split].to_list()
    assert len(loaded["validation"]) == 0
    assert data_root_of(loaded) == str(tmp_path.resolve())
    # overwrite in place; no temporary folders left behind
    rows.append(row("c", "s3", split="validation", end=3.0))
    dsd2, _ = build_dataset(write_jsonl(tmp_path / "m.jsonl", rows), check_media=False)
    save_dataset(dsd2, target)
    assert len(load_dataset_dict(target)["validation"]) == 1
    assert sorted(p.name for p in target.parent.iterdir()) == ["ecmc"]
    with pytest.raises(ValueError, match="no saved data set"):
        load_dataset_dict(tmp_path / "nothing")


def test_failed_save_keeps_old_copy(tmp_path, monkeypatch):
    dsd, _ = build_dataset(write_jsonl(tmp_path / "m.jsonl", [row("a", end=3.0)]), check_media=False)
    target = tmp_path / "ds"
    save_dataset(dsd, target)

    def boom(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(datasets.DatasetDict, "save_to_disk", boom)
    with pytest.raises(OSError, match="disk full"):
        save_dataset(dsd, target)
    monkeypatch.undo()
    assert sum(len(s) for s in load_dataset_dict(target).values()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "m.jsonl"]


def test_with_relative_paths_is_a_copy_without_local_folders(tmp_path):
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "a.mp4").write_bytes(b"x")
    dsd, _ = build_dataset(write_jsonl(tmp_path / "m.jsonl", [row("a", video_path="v/a.mp4", end=3)]), check_media=False)
    out = with_relative_paths(dsd, data_root_of(dsd))
    assert [r["video_path"] for s in out.values() for r in s] == ["v/a.mp4"]
    for split in out.values():
        info = json.loads(split.info.description)
        assert info["paths"] == "relative to data_root" and "data_root" not in info and "source" not in info
    assert data_root_of(dsd) == str(tmp_path.resolve())  # the original is unchanged
