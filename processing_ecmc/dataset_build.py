"""Build an ECMC ``datasets.DatasetDict`` (schema in ``schema.py``) from a manifest: read and check
its rows (``manifest``), drop the unusable ones with their reasons (``row_checks``), split by
subject (``splits``); the result records where its paths come from (``dataset_io.describe``).

This module does not travel inside checkpoints; it needs ``datasets`` (the ``data`` extra).

Errors and drops
----------------
Besides a malformed row (``manifest``), a ``ValueError`` names the manifest and line of: no data
rows, a duplicate ``utterance_id``, known subject-level labels (``depression`` / ``anxiety``) that
differ between one subject's rows, a ``split`` column that puts one subject in two splits.

Rows that are well-formed but unusable are *dropped and reported*, never silently: every drop is a
dict ``{"row": i, "line": n, "utterance_id": ..., "file": ..., "reason": ...}`` (``row`` is the
0-based data-row index, ``line`` the manifest line, ``reason`` starts with a category such as
``"too short:"``; the reasons are listed in ``row_checks``). The number of drops per category is
logged at WARNING; transcripts and captions never reach the log.

Splits
------
The DatasetDict always has the three splits of ``schema.SPLITS`` (possibly empty): as the
manifest's ``split`` column gives them, else by subject (``splits.assign_splits``).
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from modeling_ecmc.vocabulary_ecmc import MIN_UTTERANCE_SECONDS
from .dataset_io import describe
from .manifest import Where, normalise_row, read_manifest, resolve_path
from .row_checks import RowChecker
from .schema import COLUMNS, PATH_COLUMNS, SPLITS, features
from .splits import assign_splits, check_given_splits, check_subject_labels

logger = logging.getLogger(__name__)

__all__ = ["build_dataset", "build_rows"]


def _to_dataset_dict(kept, description):
    import datasets

    feats = features()
    splits = {}
    for split in SPLITS:
        rows = [row for row in kept if row["split"] == split]
        table = {column: [row[column] for row in rows] for column in COLUMNS}
        info = datasets.DatasetInfo(description=description, features=feats)
        splits[split] = datasets.Dataset.from_dict(table, features=feats, info=info)
    return datasets.DatasetDict(splits)


def _log_drops(dropped, total, source):
    if not dropped:
        logger.info("%s: kept all %d rows", source, total)
        return
    counts = Counter(drop["reason"].split(":", 1)[0] for drop in dropped)
    summary = ", ".join(f"{reason}: {count}" for reason, count in sorted(counts.items()))
    logger.warning("%s: dropped %d of %d rows (%s)", source, len(dropped), total, summary)


def build_rows(
    rows, where, source, roots, data_root, *, min_duration, max_duration, split_ratios, seed, check_media, extra_info=None
):
    """rows: [(line, raw dict)] -> (DatasetDict, dropped). ``roots`` maps path column -> allowed root."""
    if not rows:
        raise where.error(None, "no data rows (the manifest is empty)")
    known = set(COLUMNS) | {"split"}
    unknown = sorted({key for _, raw in rows for key in raw if key not in known})
    if unknown:
        logger.info("%s: ignoring column(s) not in the ECMC schema: %s", source, unknown)
    normalised, first_line = [], {}
    for line, raw in rows:
        row = normalise_row(raw, where, line)
        uid = row["utterance_id"]
        if uid in first_line:
            raise where.error(line, f"duplicate utterance_id {uid!r} (first on line {first_line[uid]})")
        first_line[uid] = line
        for column in PATH_COLUMNS:
            row[column] = resolve_path(row[column], roots[column], column, where, line)
        normalised.append((line, row))
    check_subject_labels(normalised, where)
    given = any(row["split"] is not None for _, row in normalised)
    if given:
        check_given_splits(normalised, where)

    checker = RowChecker(min_duration, max_duration, check_media)
    kept, dropped = [], []
    for index, (line, row) in enumerate(normalised):
        problem = checker.problem(row)
        if problem is None:
            kept.append(row)
        else:
            reason, file = problem
            dropped.append(
                {"row": index, "line": line, "utterance_id": row["utterance_id"], "file": file, "reason": reason}
            )
    _log_drops(dropped, len(normalised), source)
    if not given:
        assignment = assign_splits({row["subject_id"] for row in kept}, split_ratios, seed)
        for row in kept:
            row["split"] = assignment[row["subject_id"]]
    return _to_dataset_dict(kept, describe(data_root, source, extra_info)), dropped


def build_dataset(
    manifest_path,
    data_root=None,
    min_duration: float = MIN_UTTERANCE_SECONDS,
    max_duration: float | None = 60.0,
    split_ratios=(0.8, 0.1, 0.1),
    seed: int = 0,
    check_media: bool = True,
):
    """Read a JSONL/CSV manifest into an ECMC ``DatasetDict``; returns ``(dataset_dict, dropped_rows)``.

    See the docstrings of this module and of ``manifest`` for columns, paths, errors, drops and splits.
    """
    manifest = Path(manifest_path).expanduser().resolve()
    root = Path(data_root).expanduser().resolve() if data_root is not None else manifest.parent
    if not root.is_dir():
        raise ValueError(f"data_root {root} is not a folder")
    rows = read_manifest(manifest)
    return build_rows(
        rows,
        Where(manifest),
        manifest,
        dict.fromkeys(PATH_COLUMNS, root),
        root,
        min_duration=min_duration,
        max_duration=max_duration,
        split_ratios=split_ratios,
        seed=seed,
        check_media=check_media,
    )
