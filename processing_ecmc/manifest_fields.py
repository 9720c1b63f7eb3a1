"""Parsing and checking one cell of a manifest row: text (valid Unicode), numbers, labels.

Each function takes the cell's ``value``, its schema ``column`` and the row's ``where``
(``manifest.Where``) and ``line``, and raises ``where.error(line, ...)`` naming the column as the
user wrote it (MMDA's names for an MMDA import). Labels accept their names (``negative`` /
``neutral`` / ``positive``; ``yes`` / ``no`` / ``unknown``) or their values (``vocabulary_ecmc``).
"""

from __future__ import annotations

import ast
import json
import math

import numpy as np

from modeling_ecmc.vocabulary_ecmc import COGNITION_LABELS, EMOTION_LABELS, SUBJECT_LABEL_VALUES, cognition_labels_problem

_EMOTION_NAMES = {name: value for value, name in EMOTION_LABELS.items()}
_VALENCES = [f"{value} ({name})" for value, name in EMOTION_LABELS.items()]
_USE_VALENCES = "use " + ", ".join(_VALENCES[:-1]) + " or " + _VALENCES[-1]  # use -1 (negative), ... or 1 (positive)
_SUBJECT_WORDS = {"yes": 1, "true": 1, "no": 0, "false": 0, "unknown": -1}
_USE_SUBJECT_VALUES = "use 1 (yes), 0 (no) or -1 (unknown)"

__all__ = ["is_missing", "as_text", "as_number", "text_field", "emotion_field", "cognition_field", "subject_label_field"]


# ----------------------------------------------------------------------------- values


def is_missing(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def as_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    return value if isinstance(value, str) else str(value)


def text_field(value, column, where, line) -> str:
    """A text column: a string (numbers are written as text), valid Unicode (no lone surrogates,
    which JSON's \\uDCxx escapes or a surrogateescape decode of non-UTF-8 bytes leave behind)."""
    if isinstance(value, (list, dict, bool)):
        raise where.error(line, f"{where.col(column)} must be text, got a JSON {type(value).__name__}")
    text = as_text(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise where.error(
            line, f"{where.col(column)} is not valid Unicode text (lone surrogate at character {exc.start}: "
                  "decoded from non-UTF-8 bytes?)"
        ) from None
    return text


def as_number(value, column, where, line) -> float:
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
    number = as_number(value, column, where, line)
    if number != int(number):
        raise where.error(line, f"{column} {value!r} is not an integer")
    return int(number)


# ----------------------------------------------------------------------------- labels


def _label(value, column, where, line, words, values, use) -> int:
    """A label written as one of ``words`` (any case) or as an integer in ``values``."""
    column = where.col(column)
    if isinstance(value, str) and value.strip().lower() in words:
        return words[value.strip().lower()]
    label = _integer(value, column, where, line)
    if label not in values:
        raise where.error(line, f"{column} {value!r} out of range: {use}")
    return label


def emotion_field(value, where, line, column="emotion_label") -> int:
    if isinstance(value, bool):
        raise where.error(line, f"{where.col(column)} {value!r} is not a valence: {_USE_VALENCES}")
    return _label(value, column, where, line, _EMOTION_NAMES, EMOTION_LABELS, _USE_VALENCES)


def cognition_field(value, where, line, column="cognition_labels") -> list[int]:
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
            flags.append(_integer(flag, column, where, line))
        except ValueError:
            flags.append(None)
    if cognition_labels_problem(flags):
        raise where.error(line, f"{column} {value!r} out of range: each of the {n} flags must be 0 or 1")
    return flags


def subject_label_field(value, column, where, line) -> int:
    return _label(value, column, where, line, _SUBJECT_WORDS, SUBJECT_LABEL_VALUES, _USE_SUBJECT_VALUES)
