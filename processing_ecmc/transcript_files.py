"""Timed transcripts a user brings with a session recording: SRT, WebVTT or JSON segments.

    segments = read_timed_transcript("session.vtt")   # [Segment(start, end, speaker, text), ...] in time order

- **SRT**: numbered cues `00:01:02,500 --> 00:01:05,000` then text lines; a speaker is the text's
  `NAME:` prefix (`Interviewer: How are you?`), or none.
- **WebVTT**: `WEBVTT` header, cues `00:01:02.500 --> 00:01:05.000` (hours optional); a speaker is a
  voice tag `<v NAME>` or a `NAME:` prefix.
- **JSON**: a list of segments, or an object with `segments` (Whisper's output), each with `start`,
  `end` (seconds), `text` and optionally `speaker`.

A problem is a `TranscriptError` naming the file and the line (or segment) and what is wrong; cue
texts are never put in messages or logs (they are sensitive).
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path

from modeling_ecmc.atomic_io import read_utf8

SUFFIXES = (".srt", ".vtt", ".json")
_TIME = r"(?:(\d+):)?(\d{1,2}):(\d{2})[,.](\d{1,3})"
_CUE = re.compile(rf"^\s*{_TIME}\s*-->\s*{_TIME}")
_VOICE = re.compile(r"^<v(?:\.[\w.-]+)?\s+([^>]+)>")
_PREFIX = re.compile(r"^([A-Z][\w .'-]{0,40}):\s+")
_TAGS = re.compile(r"<[^>]+>")


class TranscriptError(ValueError):
    """A timed transcript that cannot be read; the message names the file and the place."""


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    speaker: str | None
    text: str


def _seconds(groups) -> float:
    hours, minutes, seconds, fraction = groups
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds) + int(fraction.ljust(3, "0")) / 1000


def _speaker_and_text(text: str, vtt: bool) -> tuple[str | None, str]:
    voice = _VOICE.match(text) if vtt else None
    if voice:
        return voice.group(1).strip(), _TAGS.sub("", text[voice.end():]).strip()
    text = _TAGS.sub("", text).strip()
    prefix = _PREFIX.match(text)
    if prefix:
        return prefix.group(1).strip(), text[prefix.end():].strip()
    return None, text


def _read_cues(path: Path, lines: list[str], vtt: bool) -> list[Segment]:
    segments, n = [], 0
    while n < len(lines):
        match = _CUE.match(lines[n])
        if not match:
            n += 1
            continue
        groups = match.groups()
        start, end = _seconds(groups[:4]), _seconds(groups[4:])
        cue_line = n + 1
        n += 1
        text = []
        while n < len(lines) and lines[n].strip():
            text.append(lines[n].strip())
            n += 1
        if end <= start:
            raise TranscriptError(f"{path}, line {cue_line}: the cue ends ({end:.3f} s) before it starts ({start:.3f} s)")
        speaker, words = _speaker_and_text(" ".join(text), vtt)
        if words:
            segments.append(Segment(start, end, speaker, words))
    return segments


def _read_json(path: Path, text: str) -> list[Segment]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TranscriptError(f"{path}: not JSON (line {exc.lineno}: {exc.msg})") from None
    items = data.get("segments") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise TranscriptError(f"{path}: expected a list of segments, or an object with 'segments'")
    segments = []
    for k, item in enumerate(items):
        where = f"{path}, segment {k}"
        if not isinstance(item, dict) or not {"start", "end", "text"} <= set(item):
            raise TranscriptError(f"{where}: a segment needs 'start', 'end' and 'text'")
        try:
            start, end = float(item["start"]), float(item["end"])
        except (TypeError, ValueError):
            raise TranscriptError(f"{where}: 'start' and 'end' must be numbers of seconds") from None
        if not 0 <= start < end:
            raise TranscriptError(f"{where}: needs 0 <= start < end, got {start} and {end}")
        if not isinstance(item["text"], str):
            raise TranscriptError(f"{where}: 'text' must be a string")
        speaker = item.get("speaker")
        if item["text"].strip():
            segments.append(Segment(start, end, None if speaker is None else str(speaker), item["text"].strip()))
    return segments


def read_timed_transcript(path) -> list[Segment]:
    """The file's segments in time order (see the module docstring); a TranscriptError otherwise."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise TranscriptError(f"{path}: unsupported transcript type {path.suffix or '(none)'}; use {', '.join(SUFFIXES)}")
    if not path.is_file():
        raise TranscriptError(f"{path}: no such file")
    text = read_utf8(path, "transcript", error=TranscriptError).lstrip("\ufeff")
    if path.suffix.lower() == ".json":
        segments = _read_json(path, text)
    else:
        vtt = path.suffix.lower() == ".vtt"
        if vtt and not text.startswith("WEBVTT"):
            raise TranscriptError(f"{path}: a WebVTT file starts with 'WEBVTT'")
        segments = _read_cues(path, text.splitlines(), vtt)
    if not segments:
        raise TranscriptError(f"{path}: no timed text found")
    return sorted(segments, key=lambda s: (s.start, s.end))
