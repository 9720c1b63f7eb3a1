"""Build, validate, save, load and push ECMC data sets (``datasets.DatasetDict``, schema in ``schema.py``).

This module does not travel inside checkpoints; it needs ``datasets`` (the ``data`` extra).

Manifests (``build_dataset``)
-----------------------------
A UTF-8 JSONL file (one JSON object per line; ``.jsonl`` / ``.ndjson`` / ``.json``) or CSV file
(``.csv``; ``.tsv`` is tab-separated; another extension is sniffed from the first character). One
row per utterance, in either layout:

- *per-utterance clips*: each row names its own media file; no ``start`` / ``end`` (the whole file);
- *whole-session recordings*: rows share a recording and give the utterance's ``start`` / ``end``
  in seconds.

Columns are those of ``schema.COLUMNS`` plus an optional ``split``. Required: ``subject_id``,
``utterance_id``, ``transcript``, and the labels ``emotion_label`` (-1/0/1 or
negative/neutral/positive) and ``cognition_labels`` (four 0/1: a list, or a string such as
``"[0, 1, 0, 0]"`` or ``"0,1,0,0"``) -- the schema has no "unknown" label value (-1 is *negative*).
Optional columns default to: ``video_path`` / ``audio_path`` / ``*_features_path`` ``''``,
``start`` 0.0, ``end`` -1.0 (end of the media), captions ``''``, ``depression`` / ``anxiety`` -1
(unknown), ``language`` ``'en'``. Other columns are ignored (their names are logged).

Paths
-----
Media and feature paths in a manifest are relative to ``data_root`` (default: the manifest's
folder) or absolute; either way they must resolve (symlinks followed) inside ``data_root``, else a
``ValueError``. **Built data sets store absolute, resolved paths**, and each split's
``info.description`` is a JSON object ``{"ecmc": 1, "data_root": ..., "source": ..., "paths":
"absolute"}``, so a saved data set works from any working directory (``data_root_of(dsd)`` reads
it back). ``push_dataset`` rewrites paths relative to ``data_root`` before uploading (absolute
paths would leak the local folder layout and mean nothing elsewhere); the media themselves are
never uploaded.

Errors and drops
----------------
A malformed manifest is a ``ValueError`` naming the manifest, the line and the problem: no data
rows, invalid UTF-8 (with the byte offset), invalid JSON, a missing required column or value, an
unparsable number, a label out of range (a JSON ``true`` is not a valence), a text column that is
not text or not valid Unicode (lone surrogates), a path escaping ``data_root`` (symlinks followed)
or containing NUL, a duplicate ``utterance_id``, known subject-level labels (``depression`` /
``anxiety``) that differ between one subject's rows, a ``split`` column that puts one subject in
two splits.

Rows that are well-formed but unusable are *dropped and reported*, never silently: every drop is a
dict ``{"row": i, "line": n, "utterance_id": ..., "file": ..., "reason": ...}`` (``row`` is the
0-based data-row index, ``line`` the manifest line, ``reason`` starts with a category such as
``"too short:"``). Reasons: empty transcript, invalid segment (negative start, end <= start),
missing file, unreadable media (``media_ecmc.media_duration`` fails, when ``check_media``), bad
features (a ``.npy`` that cannot be loaded without pickle, is not 2-D ``T x d``, is empty, or holds
NaN/Inf), segment beyond the media's end, too short (``< min_duration`` s: the paper drops
utterances under 2 s) or too long (``> max_duration`` s). The number of drops per category is
logged at WARNING; transcripts and captions never reach the log.

Splits
------
With a ``split`` column (``train`` / ``validation`` (also ``val``, ``valid``, ``dev``) / ``test``),
it is used as given. Otherwise subjects are split deterministically: the sorted subject ids of the
kept rows are shuffled with ``random.Random(seed)`` and cut by ``split_ratios``; a subject is
never in two splits. The DatasetDict always has the three splits of ``schema.SPLITS`` (possibly
empty).

MMDA (``import_mmda``)
----------------------
The layout of the authors' loader: a CSV with ``id, hdTimeStart, hdTimeEnd, content, emotion,
cognition, emotion_bin, cognition_bin`` (optionally ``split``), mapped to ``subject_id = id``,
``utterance_id = "{id}_{hdTimeStart}_{hdTimeEnd}"`` (the raw CSV strings, as in the feature file
names), ``transcript = content``, ``emotion_caption = emotion``, ``cognition_caption = cognition``,
``emotion_label = emotion_bin``, ``cognition_labels = cognition_bin``, ``language = 'zh'``.
Times: ``time_unit='auto'`` treats the columns as milliseconds when any value exceeds 10000
(no single utterance is that many seconds into a session), else as seconds; pass ``'s'`` or
``'ms'`` to decide. Features, per utterance ``name = "{id}_{hdTimeStart}_{hdTimeEnd}"``:
``features_root/audio/<name>.npy`` and ``features_root/video/<name>.npy`` when those subfolders
exist; otherwise a flat ``features_root/<name>.npy`` is taken as the *audio* features (the
reference layout does not say which modality a single file holds; use the subfolders to be
explicit). Media: ``media_root/{id}.mp4`` (whole-session recordings cut by the times) when
``media_root`` is given.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import logging
import math
import os
import random
from collections import Counter
from pathlib import Path

import numpy as np

from modeling_ecmc.atomic_io import atomic_folder, recover_folder
from modeling_ecmc.media_ecmc import TOLERANCE_S, MediaError, media_duration
from .schema import COGNITION_LABELS, COLUMNS, EMOTION_LABELS, SPLITS, features

logger = logging.getLogger(__name__)

REQUIRED = ("subject_id", "utterance_id", "transcript", "emotion_label", "cognition_labels")
DEFAULTS = {
    "video_path": "",
    "audio_path": "",
    "start": 0.0,
    "end": -1.0,
    "emotion_caption": "",
    "cognition_caption": "",
    "depression": -1,
    "anxiety": -1,
    "language": "en",
    "audio_features_path": "",
    "video_features_path": "",
}
PATH_COLUMNS = ("video_path", "audio_path", "audio_features_path", "video_features_path")
MEDIA_COLUMNS = ("video_path", "audio_path")
FEATURE_COLUMNS = ("audio_features_path", "video_features_path")
LANGUAGES = ("en", "zh")
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
_EMOTION_NAMES = {name: value for value, name in EMOTION_LABELS.items()}
DESCRIPTION_KEY = "ecmc"

__all__ = [
    "build_dataset",
    "import_mmda",
    "save_dataset",
    "load_dataset_dict",
    "push_dataset",
    "data_root_of",
    "read_manifest",
]


# ----------------------------------------------------------------------------- reading manifests


class _Where:
    """Formats 'manifest, line N: problem' for ValueErrors; ``names`` maps schema columns to the
    source's own column names (MMDA) so that messages use the names the user wrote."""

    def __init__(self, path, names=None):
        self.path = str(path)
        self.names = dict(names or {})

    def col(self, column: str) -> str:
        return self.names.get(column, column)

    def error(self, line, problem) -> ValueError:
        where = f"{self.path}, line {line}" if line else self.path
        return ValueError(f"{where}: {problem}")


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise ValueError(f"{path}: manifest not found" if not path.exists() else f"{path}: not a file")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        hint = " (it starts with a UTF-16 byte-order mark)" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        raise ValueError(
            f"{path}: not valid UTF-8 at byte offset {exc.start} (line {line}): {exc.reason}{hint}; "
            "re-save the file as UTF-8"
        ) from None
    return text[1:] if text.startswith("\ufeff") else text


