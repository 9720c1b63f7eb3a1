"""Media decoding for ECMC: video frames and audio samples of one utterance segment.

This file travels inside saved checkpoints (the processor imports it), so it imports only the
standard library, numpy, torch, torchaudio and decord, and nothing else of ours.

Public API
----------
- ``load_video_frames(path, start=None, end=None, num_frames=16)`` -> ``(num_frames, H, W, 3)`` uint8 RGB.
- ``load_audio(path, start=None, end=None, sample_rate=16000)`` -> 1-D float32 mono waveform.
- ``media_duration(path)`` -> seconds.
- ``decode_all_frames(path, start, end, num_frames)``: the naive baseline (decode every frame of the
  segment, then subsample); same output as ``load_video_frames``, used only by benchmarks.
- ``MediaError`` (a ``ValueError``): every problem with a file; its message names the file.

Segments
--------
``start`` / ``end`` are seconds on the media's timeline; the segment is ``[start, end)``.
``start=None`` means 0; ``end=None`` or ``end=-1`` (the schema's "to the end" marker) means the end
of the stream. Other negative or non-finite times, ``start >= end``, and times beyond the stream's
duration are errors. An ``end`` that overshoots the duration by at most ``TOLERANCE_S`` (0.05 s:
container durations and the last frame's timestamp disagree by about that much) is clamped.

Video
-----
decord's ``VideoReader`` reads only the container index when opened; frame ``i`` belongs to the
segment when its presentation time ``t_i`` (from ``get_frame_timestamp``, so variable frame rate
files map seconds to frames correctly) satisfies ``start <= t_i < end``. Of the K frames of the
segment, ``num_frames`` are picked uniformly, one at the centre of each of ``num_frames`` equal bins
(``floor((j + 0.5) * K / num_frames)``). When K < num_frames, bins share frames, so some frames are
repeated (uniform sampling with replacement); the output always has ``num_frames`` frames. Only the
picked frames are decoded, by seeking (``get_batch``): decoding starts at the key frame before the
first picked frame, never at the start of the file. A segment with no frame is an error.

Audio
-----
The audio track of a video container or a separate audio file (wav/flac/mp3/...), both through
decord's ``AudioReader``, decoded at its native rate, all channels. In a video container, a track
that starts after the container's time zero is padded with leading silence so that times match the
video's; a plain audio file's timeline starts at its first sample. The audio duration is that of
the decoded samples (an AAC track may run ~20 ms past the video: its final frame's padding). Channels are
downmixed to mono by decord itself with ffmpeg's standard matrix (stereo: (L + R) / sqrt(2); see
`_open_audio` for why not by us), the segment is cut (with a small margin that avoids
filter edge effects) and resampled with ``torchaudio.functional.resample``; the result has exactly
``round((end - start) * sample_rate)`` samples. A segment shorter than ``MIN_AUDIO_S`` (10 ms) is an
error.

decord decodes a whole audio track when it opens it (it cannot seek in audio). To keep the cost of
reading many utterances from one long session recording at one decode, the mono native-rate
waveform of the most recently read file is cached (one entry, keyed by path, size and mtime).
Call ``clear_audio_cache()`` to free it.

decord does not expose a track's native sample rate in Python; it prints it from C++
(``AudioReader.get_info``). We read it from that print (stdout briefly redirected under a lock) and
fall back to comparing the length with a second decode that decord resamples to a known rate.
"""

import math
import os
import re
import sys
import tempfile
import threading

import numpy as np
import torch
import torchaudio

try:  # decord is the one decoder; keep this module importable without it (a clear error on use)
    import decord
except ImportError:  # pragma: no cover - exercised only where decord is missing
    decord = None

TOLERANCE_S = 0.05  # how far an end time may overshoot a stream's duration before it is an error
MIN_AUDIO_S = 0.01  # the shortest audio segment we return
_RESAMPLE_MARGIN_S = 0.05  # extra context cut on each side before resampling, then trimmed
# plain audio files: their timeline starts at the first decoded sample. For them ffmpeg reports the
# encoder delay it already skipped (MP3: ~25 ms) as a start time, which must not be padded again.
AUDIO_ONLY_EXTENSIONS = {".wav", ".wave", ".mp3", ".flac", ".ogg", ".oga", ".opus", ".aac", ".aif", ".aiff", ".wma"}
_STANDARD_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000)

__all__ = [
    "MediaError",
    "NoAudioTrackError",
    "load_video_frames",
    "load_audio",
    "media_duration",
    "decode_all_frames",
    "clear_audio_cache",
    "TOLERANCE_S",
    "MIN_AUDIO_S",
]


class MediaError(ValueError):
    """A media file cannot give what was asked; the message names the file and the problem."""


