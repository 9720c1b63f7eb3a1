"""One interview recording and its timed transcript -> the patient's turns as manifest rows.

    rows, dropped, patient = segment_session("s01.mp4", "s01.vtt")   # see processing_ecmc.turns
    write_turns(rows, "turns.jsonl")

Each row carries the manifest schema's media and text columns (`subject_id`, `utterance_id`,
`video_path` or `audio_path`, `start`, `end`, `transcript`, `language`) plus `speaker` and `question`,
so `ecmc caption --inputs turns.jsonl` captions it as it is; labels are not invented (a data set for
training needs `emotion_label` and `cognition_labels` added by annotators). A transcript that runs
past the end of the recording is refused: it belongs to another file.
"""

import json
from pathlib import Path

from modeling_ecmc.atomic_io import write_text
from modeling_ecmc.media_ecmc import AUDIO_ONLY_EXTENSIONS, media_duration
from modeling_ecmc.vocabulary_ecmc import DEFAULT_LANGUAGE, MIN_UTTERANCE_SECONDS

from .transcript_files import read_timed_transcript
from .turns import SegmentationError, interview_turns

SLACK = 1.0  # seconds a transcript may run past the recording's end (rounding in subtitle tools)


def segment_session(recording, transcript, patient: str | None = None, subject_id: str | None = None,
                    min_seconds: float = MIN_UTTERANCE_SECONDS, language: str = DEFAULT_LANGUAGE):
    """(rows, [(Turn, reason)] dropped, the patient's label) of one recording (module docstring)."""
    recording = Path(recording)
    segments = read_timed_transcript(transcript)
    duration = media_duration(recording)  # a MediaError naming the file if it cannot be read
    last = max(s.end for s in segments)
    if last > duration + SLACK:
        raise SegmentationError(f"{transcript}: its last segment ends at {last:.1f} s, but {recording} lasts "
                                f"{duration:.1f} s: is it this recording's transcript?")
    kept, dropped, patient = interview_turns(segments, patient, min_seconds)
    subject = subject_id or recording.stem
    media = "audio_path" if recording.suffix.lower() in AUDIO_ONLY_EXTENSIONS else "video_path"
    rows = [{"subject_id": subject, "utterance_id": f"{subject}_t{k:03d}", media: str(recording.resolve()),
             "start": round(t.start, 3), "end": round(t.end, 3), "transcript": t.transcript, "language": language,
             "speaker": t.speaker, "question": t.question} for k, t in enumerate(kept, 1)]
    return rows, dropped, patient


def write_turns(rows, path) -> Path:
    """One JSON line per kept turn, written atomically (an interrupted write leaves no partial file)."""
    return write_text(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def drop_summary(dropped) -> str:
    """'3 dropped: 2 shorter than 2 s, 1 greeting' (counts only, never texts)."""
    counts = {}
    for _, reason in dropped:
        counts[reason] = counts.get(reason, 0) + 1
    detail = ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    return f"{len(dropped)} dropped" + (f": {detail}" if detail else "")
