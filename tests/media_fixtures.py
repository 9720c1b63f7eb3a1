"""Real media files made at test time with the ffmpeg binary that ships in `imageio-ffmpeg`.

Shared by the tests (import as ``from media_fixtures import make_video`` or
``from tests.media_fixtures import ...``). Every helper writes one file and returns its path.

- ``make_video(path, seconds, fps=25, size=(320, 240), audio_rate=None, channels=1, ...)``:
  H.264 MP4, optionally with an AAC audio track. ``timecode=True`` draws each frame's presentation
  time in milliseconds into its pixels, losslessly (``read_timecodes`` recovers it exactly), so a
  test can check which part of the file a decoded frame came from. ``vfr=True`` makes a variable
  frame rate file: the middle third keeps only every third frame.
- ``make_audio(path, seconds, rate=22050, channels=1)``: wav / flac / mp3 by extension.
- ``tone_onset``: audio that is silent before ``onset`` seconds and a tone afterwards.
- ``write_bytes``: corrupt / empty / unknown-container files.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def run_ffmpeg(*args: str) -> None:
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *map(str, args)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({result.returncode}): {' '.join(cmd)}\n{result.stderr}")


def _audio_expr(channels: int, frequency: float, onset: float | None) -> str:
    """aevalsrc expression: channel k is a sine of amplitude 0.4 / (k + 1) (so channels differ)."""
    gate = f"gte(t\\,{onset})*" if onset is not None else ""
    return "|".join(f"{gate}{0.4 / (k + 1):.4f}*sin(2*PI*{frequency}*t)" for k in range(channels))


def make_video(
    path,
    seconds: float,
    fps: float = 25,
    size=(320, 240),
    audio_rate: int | None = None,
    channels: int = 1,
    *,
    timecode: bool = False,
    vfr: bool = False,
    frequency: float = 440.0,
    audio_onset: float | None = None,
    audio_delay: float | None = None,
) -> Path:
    """Write an MP4 (H.264 video, AAC audio at ``audio_rate`` Hz with ``channels`` channels if given).

    Audio channel k is a ``frequency`` Hz sine of amplitude 0.4 / (k + 1) (mono: 0.4; stereo: 0.4 and
    0.2, whose mean is 0.3), silent before ``audio_onset`` seconds when that is given. With
    ``audio_delay`` the audio track starts that many seconds after the video (``-itsoffset``).
    """
    path = Path(path)
    width, height = size
    if timecode:
        # lossless RGB H.264: red + 256 * green = presentation time in ms, blue = 128
        video = (
            f"color=c=black:s={width}x{height}:r={fps}:d={seconds},format=gbrp,"
            "geq=r='mod(round(T*1000)\\,256)':g='floor(round(T*1000)/256)':b='128'"
        )
        vcodec = ["-c:v", "libx264rgb", "-qp", "0"]
    else:
        video = f"testsrc=size={width}x{height}:rate={fps}:duration={seconds}"
        vcodec = ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "veryfast"]
    if vfr:
        third = seconds / 3
        video += f",select='lt(t\\,{third})+gte(t\\,{2 * third})+not(mod(n\\,3))'"
    args = ["-f", "lavfi", "-i", video]
    if audio_rate:
        expr = _audio_expr(channels, frequency, audio_onset)
        if audio_delay:
            args += ["-itsoffset", str(audio_delay)]
        args += ["-f", "lavfi", "-i", f"aevalsrc='{expr}':s={audio_rate}:d={seconds}"]
        args += ["-map", "0:v", "-map", "1:a", "-c:a", "aac", "-b:a", "128k", "-ar", str(audio_rate)]
    args += vcodec
    if vfr:
        args += ["-fps_mode", "vfr"]
    args += ["-t", str(seconds), str(path)]
    run_ffmpeg(*args)
    return path


def make_audio(
    path,
    seconds: float,
    rate: int = 22050,
    channels: int = 1,
    *,
    frequency: float = 440.0,
    onset: float | None = None,
) -> Path:
    """Write an audio file; the container/codec follows the extension (.wav PCM16, .flac, .mp3)."""
    path = Path(path)
    expr = _audio_expr(channels, frequency, onset)
    codec = {".wav": ["-c:a", "pcm_s16le"], ".flac": ["-c:a", "flac"], ".mp3": ["-c:a", "libmp3lame"]}
    args = ["-f", "lavfi", "-i", f"aevalsrc='{expr}':s={rate}:d={seconds}"]
    args += codec.get(path.suffix.lower(), []) + ["-ar", str(rate), str(path)]
    run_ffmpeg(*args)
    return path


def write_bytes(path, data: bytes) -> Path:
    path = Path(path)
    path.write_bytes(data)
    return path


def random_bytes(path, size: int = 20000, seed: int = 0) -> Path:
    return write_bytes(path, np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes())


def read_timecodes(frames: np.ndarray) -> np.ndarray:
    """Presentation time in ms of each frame of a ``timecode=True`` video, from ``(N, H, W, 3)`` RGB."""
    frames = np.asarray(frames)
    red = np.median(frames[..., 0].reshape(len(frames), -1), axis=1)
    green = np.median(frames[..., 1].reshape(len(frames), -1), axis=1)
    return (red + 256 * green).astype(np.int64)


def dominant_frequency(wave: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.fft.rfftfreq(len(wave), 1.0 / sample_rate)[int(np.argmax(spectrum))])


__all__ = [
    "ffmpeg_exe",
    "run_ffmpeg",
    "make_video",
    "make_audio",
    "write_bytes",
    "random_bytes",
    "read_timecodes",
    "dominant_frequency",
]