class NoAudioTrackError(MediaError):
    """The file has no audio track: callers that accept a missing modality catch this one."""


# ----------------------------------------------------------------------------- helpers


def _name(path) -> str:
    return os.fspath(path)


def _check_file(path) -> str:
    """Raise a MediaError for a missing, non-regular or empty file; return the path as a string."""
    if decord is None:
        raise MediaError(f"{_name(path)}: cannot decode media because the 'decord' package is not installed")
    path = _name(path)
    if not path:
        raise MediaError("empty media path: no file given")
    if not os.path.exists(path):
        raise MediaError(f"{path}: file not found")
    if os.path.isdir(path):
        raise MediaError(f"{path}: is a directory, not a media file")
    if os.path.getsize(path) == 0:
        raise MediaError(f"{path}: file is empty (0 bytes)")
    return path


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    for line in text.splitlines():
        line = re.sub(r"^\[[0-9:]+\]\s*\S+:\d+:\s*", "", line.strip())  # drop decord's "[time] file.cc:N:"
        if line:
            return line
    return type(exc).__name__


def _open_video(path: str):
    try:
        return decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
    except Exception as exc:  # decord raises RuntimeError or DECORDError
        message = str(exc)
        if "cannot find video stream" in message:
            raise MediaError(f"{path} has no video stream") from None
        raise MediaError(
            f"{path}: cannot be opened as video (corrupt file or unknown container): {_first_line(exc)}"
        ) from None


def _open_audio(path: str):
    try:
        # mono=True: decord (ffmpeg's resampler) downmixes. Its multi-channel output is corrupt for
        # interleaved 16-bit PCM (decord 0.6: the second channel of a stereo WAV reads as garbage
        # up to 1e34), so we never ask it for separate channels.
        return decord.AudioReader(path, ctx=decord.cpu(0), sample_rate=-1, mono=True)
    except Exception as exc:
        message = str(exc)
        if "find audio stream" in message:
            raise NoAudioTrackError(f"{path} has no audio track") from None
        raise MediaError(
            f"{path}: cannot be opened as audio (corrupt file or unknown container): {_first_line(exc)}"
        ) from None


def _as_time(value, what: str, path: str):
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise MediaError(f"{path}: {what} time {value!r} is not a number") from None
    if not math.isfinite(value):
        raise MediaError(f"{path}: {what} time {value} is not finite")
    return value


def _resolve_segment(path: str, start, end, duration: float, stream: str):
    """Validate [start, end) against a stream of `duration` seconds; return floats (end clamped)."""
    start = _as_time(start, "start", path)
    end = _as_time(end, "end", path)
    start = 0.0 if start is None else start
    if end is None or end == -1:
        end = duration
    if start < 0:
        raise MediaError(f"{path}: negative start time {start:.3f} s")
    if end < 0:
        raise MediaError(f"{path}: negative end time {end:.3f} s (use -1 or None for the end of the media)")
    if start >= duration:
        raise MediaError(f"{path}: start {start:.3f} s is beyond the {stream} duration {duration:.3f} s")
    if start >= end:
        raise MediaError(f"{path}: start {start:.3f} s is not before end {end:.3f} s")
    if end > duration + TOLERANCE_S:
        raise MediaError(f"{path}: end {end:.3f} s is beyond the {stream} duration {duration:.3f} s")
    return start, min(end, duration)


# ----------------------------------------------------------------------------- video


def _frame_times(vr) -> np.ndarray:
    """(n, 2) presentation start/end time of every frame, from the container index (no decoding)."""
    n = len(vr)
    if n == 0:
        return np.zeros((0, 2), dtype=np.float64)
    return np.asarray(vr.get_frame_timestamp(list(range(n))), dtype=np.float64).reshape(n, 2)


def _video_duration(times: np.ndarray) -> float:
    return float(times[-1, 1]) if len(times) else 0.0


def _segment_indices(path, vr, start, end, num_frames):
    """(picked frame indices with repeats, first, last) for the segment; validates everything."""
    if int(num_frames) != num_frames or num_frames < 1:
        raise MediaError(f"{path}: num_frames must be a positive integer, got {num_frames!r}")
    num_frames = int(num_frames)
    times = _frame_times(vr)
    if len(times) == 0:
        raise MediaError(f"{path}: video stream has no frames")
    start, end = _resolve_segment(path, start, end, _video_duration(times), "video")
    starts = times[:, 0]
    eps = 1e-6  # timestamps are rationals printed as floats
    inside = np.nonzero((starts >= start - eps) & (starts < end - eps))[0]
    if len(inside) == 0:
        raise MediaError(
            f"{path}: segment [{start:.3f}, {end:.3f}) s is too short: it contains no video frame"
        )
    first, count = int(inside[0]), len(inside)
    bins = np.floor((np.arange(num_frames) + 0.5) * count / num_frames).astype(np.int64)
    picked = inside[np.minimum(bins, count - 1)]
    return picked.astype(np.int64), first, int(inside[-1])


