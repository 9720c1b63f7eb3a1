"""processing_ecmc.splits: subject-disjoint, deterministic splits; a given split column kept per subject."""

from __future__ import annotations

import pytest

datasets = pytest.importorskip("datasets")

from processing_ecmc.dataset_build import build_dataset  # noqa: E402
from processing_ecmc.manifest import Where  # noqa: E402
from processing_ecmc.schema import SPLITS  # noqa: E402
from processing_ecmc.splits import assign_splits, check_subject_labels  # noqa: E402

try:
    from dataset_fixtures import many_subjects, row, subjects_by_split, write_jsonl
except ImportError:  # tests/ imported as a package
    from tests.dataset_fixtures import many_subjects, row, subjects_by_split, write_jsonl


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


def test_assign_splits_directly():
    assignment = assign_splits({f"s{i}" for i in range(10)}, (0.8, 0.1, 0.1), seed=0)
    assert sorted(assignment) == sorted(f"s{i}" for i in range(10))
    assert [list(assignment.values()).count(s) for s in SPLITS] == [8, 1, 1]
    assert assign_splits(set(assignment), (0.8, 0.1, 0.1), seed=0) == assignment
    with pytest.raises(ValueError, match="must be 3 non-negative numbers summing to 1"):
        assign_splits({"a"}, (1.0, 0.5), seed=0)


def test_given_split_column(tmp_path):
    rows = [row("a", "s1", split="train", end=3), row("b", "s1", split="train", end=3), row("c", "s2", split="val", end=3)]
    dsd, _ = build_dataset(write_jsonl(tmp_path / "m.jsonl", rows), check_media=False)
    assert dsd["train"]["utterance_id"] == ["a", "b"] and dsd["validation"]["utterance_id"] == ["c"]
    assert len(dsd["test"]) == 0
    rows[1]["split"] = "test"
    with pytest.raises(ValueError, match=r"m2\.jsonl, line 2: subject 's1' is in split 'test' here and in 'train'"):
        build_dataset(write_jsonl(tmp_path / "m2.jsonl", rows), check_media=False)


def test_subject_labels_must_agree():
    rows = [(1, {"subject_id": "s1", "depression": 1, "anxiety": -1}),
            (2, {"subject_id": "s1", "depression": -1, "anxiety": 0}),  # unknown agrees with anything
            (3, {"subject_id": "s1", "depression": 0, "anxiety": 0})]
    check_subject_labels(rows[:2], Where("m.jsonl"))
    with pytest.raises(ValueError, match=r"m\.jsonl, line 3: subject 's1' has depression 0 here but 1 on line 1"):
        check_subject_labels(rows, Where("m.jsonl"))
