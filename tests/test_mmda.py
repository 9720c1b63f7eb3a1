"""processing_ecmc.mmda: the MMDA layout (CSV + per-utterance .npy features and/or session recordings)."""

from __future__ import annotations

import numpy as np
import pytest

datasets = pytest.importorskip("datasets")

from processing_ecmc.mmda import import_mmda  # noqa: E402

try:
    from dataset_fixtures import media_root, mmda_row, subjects_by_split, write_csv  # noqa: F401 (media_root: a fixture)
except ImportError:  # tests/ imported as a package
    from tests.dataset_fixtures import media_root, mmda_row, subjects_by_split, write_csv  # noqa: F401


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