def _get_batch(path, vr, indices) -> np.ndarray:
    unique, inverse = np.unique(indices, return_inverse=True)
    try:
        frames = vr.get_batch([int(i) for i in unique]).asnumpy()
    except Exception as exc:
        raise MediaError(f"{path}: video frames cannot be decoded (corrupt stream?): {_first_line(exc)}") from None
    return np.ascontiguousarray(frames[inverse.reshape(-1)], dtype=np.uint8)


def load_video_frames(path, start=None, end=None, num_frames: int = 16) -> np.ndarray:
    """``num_frames`` RGB frames sampled uniformly from ``[start, end)`` seconds of a video file.

    Returns a ``(num_frames, H, W, 3)`` uint8 array. Frames are decoded by seeking, never the whole
    file; a segment with fewer frames than ``num_frames`` repeats frames (see the module docstring).
    Raises ``MediaError`` naming the file for a missing, empty, corrupt or audio-only file, a bad or
    out-of-range segment, or a segment that contains no frame.
    """
    path = _check_file(path)
    vr = _open_video(path)
    indices, _, _ = _segment_indices(path, vr, start, end, num_frames)
    return _get_batch(path, vr, indices)


def decode_all_frames(path, start, end, num_frames: int = 16) -> np.ndarray:
    """Naive baseline of ``load_video_frames``: decode every frame of the segment in order, then subsample.

    Same validation and the same output frames as ``load_video_frames``; kept for benchmarks only.
    """
    path = _check_file(path)
    vr = _open_video(path)
    indices, first, last = _segment_indices(path, vr, start, end, num_frames)
    try:
        vr.seek_accurate(first)
        decoded = [vr.next().asnumpy() for _ in range(first, last + 1)]
    except Exception as exc:
        raise MediaError(f"{path}: video frames cannot be decoded (corrupt stream?): {_first_line(exc)}") from None
    frames = np.stack(decoded)
    return np.ascontiguousarray(frames[indices - first], dtype=np.uint8)


# ----------------------------------------------------------------------------- audio

_INFO_LOCK = threading.Lock()
_CACHE_LOCK = threading.Lock()
_AUDIO_CACHE = {}  # key -> (mono float32 waveform incl. leading padding, native rate, duration s); one entry


def clear_audio_cache() -> None:
    """Drop the cached waveform of the last audio file read."""
    with _CACHE_LOCK:
        _AUDIO_CACHE.clear()


def _reported_sample_rate(reader):
    """The native rate decord prints in ``get_info`` (C++ stdout), or None if it cannot be read."""
    with _INFO_LOCK:
        try:
            for stream in (sys.stdout, sys.__stdout__):
                try:
                    stream.flush()
                except Exception:
                    pass
            with tempfile.TemporaryFile() as capture:
                saved = os.dup(1)
                try:
                    os.dup2(capture.fileno(), 1)
                    reader.get_info()
                finally:
                    os.dup2(saved, 1)
                    os.close(saved)
                capture.seek(0)
                text = capture.read().decode("utf-8", "replace")
        except Exception:
            return None
    match = re.search(r"original sample rate:\s*(\d+)", text)
    return int(match.group(1)) if match and int(match.group(1)) > 0 else None


def _estimated_sample_rate(path: str, num_samples: int):
    """Fallback: decode again with decord resampling to a known rate and compare the lengths.

    (decord's ``duration()`` is whole seconds only, so ``samples / duration`` is no estimate.)
    """
    probe_rate = 48000
    try:
        probe = decord.AudioReader(path, ctx=decord.cpu(0), sample_rate=probe_rate, mono=True)
        probe_samples = probe.shape[1]
    except Exception:
        return None
    if probe_samples <= 0 or num_samples <= 0:
        return None
    estimate = num_samples * probe_rate / probe_samples
    nearest = min(_STANDARD_RATES, key=lambda rate: abs(rate - estimate))
    return nearest if abs(nearest - estimate) / nearest < 0.01 else int(round(estimate))


def _padding_samples(reader) -> int:
    try:
        from decord import audio_reader as _ar

        return max(0, int(_ar._CAPI_AudioReaderGetNumPaddingSamples(reader._handle)))
    except Exception:
        return 0