def _manifest_format(path: Path, text: str) -> str:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    if suffix == ".tsv":
        return "tsv"
    return "jsonl" if text.lstrip().startswith("{") else "csv"


def read_manifest(path) -> list[tuple[int, dict]]:
    """``[(line number, raw row dict), ...]`` of a JSONL or CSV manifest (strict UTF-8)."""
    path = Path(path)
    where = _Where(path)
    text = _read_text(path)
    kind = _manifest_format(path, text)
    rows = []
    if kind == "jsonl":
        # split on "\n" only: str.splitlines would also split inside JSON strings at U+2028 etc.
        for number, line in enumerate(text.split("\n"), start=1):
            line = line.rstrip("\r")
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise where.error(number, f"invalid JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(value, dict):
                hint = " (a JSON array? write one object per line: JSON Lines)" if isinstance(value, list) else ""
                raise where.error(number, f"expected a JSON object, got {type(value).__name__}{hint}")
            rows.append((number, value))
        return rows
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if kind == "tsv" else ",")
    try:
        header = next(reader)
    except StopIteration:
        return rows
    header = [name.strip() for name in header]
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise where.error(1, f"duplicate column(s) {duplicates} in the header")
    line = reader.line_num + 1
    try:
        for record in reader:
            if any(cell.strip() for cell in record):
                if len(record) > len(header):
                    raise where.error(line, f"{len(record)} fields but the header has {len(header)}")
                row = dict(zip(header, record))
                # a short record leaves trailing columns absent (their defaults apply)
                rows.append((line, row))
            line = reader.line_num + 1
    except csv.Error as exc:
        raise where.error(reader.line_num, f"malformed CSV ({exc})") from None
    return rows


