"""One interview recording (and its timed transcript, if there is one) -> the patient's turns as
manifest rows.

    rows, dropped, patient = segment_session("s01.mp4", "s01.vtt")   # see processing_ecmc.turns
    rows, dropped, patient = segment_session("s01.mp4")              # transcribed: processing_ecmc.transcribe
    write_turns(rows, "turns.jsonl")
    for recording, rows, dropped, patient in segment_folder("sessions/"):   # every recording of a folder

Each row carries the manifest schema's media and text columns (`subject_id`, `utterance_id`,
`video_path` or `audio_path`, `start`, `end`, `transcript`, `language`) plus `speaker` and `question`,
so `ecmc caption --inputs turns.jsonl` captions it as it is; labels are not invented (a data set for
training needs `emotion_label` and `cognition_labels` added by annotators). A transcript that runs
past the end of the recording is refused: it belongs to another file.
"""

import functools
import json
from pathlib import Path

from modeling_ecmc.atomic_io import write_text
from modeling_ecmc.media_ecmc import AUDIO_ONLY_EXTENSIONS, media_duration
from modeling_ecmc.vocabulary_ecmc import DEFAULT_LANGUAGE, MIN_UTTERANCE_SECONDS

from .transcript_files import SUFFIXES as TRANSCRIPT_SUFFIXES
from .transcript_files import read_timed_transcript
from .turns import SegmentationError, interview_turns

SLACK = 1.0  # seconds a transcript may run past the recording's end (rounding in subtitle tools)
ROW_TO_INPUT = {"video_path": "video", "audio_path": "audio"}  # manifest / `ecmc segment` column -> pipeline key
RECORDING_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4a", *sorted(AUDIO_ONLY_EXTENSIONS))


def segment_session(recording, transcript=None, patient: str | None = None, subject_id: str | None = None,
                    min_seconds: float = MIN_UTTERANCE_SECONDS, language: str = DEFAULT_LANGUAGE,
                    asr_model: str | None = None, num_speakers: int = 2, progress: bool = True, video=None):
    """(rows, [(Turn, reason)] dropped, the patient's label) of one recording (module docstring).
    `transcript`: a .srt / .vtt / .json file, or Segments already made (e.g. by your own ASR). Without one the recording is transcribed and its speakers found (`asr_model`,
    `num_speakers`: processing_ecmc.transcribe); they are named "speaker 1", "speaker 2", ...
    `video`: a separate video of the session (same timeline) when `recording` is its audio."""
    recording = Path(recording)
    segments = _transcribed(recording, patient, language, asr_model, num_speakers, progress) if transcript is None \
        else _read_transcript(recording, transcript)
    kept, dropped, patient = interview_turns(segments, patient, min_seconds)
    subject = subject_id or recording.stem
    media = {"audio_path" if recording.suffix.lower() in AUDIO_ONLY_EXTENSIONS else "video_path": str(recording.resolve())}
    if video is not None:
        media = {"video_path": str(Path(video).resolve()), "audio_path": str(recording.resolve())}
        if media_duration(video) + SLACK < media_duration(recording):  # MediaError if it cannot be read
            raise SegmentationError(f"{video} is shorter than {recording}: is it this session's video?")
    rows = [{"subject_id": subject, "utterance_id": f"{subject}_t{k:03d}", **media,
             "start": round(t.start, 3), "end": round(t.end, 3), "transcript": t.transcript, "language": language,
             "speaker": t.speaker, "question": t.question} for k, t in enumerate(kept, 1)]
    return rows, dropped, patient


def segment_folder(folder, transcripts=None, **options):
    """`segment_session` for every recording in `folder` (sorted by name; subject_id = its file name):
    yields (recording, rows, dropped, patient). A recording's transcript is the file of the same name
    in `transcripts` (a folder) when there is one, else it is transcribed. The first bad recording
    raises its error."""
    folder = Path(folder)
    recordings = sorted(p for p in folder.iterdir() if p.suffix.lower() in RECORDING_SUFFIXES and p.is_file())
    if not recordings:
        raise SegmentationError(f"{folder}: no recording in it ({', '.join(RECORDING_SUFFIXES)})")
    for recording in recordings:
        found = [Path(transcripts, recording.stem + suffix) for suffix in TRANSCRIPT_SUFFIXES] if transcripts else []
        transcript = next((p for p in found if p.is_file()), None)
        yield (recording, *segment_session(recording, transcript, **options))


def _read_transcript(recording: Path, transcript) -> list:
    segments = list(transcript) if isinstance(transcript, (list, tuple)) else read_timed_transcript(transcript)
    if not segments:
        raise SegmentationError(f"{recording}: the transcript given has no segment")
    duration = media_duration(recording)  # a MediaError naming the file if it cannot be read
    last = max(s.end for s in segments)
    if last > duration + SLACK:
        raise SegmentationError(f"{transcript}: its last segment ends at {last:.1f} s, but {recording} lasts "
                                f"{duration:.1f} s: is it this recording's transcript?")
    return segments


def _transcribed(recording: Path, patient, language, asr_model, num_speakers, progress) -> list:
    from .transcribe import transcribe_session

    if asr_model is None and language != "en":
        raise SegmentationError(f"the bundled Whisper model (tiny.en) transcribes English only: give an ASR model "
                                f"for {language!r} (a faster-whisper size, Hub id or CTranslate2 folder), or a "
                                "transcript with times")
    segments, separation = transcribe_session(recording, asr_model, language, num_speakers, progress=progress)
    if patient is None and len({s.speaker for s in segments}) < 2:
        raise SegmentationError(f"{recording}: one voice only (the closest two voices are {separation:.2f} similar, "
                                "above the one-voice bar): the interviewer's questions cannot be told from the "
                                "patient's answers; give the patient ('speaker 1') to keep every turn, or a "
                                "transcript with speakers")
    return segments


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


@functools.cache
def _not_inputs() -> frozenset:
    """The schema's columns that are not pipeline inputs (ids, labels, captions), and a turn's
    `speaker` / `question`."""
    from modeling_ecmc.pipeline_ecmc import UTTERANCE_KEYS

    from .schema import COLUMNS

    return frozenset((set(COLUMNS) | {"speaker", "question", "split"}) - set(ROW_TO_INPUT) - set(UTTERANCE_KEYS))


def pipeline_input(row: dict) -> dict:
    """One JSON line -> pipeline input: pipeline keys as they are, manifest rows translated (`video_path`,
    `end: -1` for the end of the file, empty paths); `_not_inputs()` left out. Any other key reaches the
    pipeline, which names it."""
    not_inputs = _not_inputs()
    item = {}
    for key, value in row.items():
        if key in not_inputs or (key in ROW_TO_INPUT and not value):
            continue
        if key == "end" and value == -1:
            continue
        item[ROW_TO_INPUT.get(key, key)] = value
    return item
