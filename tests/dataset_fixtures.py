"""Manifests and media shared by the data set tests (test_manifest, test_row_checks, test_splits,
test_dataset_build, test_mmda, test_dataset_io, test_push_dataset). Import as
``from dataset_fixtures import row, write_jsonl`` (or ``from tests.dataset_fixtures import ...``);
``media_root`` is a pytest fixture: import it into the test module that uses it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

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


def many_subjects(n_subjects=40, per_subject=3):
    return [row(f"u{s}_{k}", f"subj{s:02d}", end=3.0) for s in range(n_subjects) for k in range(per_subject)]


def subjects_by_split(dsd):
    return {name: set(split["subject_id"]) for name, split in dsd.items()}


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
