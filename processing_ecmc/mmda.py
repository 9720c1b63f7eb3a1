"""Import the MMDA layout of the authors' loader into an ECMC ``DatasetDict`` (``import_mmda``).

A CSV with ``id, hdTimeStart, hdTimeEnd, content, emotion, cognition, emotion_bin, cognition_bin``
(optionally ``split``), mapped to ``subject_id = id``, ``utterance_id =
"{id}_{hdTimeStart}_{hdTimeEnd}"`` (the raw CSV strings, as in the feature file names),
``transcript = content``, ``emotion_caption = emotion``, ``cognition_caption = cognition``,
``emotion_label = emotion_bin``, ``cognition_labels = cognition_bin``, ``language = 'zh'``; then
built like a manifest (``dataset_build``: same checks, drops and splits; errors use the MMDA
column names).

Times: ``time_unit='auto'`` treats the columns as milliseconds when any value exceeds 10000 (no
single utterance is that many seconds into a session), else as seconds; pass ``'s'`` or ``'ms'``
to decide. Features, per utterance ``name = "{id}_{hdTimeStart}_{hdTimeEnd}"``:
``features_root/audio/<name>.npy`` and ``features_root/video/<name>.npy`` when those subfolders
exist; otherwise a flat ``features_root/<name>.npy`` is taken as the *audio* features (the
reference layout does not say which modality a single file holds; use the subfolders to be
explicit). Media: ``media_root/{id}.mp4`` (whole-session recordings cut by the times) when
``media_root`` is given.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from modeling_ecmc.vocabulary_ecmc import FEATURE_COLUMNS, MEDIA_COLUMNS, MIN_UTTERANCE_SECONDS
from .dataset_build import build_rows
from .manifest import Where, read_manifest
from .manifest_fields import as_number, as_text, is_missing
from .schema import FEATURE_PATHS, MEDIA_PATHS

logger = logging.getLogger(__name__)

MMDA_COLUMNS = ("id", "hdTimeStart", "hdTimeEnd", "content", "emotion", "cognition", "emotion_bin", "cognition_bin")
MMDA_LANGUAGE = "zh"
# schema column -> MMDA column, so that errors name the column the user wrote
_MMDA_NAMES = {
    "subject_id": "id",
    "transcript": "content",
    "emotion_label": "emotion_bin",
    "cognition_labels": "cognition_bin",
    "start": "hdTimeStart",
    "end": "hdTimeEnd",
}
_MS_THRESHOLD = 10000

__all__ = ["import_mmda", "MMDA_COLUMNS"]


def _feature_folders(feats: Path | None) -> dict:
    """feature column -> the folder of its ``<name>.npy`` files (see the module docstring)."""
    if feats is None:
        return {}
    modalities = [m for m in ("audio", "video") if (feats / m).is_dir()]
    if not modalities:  # flat: one file per utterance, taken as audio
        return {FEATURE_COLUMNS["audio"]: feats}
    return {FEATURE_COLUMNS[m]: feats / m for m in modalities}


def import_mmda(
    csv_path,
    media_root=None,
    features_root=None,
    min_duration: float = MIN_UTTERANCE_SECONDS,
    max_duration: float | None = 60.0,
    split_ratios=(0.8, 0.1, 0.1),
    seed: int = 0,
    check_media: bool = True,
    time_unit: str = "auto",
    media_extension: str = ".mp4",
):
    """Import the MMDA layout (the authors' CSV + ``{id}_{start}_{end}.npy`` features and/or
    ``{id}.mp4`` session recordings); returns ``(dataset_dict, dropped_rows)`` like ``build_dataset``.
    """
    csv_path = Path(csv_path).expanduser().resolve()
    where = Where(csv_path, _MMDA_NAMES)
    if time_unit not in ("auto", "s", "ms"):
        raise ValueError(f"time_unit {time_unit!r} must be 'auto', 's' or 'ms'")
    rows = read_manifest(csv_path)
    if rows:
        absent = [c for c in MMDA_COLUMNS if c not in rows[0][1]]
        if absent:
            raise where.error(1, f"missing MMDA column(s) {absent}; expected {list(MMDA_COLUMNS)}")
    for line, raw in rows:
        for column in ("hdTimeStart", "hdTimeEnd"):
            if is_missing(raw.get(column)):
                raise where.error(line, f"empty {column}")
    times = [as_number(raw[c], c, where, line) for line, raw in rows for c in ("hdTimeStart", "hdTimeEnd")]
    scale = 1.0
    if time_unit == "ms" or (time_unit == "auto" and times and max(times) > _MS_THRESHOLD):
        scale = 1000.0
    logger.info("%s: MMDA times read as %s", csv_path, "milliseconds" if scale == 1000.0 else "seconds")

    media = Path(media_root).expanduser().resolve() if media_root is not None else None
    feats = Path(features_root).expanduser().resolve() if features_root is not None else None
    for folder, what in ((media, "media_root"), (feats, "features_root")):
        if folder is not None and not folder.is_dir():
            raise ValueError(f"{what} {folder} is not a folder")
    feature_folders = _feature_folders(feats)

    converted = []
    for line, raw in rows:
        subject, t0, t1 = (as_text(raw[c]).strip() for c in ("id", "hdTimeStart", "hdTimeEnd"))
        name = f"{subject}_{t0}_{t1}"
        row = {
            "subject_id": subject,
            "utterance_id": name,
            "transcript": raw.get("content"),
            "emotion_caption": raw.get("emotion"),
            "cognition_caption": raw.get("cognition"),
            "emotion_label": raw.get("emotion_bin"),
            "cognition_labels": raw.get("cognition_bin"),
            "language": MMDA_LANGUAGE,
            "start": as_number(t0, "hdTimeStart", where, line) / scale,
            "end": as_number(t1, "hdTimeEnd", where, line) / scale,
        }
        if "split" in raw:
            row["split"] = raw["split"]
        if media is not None:
            row[MEDIA_COLUMNS["video"]] = str(media / f"{subject}{media_extension}")
        row.update({column: str(folder / f"{name}.npy") for column, folder in feature_folders.items()})
        converted.append((line, row))

    roots = {**dict.fromkeys(MEDIA_PATHS, media or csv_path.parent), **dict.fromkeys(FEATURE_PATHS, feats or csv_path.parent)}
    extra = {"format": "mmda", "media_root": str(media) if media else None, "features_root": str(feats) if feats else None}
    used = [folder for folder in (media, feats) if folder is not None] or [csv_path.parent]
    data_root = Path(os.path.commonpath([str(folder) for folder in used]))
    return build_rows(
        converted,
        where,
        csv_path,
        roots,
        data_root,
        min_duration=min_duration,
        max_duration=max_duration,
        split_ratios=split_ratios,
        seed=seed,
        check_media=check_media,
        extra_info=extra,
    )
