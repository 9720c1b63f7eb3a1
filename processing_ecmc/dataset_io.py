"""A built ECMC data set on disk: its recorded ``data_root``, atomic save, checked load, and the
copy with relative paths that is published (``hub_card.push_dataset``).

**Built data sets store absolute, resolved paths**, and each split's ``info.description`` is a JSON
object ``{"ecmc": 1, "data_root": ..., "source": ..., "paths": "absolute"}`` (``describe``), so a
saved data set works from any working directory (``data_root_of(dsd)`` reads it back).
``with_relative_paths`` rewrites the paths relative to ``data_root`` and drops the local folders
from the description: absolute paths would leak the local folder layout and mean nothing elsewhere.

This module does not travel inside checkpoints; it needs ``datasets`` (the ``data`` extra).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from modeling_ecmc.atomic_io import atomic_folder, recover_folder
from modeling_ecmc.vocabulary_ecmc import (
    COGNITION_LABELS,
    DISORDERS,
    SUBJECT_LABEL_VALUES,
    cognition_labels_problem,
    emotion_label_problem,
)
from .schema import COLUMNS, PATH_COLUMNS, SPLITS

logger = logging.getLogger(__name__)

DESCRIPTION_KEY = "ecmc"

__all__ = ["describe", "data_root_of", "save_dataset", "load_dataset_dict", "with_relative_paths"]


def describe(data_root: Path, source: Path, extra=None) -> str:
    """The ``info.description`` of a built split: where its paths come from (JSON)."""
    info = {DESCRIPTION_KEY: 1, "data_root": str(data_root), "source": str(source), "paths": "absolute"}
    info.update(extra or {})
    return json.dumps(info)


def data_root_of(dsd) -> str | None:
    """The ``data_root`` recorded by ``build_dataset`` / ``import_mmda`` (None if absent)."""
    for split in dsd.values():
        try:
            info = json.loads(split.info.description or "")
        except (json.JSONDecodeError, TypeError):
            continue
        if isinstance(info, dict) and info.get(DESCRIPTION_KEY):
            return info.get("data_root")
    return None


def save_dataset(dsd, path) -> Path:
    """``save_to_disk`` atomically (``atomic_io.atomic_folder``): written to a temporary sibling
    folder, then renamed into place.

    An existing data set at ``path`` is replaced only after the new one is complete; if anything
    fails, or the process is killed, the old one stays (``load_dataset_dict`` puts it back if the
    kill fell between the two renames).
    """
    path = Path(path).expanduser().resolve()
    with atomic_folder(path) as new:
        # empty splits need an explicit shard, else load_from_disk cannot read them back
        dsd.save_to_disk(str(new), num_shards={name: 1 for name, split in dsd.items() if len(split) == 0})
    return path


def _row_problem(columns, i) -> str | None:
    """Why row ``i`` of a split (``columns``: label column -> values) breaks the schema, or None."""
    emotion, cognition = columns["emotion_label"][i], columns["cognition_labels"][i]
    if emotion_label_problem(emotion):
        return f"emotion_label {emotion!r} out of range"
    if cognition_labels_problem(cognition):
        return f"cognition_labels {cognition!r} are not {len(COGNITION_LABELS)} flags 0/1"
    subject = [columns[c][i] for c in DISORDERS]
    if any(value not in SUBJECT_LABEL_VALUES for value in subject):  # "depression/anxiety 3/0 out of range"
        return f"{'/'.join(DISORDERS)} {'/'.join(map(repr, subject))} out of range"
    return None


def load_dataset_dict(path):
    """``load_from_disk`` of a saved ECMC DatasetDict, checked against the schema: every column
    present, labels in range and utterance ids unique across splits (a data set edited or made by
    hand fails here, naming the row, not deep inside training)."""
    import datasets

    path = Path(path).expanduser()
    if recover_folder(path):
        logger.warning("%s: restored the previous data set (a save was interrupted)", path)
    if not path.is_dir():
        raise ValueError(f"{path}: no saved data set there")
    try:
        dsd = datasets.load_from_disk(str(path))
    except Exception as error:  # not a data set folder, or damaged files
        raise ValueError(f"{path}: not a readable saved data set ({type(error).__name__}: {error})") from None
    if not isinstance(dsd, datasets.DatasetDict):
        raise ValueError(f"{path}: holds a single Dataset, expected a DatasetDict with splits {list(SPLITS)}")
    first_split = {}
    for name, split in dsd.items():
        absent = [column for column in COLUMNS if column not in split.column_names]
        if absent:
            raise ValueError(f"{path}: split {name!r} lacks the ECMC column(s) {absent}")
        ids = split["utterance_id"]
        columns = {c: split[c] for c in ("emotion_label", "cognition_labels", *DISORDERS)}
        for i, uid in enumerate(ids):
            problem = _row_problem(columns, i)
            if problem is None and uid in first_split:
                problem = f"duplicate utterance_id (also in split {first_split[uid]!r})"
            if problem:
                raise ValueError(f"{path}: split {name!r}, row {i} (utterance {uid!r}): {problem}")
            first_split[uid] = name
    return dsd


def with_relative_paths(dsd, root: str):
    """A copy of ``dsd`` (in memory) whose paths are relative to ``root`` and whose descriptions
    no longer name local folders; ``dsd`` itself is unchanged."""
    def relative(batch):
        for column in PATH_COLUMNS:
            batch[column] = [os.path.relpath(p, root) if p and os.path.isabs(p) else p for p in batch[column]]
        return batch

    out = dsd.map(relative, batched=True, desc=None, keep_in_memory=True)  # no cache files in the saved data set
    for split in out.values():
        info = json.loads(split.info.description or "{}")
        info["paths"] = "relative to data_root"
        info.pop("data_root", None)
        info.pop("source", None)
        split.info.description = json.dumps(info)
    return out
