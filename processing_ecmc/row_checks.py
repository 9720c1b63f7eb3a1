"""The checks that drop a well-formed but unusable manifest row, with its reason.

Rows are *dropped and reported*, never silently. Reasons (each starts with its category): empty
transcript, invalid segment (negative start, end <= start), missing file, unreadable media
(``media_ecmc.media_duration`` fails, when ``check_media``), bad features (a ``.npy`` that
``feature_files.read_feature_file`` refuses: not loadable without pickle, not 2-D ``T x d``,
empty, NaN/Inf), segment beyond the media's end, too short (``< min_duration`` s: the paper drops
utterances under ``MIN_UTTERANCE_SECONDS``) or too long (``> max_duration`` s). Transcripts and
captions never appear in a reason.
"""

from __future__ import annotations

import os

from modeling_ecmc.media_ecmc import TOLERANCE_S, MediaError, media_duration, segment_length
from .feature_files import read_feature_file
from .schema import FEATURE_PATHS, MEDIA_PATHS, PATH_COLUMNS

__all__ = ["RowChecker", "check_features"]


def check_features(path: str):
    """None if the .npy holds a finite, non-empty 2-D (T x d) array, else the drop reason."""
    try:
        read_feature_file(path)
    except ValueError as exc:
        return f"bad features: {exc}"
    return None


class RowChecker:
    """``problem(row)``: (reason, file) of the first problem of a schema row (paths resolved), or
    None. Media durations and feature checks are cached per file (session layouts share them)."""

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
            self._features[path] = check_features(path)
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
            for column in MEDIA_PATHS:
                path = row[column]
                if not path:
                    continue
                seconds, error = self.duration(path)
                if error is not None:
                    return f"unreadable media: {error}", path
                media_end = seconds if media_end is None else min(media_end, seconds)
            for column in FEATURE_PATHS:
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
        length = segment_length(start, end, media_end)
        if length is not None:
            if length < self.min_duration:
                return f"too short: {length:.2f} s < min_duration {self.min_duration} s", main
            if self.max_duration is not None and length > self.max_duration:
                return f"too long: {length:.2f} s > max_duration {self.max_duration} s", main
        return None
