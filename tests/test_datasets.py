"""processing_ecmc.datasets_ecmc: manifests, validation, splits, MMDA import, save/load/push."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np
import pytest

datasets = pytest.importorskip("datasets")

from processing_ecmc import datasets_ecmc  # noqa: E402
from processing_ecmc.datasets_ecmc import (  # noqa: E402
    build_dataset,
    data_root_of,
    import_mmda,
    load_dataset_dict,
    push_dataset,
    save_dataset,
)
from processing_ecmc.schema import COLUMNS, SPLITS  # noqa: E402

try:
    from media_fixtures import make_audio, make_video, random_bytes
except ImportError:  # tests/ imported as a package
    from tests.media_fixtures import make_audio, make_video, random_bytes

SECRET = "SECRET-TRANSCRIPT-never-log"


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def write_csv(path: Path, rows, fieldnames=None) -> Path:
    fieldnames = fieldnames or list(dict.fromkeys(key for row in rows for key in row))
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(rows)
    return path


def row(uid, subject="s1", **extra):
    base = {
        "subject_id": subject,
        "utterance_id": uid,
        "transcript": f"{SECRET} {uid}",
        "emotion_label": 0,
        "cognition_labels": [0, 0, 0, 0],
    }
    base.update(extra)
    return base


@pytest.fixture(scope="module")
def media_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    (root / "clips").mkdir()
    make_video(root / "clips" / "a.mp4", 3, fps=10, size=(32, 24), audio_rate=16000)
    make_video(root / "clips" / "b.mp4", 2.5, fps=10, size=(32, 24), audio_rate=16000)
    make_video(root / "clips" / "short.mp4", 1, fps=10, size=(32, 24), audio_rate=16000)
    make_audio(root / "clips" / "c.wav", 3, rate=16000)
    random_bytes(root / "clips" / "corrupt.mp4")
    make_video(root / "session1.mp4", 12, fps=10, size=(32, 24), audio_rate=16000)
    return root


# ----------------------------------------------------------------------------- layouts and drops


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


def test_drops_logged_by_reason_without_transcripts(media_root, caplog):
    manifest = write_jsonl(
        media_root / "log.jsonl",
        [row("a", video_path="clips/short.mp4"), row("b", video_path="missing.mp4"), row("c", end=1.0)],
    )
    with caplog.at_level(logging.INFO, logger="processing_ecmc.datasets_ecmc"):
        _, dropped = build_dataset(manifest)
    assert len(dropped) == 3
    text = caplog.text
    assert "dropped 3 of 3" in text and "too short: 2" in text and "missing file: 1" in text
    assert SECRET not in text


def test_check_media_off_skips_decoding(media_root):
    manifest = write_jsonl(media_root / "nocheck.jsonl", [row("a", video_path="clips/corrupt.mp4", end=3.0)])
    dsd, dropped = build_dataset(manifest, check_media=False)
    assert not dropped and sum(len(s) for s in dsd.values()) == 1


# ----------------------------------------------------------------------------- splits


def many_subjects(n_subjects=40, per_subject=3):
    return [row(f"u{s}_{k}", f"subj{s:02d}", end=3.0) for s in range(n_subjects) for k in range(per_subject)]


def subjects_by_split(dsd):
    return {name: set(split["subject_id"]) for name, split in dsd.items()}


def test_split_by_subject_no_leakage_deterministic(tmp_path):
    manifest = write_jsonl(tmp_path / "m.jsonl", many_subjects())
    dsd, dropped = build_dataset(manifest, check_media=False)
    assert not dropped
    groups = subjects_by_split(dsd)
    assert not (groups["train"] & groups["validation"] or groups["train"] & groups["test"] or groups["validation"] & groups["test"])
    assert [len(groups[s]) for s in SPLITS] == [32, 4, 4]
    assert sum(len(s) for s in dsd.values()) == 120
    again, _ = build_dataset(manifest, check_media=False)
    assert subjects_by_split(again) == groups
    other, _ = build_dataset(manifest, check_media=False, seed=1)
    assert subjects_by_split(other) != groups
    tiny = write_jsonl(tmp_path / "tiny.jsonl", many_subjects(3, 1))
    groups = subjects_by_split(build_dataset(tiny, check_media=False)[0])
    assert all(len(groups[s]) == 1 for s in SPLITS)  # every split gets a subject when possible
    with pytest.raises(ValueError, match="split_ratios"):
        build_dataset(manifest, check_media=False, split_ratios=(0.5, 0.2, 0.2))


def test_given_split_column(tmp_path):
    rows = [row("a", "s1", split="train", end=3), row("b", "s1", split="train", end=3), row("c", "s2", split="val", end=3)]
    dsd, _ = build_dataset(write_jsonl(tmp_path / "m.jsonl", rows), check_media=False)
    assert dsd["train"]["utterance_id"] == ["a", "b"] and dsd["validation"]["utterance_id"] == ["c"]
    assert len(dsd["test"]) == 0
    rows[1]["split"] = "test"
    with pytest.raises(ValueError, match=r"m2\.jsonl, line 2: subject 's1' is in split 'test' here and in 'train'"):
        build_dataset(write_jsonl(tmp_path / "m2.jsonl", rows), check_media=False)


# ----------------------------------------------------------------------------- malformed manifests


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


# ----------------------------------------------------------------------------- MMDA


def mmda_row(subject, t0, t1, emotion_bin="negative", cognition_bin="[0, 1, 0, 0]", content="我今天很累"):
    return {
        "id": subject,
        "hdTimeStart": t0,
        "hdTimeEnd": t1,
        "content": content,
        "emotion": "情绪低落",
        "cognition": "注意力下降",
        "emotion_bin": emotion_bin,
        "cognition_bin": cognition_bin,
    }


def test_import_mmda_features(tmp_path):
    feats = tmp_path / "features"
    (feats / "audio").mkdir(parents=True)
    (feats / "video").mkdir()
    rows = [
        mmda_row("p01", 1000, 4500),
        mmda_row("p01", 5000, 9000, emotion_bin=0, cognition_bin="[0, 0, 0, 0]"),
        mmda_row("p02", 12000, 15500, emotion_bin="positive"),
        mmda_row("p02", 20000, 21000),  # 1 s: dropped like the paper
        mmda_row("p03", 30000, 34000),  # audio features contain NaN
        mmda_row("p03", 40000, 44000),  # video features are 3-D
        mmda_row("p04", 50000, 54000),  # video features missing
    ]
    csv_path = write_csv(tmp_path / "mmda.csv", rows)
    rng = np.random.default_rng(0)
    for r in rows:
        name = f"{r['id']}_{r['hdTimeStart']}_{r['hdTimeEnd']}"
        audio = rng.standard_normal((20, 8)).astype(np.float32)
        video = rng.standard_normal((10, 6)).astype(np.float32)
        if name == "p03_30000_34000":
            audio[3, 2] = np.nan
        if name == "p03_40000_44000":
            video = video[None]
        np.save(feats / "audio" / f"{name}.npy", audio)
        if name != "p04_50000_54000":
            np.save(feats / "video" / f"{name}.npy", video)

    dsd, dropped = import_mmda(csv_path, features_root=feats)
    kept = {r["utterance_id"]: r for split in dsd.values() for r in split}
    assert set(kept) == {"p01_1000_4500", "p01_5000_9000", "p02_12000_15500"}
    first = kept["p01_1000_4500"]
    assert first["subject_id"] == "p01" and first["language"] == "zh"
    assert first["start"] == 1.0 and first["end"] == 4.5  # milliseconds detected
    assert first["emotion_label"] == -1 and first["cognition_labels"] == [0, 1, 0, 0]
    assert first["transcript"] == "我今天很累" and first["emotion_caption"] == "情绪低落"
    assert first["cognition_caption"] == "注意力下降"
    assert first["audio_features_path"] == str((feats / "audio" / "p01_1000_4500.npy").resolve())
    assert first["video_features_path"].endswith("video/p01_1000_4500.npy")
    assert kept["p02_12000_15500"]["emotion_label"] == 1 and kept["p01_5000_9000"]["emotion_label"] == 0

    by_id = {d["utterance_id"]: d for d in dropped}
    assert by_id["p02_20000_21000"]["reason"].startswith("too short")
    assert by_id["p03_30000_34000"]["reason"].startswith("bad features")
    assert "NaN" in by_id["p03_30000_34000"]["reason"]
    assert by_id["p03_30000_34000"]["file"].endswith("audio/p03_30000_34000.npy")
    assert "p03_30000_34000.npy" in by_id["p03_30000_34000"]["reason"]
    assert "expected 2-D" in by_id["p03_40000_44000"]["reason"]
    assert by_id["p04_50000_54000"]["reason"].startswith("missing file")
    assert by_id["p04_50000_54000"]["file"].endswith("video/p04_50000_54000.npy")
    groups = subjects_by_split(dsd)
    assert sum(len(g) for g in groups.values()) == len(set().union(*groups.values()))  # no leakage


def test_import_mmda_media_flat_features_and_errors(media_root, tmp_path):
    feats = tmp_path / "flat"
    feats.mkdir()
    np.save(feats / "session1_0.5_3.5.npy", np.zeros((5, 4), np.float32))
    np.save(feats / "session1_4_7.npy", np.array([{"pickled": 1}], dtype=object), allow_pickle=True)
    csv_path = write_csv(
        tmp_path / "m.csv", [mmda_row("session1", "0.5", "3.5"), mmda_row("session1", "4", "7")]
    )
    dsd, dropped = import_mmda(csv_path, media_root=media_root, features_root=feats)
    (kept,) = [r for split in dsd.values() for r in split]
    assert kept["video_path"] == str((media_root / "session1.mp4").resolve())
    assert kept["start"] == 0.5 and kept["end"] == 3.5  # seconds detected
    assert kept["audio_features_path"].endswith("flat/session1_0.5_3.5.npy") and kept["video_features_path"] == ""
    assert len(dropped) == 1 and "without pickle" in dropped[0]["reason"]

    bad = write_csv(tmp_path / "bad.csv", [mmda_row("p1", 0, 3000, emotion_bin=5)])
    with pytest.raises(ValueError, match=r"bad\.csv, line 2: emotion_bin '5' out of range"):
        import_mmda(bad)
    bad = write_csv(tmp_path / "bad2.csv", [mmda_row("p1", 0, 3000, cognition_bin="[0, 1]")])
    with pytest.raises(ValueError, match=r"bad2\.csv, line 2: cognition_bin '\[0, 1\]' must be a list of 4"):
        import_mmda(bad)
    missing = write_csv(tmp_path / "bad3.csv", [{"id": "p1", "content": "x"}])
    with pytest.raises(ValueError, match=r"bad3\.csv, line 1: missing MMDA column"):
        import_mmda(missing)
    escape = write_csv(tmp_path / "bad4.csv", [mmda_row("../../etc/x", 0, 3000)])
    with pytest.raises(ValueError, match="outside data_root"):
        import_mmda(escape, media_root=media_root)


# ----------------------------------------------------------------------------- save / load / push


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


def test_push_is_private_with_relative_paths(tmp_path, monkeypatch):
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "a.mp4").write_bytes(b"x")
    dsd, _ = build_dataset(write_jsonl(tmp_path / "m.jsonl", [row("a", video_path="v/a.mp4", end=3)]), check_media=False)
    calls = []

    def fake_push(self, repo_id, **kwargs):
        descriptions = " ".join(s.info.description for s in self.values())
        calls.append((repo_id, kwargs, [r["video_path"] for s in self.values() for r in s], descriptions))

    monkeypatch.setattr(datasets.DatasetDict, "push_to_hub", fake_push)
    push_dataset(dsd, "me/ecmc-private")
    repo_id, kwargs, paths, descriptions = calls[0]
    assert repo_id == "me/ecmc-private" and kwargs["private"] is True
    assert paths == ["v/a.mp4"]
    assert str(tmp_path) not in descriptions  # no local folder layout in the pushed card either
    push_dataset(dsd, "me/public", private=False)
    assert calls[1][1]["private"] is False
    # the caller's data set keeps its absolute paths and data_root
    assert [r["video_path"] for s in dsd.values() for r in s] == [str((tmp_path / "v" / "a.mp4").resolve())]
    assert data_root_of(dsd) == str(tmp_path.resolve())


def test_module_logger_name():
    assert datasets_ecmc.logger.name == "processing_ecmc.datasets_ecmc"
