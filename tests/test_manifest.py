"""processing_ecmc.manifest: reading JSONL/CSV manifests, normalising and checking their rows, paths inside data_root."""

from __future__ import annotations

import json

import pytest

datasets = pytest.importorskip("datasets")

from processing_ecmc.dataset_build import build_dataset  # noqa: E402
from processing_ecmc.manifest import read_manifest  # noqa: E402

try:
    from dataset_fixtures import row, write_csv, write_jsonl
except ImportError:  # tests/ imported as a package
    from tests.dataset_fixtures import row, write_csv, write_jsonl


def test_read_manifest_gives_line_numbers_of_jsonl_and_csv(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps(row("a")) + "\n\n" + json.dumps(row("b")) + "\n", encoding="utf-8")
    assert [(line, raw["utterance_id"]) for line, raw in read_manifest(path)] == [(1, "a"), (3, "b")]
    rows = read_manifest(write_csv(tmp_path / "m.csv", [row("a", cognition_labels="0,0,0,0"), row("b")]))
    assert [(line, raw["utterance_id"]) for line, raw in rows] == [(2, "a"), (3, "b")]
    with pytest.raises(ValueError, match=r"nothere\.csv: manifest not found"):
        read_manifest(tmp_path / "nothere.csv")


def test_malformed_json_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(row("a")) + "\n\n" + '{"subject_id": "s1", "utterance_id": \n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.jsonl, line 3: invalid JSON"):
        build_dataset(path, check_media=False)


def test_non_utf8_manifest(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("subject_id,utterance_id,transcript\ns1,u1,ok\ns1,u2,caf".encode() + b"\xe9\n")
    with pytest.raises(ValueError, match=r"latin1\.csv: not valid UTF-8 at byte offset 53 \(line 3\)"):
        build_dataset(path, check_media=False)


@pytest.mark.parametrize(
    "change,message",
    [
        ({"emotion_label": 2}, "emotion_label 2 out of range"),
        ({"emotion_label": "happy"}, "emotion_label 'happy' is not a number"),
        ({"cognition_labels": [0, 1, 2, 0]}, "out of range: each of the 4 flags"),
        ({"cognition_labels": "[0, 1, 0]"}, "must be a list of 4 flags"),
        ({"depression": 3}, "depression 3 out of range"),
        ({"language": "fr"}, "language 'fr'"),
        ({"start": "soon"}, "start 'soon' is not a number"),
        ({"split": "holdout"}, "split 'holdout'"),
        ({"emotion_label": None}, "missing emotion_label"),
    ],
)
def test_bad_values_are_errors_with_line(tmp_path, change, message):
    path = write_jsonl(tmp_path / "m.jsonl", [row("a", end=3), row("b", end=3, **change)])
    with pytest.raises(ValueError) as info:
        build_dataset(path, check_media=False)
    assert "m.jsonl, line 2" in str(info.value) and message in str(info.value)


def test_missing_required_column_and_duplicate_id(tmp_path):
    bad = row("b")
    del bad["transcript"]
    path = write_jsonl(tmp_path / "m.jsonl", [row("a"), bad])
    with pytest.raises(ValueError, match=r"line 2: missing required column 'transcript'"):
        build_dataset(path, check_media=False)
    path = write_jsonl(tmp_path / "d.jsonl", [row("a"), row("b"), row("a", "s2")])
    with pytest.raises(ValueError, match=r"d\.jsonl, line 3: duplicate utterance_id 'a' \(first on line 1\)"):
        build_dataset(path, check_media=False)


@pytest.mark.parametrize("bad_path", ["../outside.mp4", "clips/../../x.mp4", "/etc/passwd"])
def test_path_escaping_data_root(tmp_path, bad_path):
    root = tmp_path / "root"
    (root / "clips").mkdir(parents=True)
    path = write_jsonl(root / "m.jsonl", [row("a", video_path=bad_path)])
    with pytest.raises(ValueError, match=r"m\.jsonl, line 1: video_path .* outside data_root"):
        build_dataset(path, check_media=False)


def test_absolute_path_inside_root_is_fine(tmp_path):
    (tmp_path / "v.mp4").write_bytes(b"x")
    path = write_jsonl(tmp_path / "m.jsonl", [row("a", video_path=str(tmp_path / "v.mp4"), end=3)])
    dsd, dropped = build_dataset(path, check_media=False)
    assert not dropped
