"""Subject-disjoint splits of an ECMC data set, and the checks that keep a subject's rows together.

With a ``split`` column (``train`` / ``validation`` (also ``val``, ``valid``, ``dev``) / ``test``),
it is used as given (``check_given_splits``: one subject, one split). Otherwise subjects are split
deterministically (``assign_splits``): the sorted subject ids of the kept rows are shuffled with
``random.Random(seed)`` and cut by ``split_ratios``; a subject is never in two splits. The
subject-level labels (``depression`` / ``anxiety``) known for a subject must agree across its rows
(``check_subject_labels``).
"""

from __future__ import annotations

import math
import random

from modeling_ecmc.vocabulary_ecmc import DISORDERS
from .schema import SPLITS

SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "validation": "validation",
    "val": "validation",
    "valid": "validation",
    "dev": "validation",
    "test": "test",
    "testing": "test",
}

__all__ = ["SPLIT_ALIASES", "assign_splits", "check_subject_labels", "check_given_splits"]


def assign_splits(subjects, split_ratios, seed) -> dict:
    """subject id -> split name: the sorted ids shuffled with ``random.Random(seed)``, cut by ``split_ratios``."""
    ratios = tuple(float(r) for r in split_ratios)
    if len(ratios) != len(SPLITS) or any(r < 0 for r in ratios) or not math.isclose(sum(ratios), 1.0, abs_tol=1e-6):
        raise ValueError(f"split_ratios {split_ratios!r} must be {len(SPLITS)} non-negative numbers summing to 1 ({SPLITS})")
    order = sorted(subjects)
    random.Random(seed).shuffle(order)
    n = len(order)
    counts = [int(math.floor(r * n)) for r in ratios]
    # hand out the remainder by largest fractional part, then make sure every split with a
    # positive ratio gets a subject when there are enough subjects
    for i in sorted(range(len(ratios)), key=lambda i: ratios[i] * n - counts[i], reverse=True)[: n - sum(counts)]:
        counts[i] += 1
    for i, r in enumerate(ratios):
        if r > 0 and counts[i] == 0:
            donor = max(range(len(counts)), key=lambda j: counts[j])
            if counts[donor] > 1:
                counts[donor] -= 1
                counts[i] += 1
    assignment, position = {}, 0
    for split, count in zip(SPLITS, counts):
        for subject in order[position : position + count]:
            assignment[subject] = split
        position += count
    return assignment


def check_subject_labels(rows, where):
    """depression / anxiety are subject-level: the known values (1/0; -1 is unknown) of one subject's
    rows must agree. ``rows``: [(line, schema row)]; ``where``: a ``manifest.Where``."""
    seen = {}
    for line, row in rows:
        for column in DISORDERS:
            if row[column] == -1:
                continue
            first = seen.setdefault((row["subject_id"], column), (row[column], line))
            if first[0] != row[column]:
                raise where.error(
                    line,
                    f"subject {row['subject_id']!r} has {column} {row[column]} here but {first[0]} on line "
                    f"{first[1]}: subject-level labels must agree across the subject's rows",
                )


def check_given_splits(rows, where):
    """Every row has a split, and all rows of a subject have the same one."""
    seen = {}
    for line, row in rows:
        if row["split"] is None:
            raise where.error(line, "empty split while other rows have one: give every row a split or none")
        first = seen.setdefault(row["subject_id"], (row["split"], line))
        if first[0] != row["split"]:
            raise where.error(
                line,
                f"subject {row['subject_id']!r} is in split {row['split']!r} here and in {first[0]!r} on line "
                f"{first[1]}: a subject must stay in one split",
            )
