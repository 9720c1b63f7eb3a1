"""Reading ECMC manifests and turning their rows into schema rows (``schema.COLUMNS``), checked.

Manifests
---------
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
(unknown), ``language`` ``'en'``. Other columns are ignored (``dataset_build`` logs their names).

Paths
-----
Media and feature paths in a manifest are relative to ``data_root`` (default: the manifest's
folder) or absolute; either way they must resolve (symlinks followed) inside ``data_root``, else a
``ValueError`` (``resolve_path``).

Errors
------
A malformed manifest is a ``ValueError`` naming the manifest, the line and the problem: invalid
UTF-8 (with the byte offset), invalid JSON, a missing required column or value, an unparsable
number, a label out of range (a JSON ``true`` is not a valence), a text column that is not text or
not valid Unicode (lone surrogates) -- one cell's checks are in ``manifest_fields`` --, a path
escaping ``data_root`` (symlinks followed) or containing NUL.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from modeling_ecmc.atomic_io import read_utf8
from modeling_ecmc.vocabulary_ecmc import DEFAULT_LANGUAGE, DISORDERS, LANGUAGES
from .manifest_fields import as_number, as_text, cognition_field, emotion_field, is_missing, subject_label_field, text_field
from .schema import FEATURE_PATHS, MEDIA_PATHS, PATH_COLUMNS, SPLITS
from .splits import SPLIT_ALIASES

REQUIRED = ("subject_id", "utterance_id", "transcript", "emotion_label", "cognition_labels")
DEFAULTS = {
    **dict.fromkeys(MEDIA_PATHS, ""),
    "start": 0.0,
    "end": -1.0,
    "emotion_caption": "",
    "cognition_caption": "",
    **dict.fromkeys(DISORDERS, -1),  # unknown
    "language": DEFAULT_LANGUAGE,
    **dict.fromkeys(FEATURE_PATHS, ""),
}

__all__ = ["read_manifest", "normalise_row", "resolve_path", "Where", "REQUIRED", "DEFAULTS"]


# ----------------------------------------------------------------------------- reading manifests


class Where:
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
    where = Where(path)
    text = read_utf8(path, what="manifest")
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


# ----------------------------------------------------------------------------- rows


def normalise_row(raw: dict, where: Where, line: int) -> dict:
    """One manifest row -> a schema row (paths still as written) plus 'split' (or None)."""
    for column in REQUIRED:
        if column not in raw:
            raise where.error(line, f"missing required column {where.col(column)!r}")
    for column in ("subject_id", "utterance_id"):
        if is_missing(raw[column]):
            raise where.error(line, f"empty {where.col(column)}")
    for column in ("emotion_label", "cognition_labels"):
        if is_missing(raw[column]) or (isinstance(raw[column], list) and not raw[column]):
            raise where.error(
                line, f"missing {where.col(column)} (labels are required; -1 means negative, not unknown)"
            )
    value = lambda column: DEFAULTS[column] if is_missing(raw.get(column)) else raw[column]  # noqa: E731
    row = {
        "subject_id": text_field(raw["subject_id"], "subject_id", where, line).strip(),
        "utterance_id": text_field(raw["utterance_id"], "utterance_id", where, line).strip(),
        "transcript": text_field(raw["transcript"], "transcript", where, line),
        "emotion_caption": text_field(value("emotion_caption"), "emotion_caption", where, line),
        "cognition_caption": text_field(value("cognition_caption"), "cognition_caption", where, line),
        "start": as_number(value("start"), "start", where, line),
        "end": as_number(value("end"), "end", where, line),
        "emotion_label": emotion_field(raw["emotion_label"], where, line),
        "cognition_labels": cognition_field(raw["cognition_labels"], where, line),
        **{column: subject_label_field(value(column), column, where, line) for column in DISORDERS},
        "language": as_text(value("language")).strip().lower(),
    }
    if row["language"] not in LANGUAGES:
        raise where.error(line, f"language {row['language']!r} is not one of {list(LANGUAGES)}")
    for column in PATH_COLUMNS:
        row[column] = text_field(value(column), column, where, line).strip()
    split = raw.get("split")
    if is_missing(split):
        row["split"] = None
    else:
        name = as_text(split).strip().lower()
        if name not in SPLIT_ALIASES:
            raise where.error(line, f"split {split!r} is not one of {list(SPLITS)}")
        row["split"] = SPLIT_ALIASES[name]
    return row


def resolve_path(path_text: str, root: Path, column: str, where: Where, line: int) -> str:
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