def _decode_audio(path: str):
    """(mono float32 waveform on the container timeline, native rate, duration s), cached for one file."""
    stat = os.stat(path)
    key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns)
    with _CACHE_LOCK:
        if key in _AUDIO_CACHE:
            return _AUDIO_CACHE[key]
    reader = _open_audio(path)
    channels, num_samples = reader.shape
    if num_samples == 0 or channels == 0:
        raise MediaError(f"{path}: audio track is empty (no samples)")
    rate = _reported_sample_rate(reader) or _estimated_sample_rate(path, num_samples)
    if not rate:
        raise MediaError(f"{path}: cannot determine the audio sample rate")
    samples = np.asarray(reader._array if hasattr(reader, "_array") else reader[:].asnumpy(), dtype=np.float32)
    mono = samples.mean(axis=0) if samples.ndim == 2 else samples.reshape(-1)
    padding = 0 if os.path.splitext(path)[1].lower() in AUDIO_ONLY_EXTENSIONS else _padding_samples(reader)
    if padding:
        mono = np.concatenate([np.zeros(padding, dtype=np.float32), mono])
    if not np.all(np.isfinite(mono)):
        raise MediaError(f"{path}: audio track contains NaN or infinite samples")
    # decoded samples may run past the true end by a codec's final-frame padding (AAC: < 1024
    # samples, ~20 ms); decord's declared duration is whole seconds only, so the samples decide
    duration = len(mono) / rate
    del reader, samples
    result = (np.ascontiguousarray(mono, dtype=np.float32), int(rate), duration)
    with _CACHE_LOCK:
        _AUDIO_CACHE.clear()
        _AUDIO_CACHE[key] = result
    return result


def load_audio(path, start=None, end=None, sample_rate: int = 16000) -> np.ndarray:
    """Mono float32 waveform of ``[start, end)`` seconds, resampled to ``sample_rate`` Hz.

    ``path`` is a video container (its audio track is used) or an audio file. The result has
    ``round((end - start) * sample_rate)`` samples. Raises ``MediaError`` naming the file for a
    missing, empty or corrupt file, a file without an audio track, a bad or out-of-range segment,
    or a segment shorter than 10 ms.
    """
    path = _check_file(path)
    if int(sample_rate) != sample_rate or sample_rate <= 0:
        raise MediaError(f"{path}: sample_rate must be a positive integer, got {sample_rate!r}")
    sample_rate = int(sample_rate)
    wave, native, duration = _decode_audio(path)
    start, end = _resolve_segment(path, start, end, duration, "audio")
    if end - start < MIN_AUDIO_S:
        raise MediaError(
            f"{path}: audio segment [{start:.3f}, {end:.3f}) s is too short (under {MIN_AUDIO_S * 1000:.0f} ms)"
        )
    target_len = int(round((end - start) * sample_rate))
    first = int(round(start * native))
    last = min(len(wave), int(round(end * native)))
    margin = int(round(_RESAMPLE_MARGIN_S * native))
    lo, hi = max(0, first - margin), min(len(wave), last + margin)
    chunk = torch.from_numpy(wave[lo:hi].copy())
    if native != sample_rate:
        chunk = torchaudio.functional.resample(chunk, native, sample_rate)
    offset = int(round((first - lo) * sample_rate / native))
    out = chunk[offset : offset + target_len].numpy()
    if len(out) < target_len:  # the stream ended a few samples early (codec padding): pad silence
        out = np.concatenate([out, np.zeros(target_len - len(out), dtype=np.float32)])
    return np.ascontiguousarray(out, dtype=np.float32)


# ----------------------------------------------------------------------------- duration


def segment_length(start, end, media_end: float | None) -> float | None:
    """Seconds of the segment [start, end] (end None or -1: the media's end) within media lasting
    `media_end` seconds: the one measure of an utterance's length, for the data build's
    `min_duration` and the processor's `min_seconds`."""
    start = start or 0.0
    stop = end if end is not None and end != -1 else media_end
    if stop is None:
        return None
    return (min(stop, media_end) if media_end is not None else stop) - start


def media_duration(path) -> float:
    """Duration in seconds: of the video stream when the file has one, else of its audio track.

    For a video this reads only the container index (cheap); an audio-only file is decoded (and
    cached, see ``load_audio``). Raises ``MediaError`` naming the file when it cannot be read: a
    video container whose video stream is broken (a truncated MP4, an image or text file named
    ``.mp4``) is an error even if its audio track would decode.
    """
    path = _check_file(path)
    try:
        vr = _open_video(path)
    except MediaError as error:
        if "has no video stream" not in str(error):
            if os.path.splitext(path)[1].lower() not in AUDIO_ONLY_EXTENSIONS:
                raise  # a broken video (truncated MP4, an image or text named .mp4): say so
        vr = None  # an audio file: its track decides
    if vr is not None:
        times = _frame_times(vr)
        if len(times):
            return _video_duration(times)
    try:
        return _decode_audio(path)[2]
    except NoAudioTrackError:
        raise MediaError(f"{path} has neither a video stream with frames nor an audio track") from None