# ----------------------------------------------------------------------------- normalising rows


def _missing(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    return value if isinstance(value, str) else str(value)


def _text_field(value, column, where, line) -> str:
    """A text column: a string (numbers are written as text), valid Unicode (no lone surrogates,
    which JSON's \\uDCxx escapes or a surrogateescape decode of non-UTF-8 bytes leave behind)."""
    if isinstance(value, (list, dict, bool)):
        raise where.error(line, f"{where.col(column)} must be text, got a JSON {type(value).__name__}")
    text = _text(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise where.error(
            line, f"{where.col(column)} is not valid Unicode text (lone surrogate at character {exc.start}: "
                  "decoded from non-UTF-8 bytes?)"
        ) from None
    return text


def _number(value, column, where, line) -> float:
    column = where.col(column)
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise where.error(line, f"{column} {value!r} is not a number") from None
    if not math.isfinite(number):
        raise where.error(line, f"{column} {value!r} is not a finite number")
    return number


def _integer(value, column, where, line) -> int:
    if isinstance(value, bool):
        return int(value)
    number = _number(value, column, where, line)
    if number != int(number):
        raise where.error(line, f"{column} {value!r} is not an integer")
    return int(number)


def _emotion(value, where, line, column="emotion_label") -> int:
    column = where.col(column)
    if isinstance(value, bool):
        raise where.error(line, f"{column} {value!r} is not a valence: use -1 (negative), 0 (neutral) or 1 (positive)")
    if isinstance(value, str) and value.strip().lower() in _EMOTION_NAMES:
        return _EMOTION_NAMES[value.strip().lower()]
    label = _integer(value, column, where, line)
    if label not in EMOTION_LABELS:
        raise where.error(line, f"{column} {value!r} out of range: use -1 (negative), 0 (neutral) or 1 (positive)")
    return label


def _cognition(value, where, line, column="cognition_labels") -> list[int]:
    column = where.col(column)
    parsed = value
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            try:
                parsed = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                parsed = [part for part in text.strip("[]() ").replace(";", ",").split(",") if part.strip()]
    if isinstance(parsed, (np.ndarray, tuple)):
        parsed = list(parsed)
    n = len(COGNITION_LABELS)
    if not isinstance(parsed, list) or len(parsed) != n:
        raise where.error(line, f"{column} {value!r} must be a list of {n} flags (0/1) in the order {list(COGNITION_LABELS)}")
    flags = []
    for flag in parsed:
        try:
            flag = _integer(flag, column, where, line)
        except ValueError:
            flag = None
        if flag not in (0, 1):
            raise where.error(line, f"{column} {value!r} out of range: each of the {n} flags must be 0 or 1")
        flags.append(flag)
    return flags


def _subject_label(value, column, where, line) -> int:
    if isinstance(value, str) and value.strip().lower() in ("yes", "no", "true", "false", "unknown"):
        return {"yes": 1, "true": 1, "no": 0, "false": 0, "unknown": -1}[value.strip().lower()]
    label = _integer(value, column, where, line)
    if label not in (-1, 0, 1):
        raise where.error(line, f"{column} {value!r} out of range: use 1 (yes), 0 (no) or -1 (unknown)")
    return label


def _normalise(raw: dict, where: _Where, line: int) -> dict:
    """One manifest row -> a schema row (paths still as written) plus 'split' (or None)."""
    for column in REQUIRED:
        if column not in raw:
            raise where.error(line, f"missing required column {where.col(column)!r}")
    for column in ("subject_id", "utterance_id"):
        if _missing(raw[column]):
            raise where.error(line, f"empty {where.col(column)}")
    for column in ("emotion_label", "cognition_labels"):
        if _missing(raw[column]) or (isinstance(raw[column], list) and not raw[column]):
            raise where.error(
                line, f"missing {where.col(column)} (labels are required; -1 means negative, not unknown)"
            )
    value = lambda column: DEFAULTS[column] if _missing(raw.get(column)) else raw[column]  # noqa: E731
    row = {
        "subject_id": _text_field(raw["subject_id"], "subject_id", where, line).strip(),
        "utterance_id": _text_field(raw["utterance_id"], "utterance_id", where, line).strip(),
        "transcript": _text_field(raw["transcript"], "transcript", where, line),
        "emotion_caption": _text_field(value("emotion_caption"), "emotion_caption", where, line),
        "cognition_caption": _text_field(value("cognition_caption"), "cognition_caption", where, line),
        "start": _number(value("start"), "start", where, line),
        "end": _number(value("end"), "end", where, line),
        "emotion_label": _emotion(raw["emotion_label"], where, line),
        "cognition_labels": _cognition(raw["cognition_labels"], where, line),
        "depression": _subject_label(value("depression"), "depression", where, line),
        "anxiety": _subject_label(value("anxiety"), "anxiety", where, line),
        "language": _text(value("language")).strip().lower(),
    }
    if row["language"] not in LANGUAGES:
        raise where.error(line, f"language {row['language']!r} is not one of {list(LANGUAGES)}")
    for column in PATH_COLUMNS:
        row[column] = _text_field(value(column), column, where, line).strip()
    split = raw.get("split")
    if _missing(split):
        row["split"] = None
    else:
        name = _text(split).strip().lower()
        if name not in SPLIT_ALIASES:
            raise where.error(line, f"split {split!r} is not one of {list(SPLITS)}")
        row["split"] = SPLIT_ALIASES[name]
    return row


def _resolve(path_text: str, root: Path, column: str, where: _Where, line: int) -> str:
    """Absolute resolved path inside ``root`` (a ValueError when it escapes)."""
    if not path_text:
        return ""
    if "\x00" in path_text:
        raise where.error(line, f"{column} {path_text!r} contains a NUL character")
    candidate = Path(os.path.expanduser(path_text))
    if not candidate.is_absolute():
        candidate = root / candidate
    resolved = candidate.resolve()
    if resolved != root and root not in resolved.parents:
        raise where.error(line, f"{column} {path_text!r} resolves to {resolved}, outside data_root {root}")
    return str(resolved)


# ----------------------------------------------------------------------------- validation


def _check_features(path: str):
    """None if the .npy holds a finite, non-empty 2-D (T x d) array, else the drop reason."""
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
    except OSError as exc:
        return f"bad features: {path} cannot be read ({exc.strerror or exc})"
    if magic != b"\x93NUMPY":  # numpy would call any other file "pickled data"
        return f"bad features: {path} is not a readable .npy file (no NumPy header)"
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as exc:
        return f"bad features: {path} cannot be loaded without pickle ({exc})"
    except Exception as exc:  # truncated, not a .npy, ...
        return f"bad features: {path} is not a readable .npy file ({type(exc).__name__}: {exc})"
    if array.ndim != 2:
        return f"bad features: {path} has shape {tuple(array.shape)}, expected 2-D (frames x dim)"
    if array.shape[0] == 0 or array.shape[1] == 0:
        return f"bad features: {path} is empty (shape {tuple(array.shape)})"
    if not np.issubdtype(array.dtype, np.number):
        return f"bad features: {path} has non-numeric dtype {array.dtype}"
    if not np.all(np.isfinite(array)):
        return f"bad features: {path} contains NaN or Inf"
    return None


class _Validator:
    def __init__(self, min_duration, max_duration, check_media):
        self.min_duration = min_duration
        self.max_duration = max_duration
        self.check_media = check_media
        self._durations = {}
        self._features = {}

    def duration(self, path):
        if path not in self._durations:
            try:
                self._durations[path] = (media_duration(path), None)
            except MediaError as exc:
                self._durations[path] = (None, str(exc))
        return self._durations[path]

    def features(self, path):
        if path not in self._features:
            self._features[path] = _check_features(path)
        return self._features[path]

    def problem(self, row):
        """(reason, file) of the first problem of a row, or None."""
        main = next((row[c] for c in PATH_COLUMNS if row[c]), "")
        if not row["transcript"].strip():
            return "empty transcript: nothing after stripping whitespace", main
        start, end = row["start"], row["end"]
        if start < 0 or (end != -1 and end < 0):
            return f"invalid segment: negative time (start {start}, end {end})", main
        if end != -1 and end <= start:
            return f"invalid segment: end {end} s is not after start {start} s", main
        for column in PATH_COLUMNS:
            path = row[column]
            if path and not os.path.isfile(path):
                what = "is a directory" if os.path.isdir(path) else "does not exist"
                return f"missing file: {column} {path} {what}", path
        media_end = None
        if self.check_media:
            for column in MEDIA_COLUMNS:
                path = row[column]
                if not path:
                    continue
                seconds, error = self.duration(path)
                if error is not None:
                    return f"unreadable media: {error}", path
                media_end = seconds if media_end is None else min(media_end, seconds)
            for column in FEATURE_COLUMNS:
                if row[column]:
                    reason = self.features(row[column])
                    if reason:
                        return reason, row[column]
        if media_end is not None:
            if start >= media_end or (end != -1 and end > media_end + TOLERANCE_S):
                return (
                    f"segment beyond media: [{start}, {end}] s but the media lasts {media_end:.3f} s",
                    main,
                )
        stop = end if end != -1 else media_end
        if stop is not None:
            length = min(stop, media_end) - start if media_end is not None else stop - start
            if length < self.min_duration:
                return f"too short: {length:.2f} s < min_duration {self.min_duration} s", main
            if self.max_duration is not None and length > self.max_duration:
                return f"too long: {length:.2f} s > max_duration {self.max_duration} s", main
        return None


# ----------------------------------------------------------------------------- splitting


def _assign_splits(subjects, split_ratios, seed) -> dict:
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


def _check_subject_labels(rows, where):
    """depression / anxiety are subject-level: the known values (1/0; -1 is unknown) of one subject's
    rows must agree."""
    seen = {}
    for line, row in rows:
        for column in ("depression", "anxiety"):
            if row[column] == -1:
                continue
            first = seen.setdefault((row["subject_id"], column), (row[column], line))
            if first[0] != row[column]:
                raise where.error(
                    line,
                    f"subject {row['subject_id']!r} has {column} {row[column]} here but {first[0]} on line "
                    f"{first[1]}: subject-level labels must agree across the subject's rows",
                )


def _check_given_splits(rows, where):
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


# ----------------------------------------------------------------------------- building


def _description(data_root: Path, source: Path, extra=None) -> str:
    info = {DESCRIPTION_KEY: 1, "data_root": str(data_root), "source": str(source), "paths": "absolute"}
    info.update(extra or {})
    return json.dumps(info)


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


def _build(
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
        row = _normalise(raw, where, line)
        uid = row["utterance_id"]
        if uid in first_line:
            raise where.error(line, f"duplicate utterance_id {uid!r} (first on line {first_line[uid]})")
        first_line[uid] = line
        for column in PATH_COLUMNS:
            row[column] = _resolve(row[column], roots[column], column, where, line)
        normalised.append((line, row))
    _check_subject_labels(normalised, where)
    given = any(row["split"] is not None for _, row in normalised)
    if given:
        _check_given_splits(normalised, where)

    validator = _Validator(min_duration, max_duration, check_media)
    kept, dropped = [], []
    for index, (line, row) in enumerate(normalised):
        problem = validator.problem(row)
        if problem is None:
            kept.append(row)
        else:
            reason, file = problem
            dropped.append(
                {"row": index, "line": line, "utterance_id": row["utterance_id"], "file": file, "reason": reason}
            )
    _log_drops(dropped, len(normalised), source)
    if not given:
        assignment = _assign_splits({row["subject_id"] for row in kept}, split_ratios, seed)
        for row in kept:
            row["split"] = assignment[row["subject_id"]]
    return _to_dataset_dict(kept, _description(data_root, source, extra_info)), dropped


def build_dataset(
    manifest_path,
    data_root=None,
    min_duration: float = 2.0,
    max_duration: float | None = 60.0,
    split_ratios=(0.8, 0.1, 0.1),
    seed: int = 0,
    check_media: bool = True,
):
    """Read a JSONL/CSV manifest into an ECMC ``DatasetDict``; returns ``(dataset_dict, dropped_rows)``.

    See the module docstring for columns, paths, errors, drops and splits.
    """
    manifest = Path(manifest_path).expanduser().resolve()
    root = Path(data_root).expanduser().resolve() if data_root is not None else manifest.parent
    if not root.is_dir():
        raise ValueError(f"data_root {root} is not a folder")
    where = _Where(manifest)
    rows = read_manifest(manifest)
    roots = dict.fromkeys(PATH_COLUMNS, root)
    return _build(
        rows,
        where,
        manifest,
        roots,
        root,
        min_duration=min_duration,
        max_duration=max_duration,
        split_ratios=split_ratios,
        seed=seed,
        check_media=check_media,
    )


# ----------------------------------------------------------------------------- MMDA


MMDA_COLUMNS = ("id", "hdTimeStart", "hdTimeEnd", "content", "emotion", "cognition", "emotion_bin", "cognition_bin")
_MS_THRESHOLD = 10000


def import_mmda(
    csv_path,
    media_root=None,
    features_root=None,
    min_duration: float = 2.0,
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
    where = _Where(
        csv_path,
        {
            "subject_id": "id",
            "transcript": "content",
            "emotion_label": "emotion_bin",
            "cognition_labels": "cognition_bin",
            "start": "hdTimeStart",
            "end": "hdTimeEnd",
        },
    )
    if time_unit not in ("auto", "s", "ms"):
        raise ValueError(f"time_unit {time_unit!r} must be 'auto', 's' or 'ms'")
    rows = read_manifest(csv_path)
    if rows:
        absent = [c for c in MMDA_COLUMNS if c not in rows[0][1]]
        if absent:
            raise where.error(1, f"missing MMDA column(s) {absent}; expected {list(MMDA_COLUMNS)}")
    for line, raw in rows:
        for column in ("hdTimeStart", "hdTimeEnd"):
            if _missing(raw.get(column)):
                raise where.error(line, f"empty {column}")
    times = [_number(raw[c], c, where, line) for line, raw in rows for c in ("hdTimeStart", "hdTimeEnd")]
    scale = 1.0
    if time_unit == "ms" or (time_unit == "auto" and times and max(times) > _MS_THRESHOLD):
        scale = 1000.0
    logger.info("%s: MMDA times read as %s", csv_path, "milliseconds" if scale == 1000.0 else "seconds")

    media = Path(media_root).expanduser().resolve() if media_root is not None else None
    feats = Path(features_root).expanduser().resolve() if features_root is not None else None
    for folder, what in ((media, "media_root"), (feats, "features_root")):
        if folder is not None and not folder.is_dir():
            raise ValueError(f"{what} {folder} is not a folder")
    layout = None
    if feats is not None:
        layout = "subfolders" if (feats / "audio").is_dir() or (feats / "video").is_dir() else "flat"

    converted = []
    for line, raw in rows:
        subject, t0, t1 = (_text(raw[c]).strip() for c in ("id", "hdTimeStart", "hdTimeEnd"))
        name = f"{subject}_{t0}_{t1}"
        row = {
            "subject_id": subject,
            "utterance_id": name,
            "transcript": raw.get("content"),
            "emotion_caption": raw.get("emotion"),
            "cognition_caption": raw.get("cognition"),
            "emotion_label": raw.get("emotion_bin"),
            "cognition_labels": raw.get("cognition_bin"),
            "language": "zh",
            "start": _number(t0, "hdTimeStart", where, line) / scale,
            "end": _number(t1, "hdTimeEnd", where, line) / scale,
        }
        if "split" in raw:
            row["split"] = raw["split"]
        if media is not None:
            row["video_path"] = str(media / f"{subject}{media_extension}")
        if layout == "subfolders":
            if (feats / "audio").is_dir():
                row["audio_features_path"] = str(feats / "audio" / f"{name}.npy")
            if (feats / "video").is_dir():
                row["video_features_path"] = str(feats / "video" / f"{name}.npy")
        elif layout == "flat":
            row["audio_features_path"] = str(feats / f"{name}.npy")
        converted.append((line, row))

    roots = {
        "video_path": media or csv_path.parent,
        "audio_path": media or csv_path.parent,
        "audio_features_path": feats or csv_path.parent,
        "video_features_path": feats or csv_path.parent,
    }
    extra = {"format": "mmda", "media_root": str(media) if media else None, "features_root": str(feats) if feats else None}
    used = [folder for folder in (media, feats) if folder is not None] or [csv_path.parent]
    data_root = Path(os.path.commonpath([str(folder) for folder in used]))
    dsd, dropped = _build(
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
    return dsd, dropped


# ----------------------------------------------------------------------------- save / load / push


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
        columns = {c: split[c] for c in ("emotion_label", "cognition_labels", "depression", "anxiety")}
        for i, uid in enumerate(ids):
            problem = None
            if columns["emotion_label"][i] not in EMOTION_LABELS:
                problem = f"emotion_label {columns['emotion_label'][i]!r} out of range"
            elif len(columns["cognition_labels"][i]) != len(COGNITION_LABELS) or \
                    any(flag not in (0, 1) for flag in columns["cognition_labels"][i]):
                problem = f"cognition_labels {columns['cognition_labels'][i]!r} are not {len(COGNITION_LABELS)} flags 0/1"
            elif any(columns[c][i] not in (-1, 0, 1) for c in ("depression", "anxiety")):
                problem = f"depression/anxiety {columns['depression'][i]!r}/{columns['anxiety'][i]!r} out of range"
            elif uid in first_split:
                problem = f"duplicate utterance_id (also in split {first_split[uid]!r})"
            if problem:
                raise ValueError(f"{path}: split {name!r}, row {i} (utterance {uid!r}): {problem}")
            first_split[uid] = name
    return dsd


def _relative_paths(dsd, root: str):
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


def push_dataset(dsd, repo_id: str, private: bool = True, token=None, relative_paths: bool = True):
    """Push to the Hub, **private unless asked otherwise**. Media files are not uploaded; with
    ``relative_paths`` (default) paths are made relative to ``data_root`` first, so the pushed table
    does not carry the local folder layout."""
    root = data_root_of(dsd)
    if relative_paths and root:
        dsd = _relative_paths(dsd, root)
    logger.info("pushing data set to %s (private=%s)", repo_id, private)
    return dsd.push_to_hub(repo_id, private=private, token=token)
