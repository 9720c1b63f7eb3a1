"""modeling_ecmc.media_ecmc on real media made by ffmpeg at test time (tests/media_fixtures.py)."""

from __future__ import annotations

import numpy as np
import pytest

from modeling_ecmc import media_ecmc
from modeling_ecmc.media_ecmc import (
    MediaError,
    decode_all_frames,
    load_audio,
    load_video_frames,
    media_duration,
)

try:
    from media_fixtures import (
        dominant_frequency,
        make_audio,
        make_video,
        random_bytes,
        read_timecodes,
        write_bytes,
    )
except ImportError:  # tests/ imported as a package
    from tests.media_fixtures import (
        dominant_frequency,
        make_audio,
        make_video,
        random_bytes,
        read_timecodes,
        write_bytes,
    )


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("media")
    return {
        # 6 s, 25 fps, frames carry their own timestamp; AAC 44.1 kHz mono
        "timecode": make_video(d / "timecode.mp4", 6, fps=25, size=(32, 24), audio_rate=44100, timecode=True),
        # variable frame rate: 30 fps, but 2-4 s keeps only every third frame (10 fps)
        "vfr": make_video(d / "vfr.mp4", 6, fps=30, size=(32, 24), timecode=True, vfr=True),
        "stereo48": make_video(d / "stereo48.mp4", 3, fps=25, size=(64, 48), audio_rate=48000, channels=2),
        "mono44": make_video(d / "mono44.mp4", 3, fps=25, size=(64, 48), audio_rate=44100, channels=1),
        "onset": make_video(d / "onset.mp4", 4, fps=25, size=(64, 48), audio_rate=48000, audio_onset=2.0),
        "delayed": make_video(
            d / "delayed.mp4", 4, fps=25, size=(64, 48), audio_rate=16000, audio_onset=0.5, audio_delay=1.0
        ),
        "noaudio": make_video(d / "clip.mp4", 2, fps=25, size=(64, 48)),
        "wav": make_audio(d / "speech.wav", 2.5, rate=22050),
        "wav_stereo": make_audio(d / "stereo.wav", 1.0, rate=8000, channels=2),
        "flac": make_audio(d / "speech.flac", 1.5, rate=32000),
        "mp3": make_audio(d / "speech.mp3", 1.5, rate=44100),
        "corrupt": random_bytes(d / "corrupt.mp4"),
        "empty": write_bytes(d / "empty.mp4", b""),
        "unknown": write_bytes(d / "notes.xyz", b"this is plain text, not a media container\n" * 50),
        "missing": d / "missing.mp4",
    }


# ----------------------------------------------------------------------------- video


def test_video_shape_dtype(media):
    frames = load_video_frames(media["stereo48"], 0.5, 2.5, num_frames=8)
    assert frames.shape == (8, 48, 64, 3)
    assert frames.dtype == np.uint8


@pytest.mark.parametrize("start,end", [(0.0, 1.0), (1.5, 3.2), (4.0, None), (2.0, -1)])
def test_video_frames_come_from_the_segment(media, start, end):
    frames = load_video_frames(media["timecode"], start, end, num_frames=16)
    ms = read_timecodes(frames)
    stop = 6.0 if end in (None, -1) else end
    assert len(ms) == 16
    assert ms.min() >= start * 1000 and ms.max() < stop * 1000, ms
    assert np.all(np.diff(ms) >= 0)
    # uniform: the samples span the segment (first and last within one bin of the edges)
    bin_ms = (stop - start) * 1000 / 16
    assert ms[0] - start * 1000 <= bin_ms + 40
    assert stop * 1000 - ms[-1] <= bin_ms + 40


def test_whole_file_by_default(media):
    ms = read_timecodes(load_video_frames(media["timecode"], num_frames=6))
    assert ms.min() < 1000 and ms.max() >= 5000


def test_fewer_frames_than_requested_repeats(media):
    # [1.0, 1.2) at 25 fps holds 5 frames; 16 requested -> each repeated, in order
    ms = read_timecodes(load_video_frames(media["timecode"], 1.0, 1.2, num_frames=16))
    assert len(ms) == 16
    assert sorted(set(ms.tolist())) == [1000, 1040, 1080, 1120, 1160]
    assert np.all(np.diff(ms) >= 0)


def test_variable_frame_rate_maps_seconds_by_timestamps(media):
    # 2-4 s is at 10 fps while the file averages ~23 fps: an avg-fps mapping would land elsewhere
    ms = read_timecodes(load_video_frames(media["vfr"], 2.0, 4.0, num_frames=20))
    assert ms.min() >= 2000 and ms.max() < 4000
    assert len(set(ms.tolist())) == 20  # exactly the 20 frames of the segment
    ms = read_timecodes(load_video_frames(media["vfr"], 4.0, 5.0, num_frames=30))
    assert ms.min() >= 4000 and ms.max() < 5000 and len(set(ms.tolist())) == 30


def test_decode_all_frames_matches_seeking(media):
    a = load_video_frames(media["timecode"], 1.3, 4.1, num_frames=16)
    b = decode_all_frames(media["timecode"], 1.3, 4.1, num_frames=16)
    np.testing.assert_array_equal(a, b)


def test_end_within_tolerance_is_clamped(media):
    frames = load_video_frames(media["timecode"], 5.0, 6.0 + 0.03, num_frames=4)
    assert read_timecodes(frames).max() < 6000
    with pytest.raises(MediaError, match="beyond"):
        load_video_frames(media["timecode"], 5.0, 6.5)


def test_media_duration(media):
    assert media_duration(media["timecode"]) == pytest.approx(6.0, abs=0.05)
    assert media_duration(media["vfr"]) == pytest.approx(6.0, abs=0.05)
    assert media_duration(media["wav"]) == pytest.approx(2.5, abs=0.01)
    assert media_duration(media["noaudio"]) == pytest.approx(2.0, abs=0.05)


# ----------------------------------------------------------------------------- audio


@pytest.mark.parametrize(
    "key,start,end,seconds",
    [
        ("mono44", 0.5, 2.0, 1.5),  # AAC 44.1 kHz mono
        ("stereo48", 1.0, 2.25, 1.25),  # AAC 48 kHz stereo
        ("timecode", None, None, 6.0),  # the whole track
        ("wav", 0.2, None, 2.3),  # separate 22.05 kHz wav
        ("flac", 0.0, 1.0, 1.0),
        ("mp3", 0.25, 1.25, 1.0),
    ],
)
def test_audio_resampled_mono_length(media, key, start, end, seconds):
    wave = load_audio(media[key], start, end, sample_rate=16000)
    assert wave.dtype == np.float32 and wave.ndim == 1
    # a whole AAC track may run ~20 ms long (its final frame's padding)
    assert abs(len(wave) - round(seconds * 16000)) <= 0.03 * 16000
    if start is not None and end is not None:
        assert len(wave) == round(seconds * 16000)  # an explicit segment is exact
    assert np.all(np.isfinite(wave))
    assert dominant_frequency(wave, 16000) == pytest.approx(440, abs=5)


def test_audio_other_sample_rate(media):
    wave = load_audio(media["wav"], 0.0, 1.0, sample_rate=8000)
    assert len(wave) == 8000
    assert dominant_frequency(wave, 8000) == pytest.approx(440, abs=5)


def test_stereo_downmix_is_ffmpeg_matrix(media):
    # channels carry amplitude 0.4 and 0.2 of the same sine; ffmpeg's stereo->mono matrix is
    # (L + R) / sqrt(2), so the downmix has amplitude 0.6 / sqrt(2) = 0.424
    wave = load_audio(media["wav_stereo"], 0.1, 0.9, sample_rate=8000)
    assert np.abs(wave).max() == pytest.approx(0.6 / np.sqrt(2), abs=0.02)
    mono = load_audio(media["mono44"], 0.5, 1.5)
    assert np.abs(mono).max() == pytest.approx(0.4, abs=0.04)


def test_stereo_44k_wav_downmix_is_not_garbage(tmp_path):
    # decord 0.6 returns garbage (up to 1e34) for the second channel of a 44.1 kHz 16-bit stereo WAV
    # when asked for separate channels; found through the processor's feature extractor overflowing.
    wave = load_audio(make_audio(tmp_path / "s44.wav", 2.5, rate=44100, channels=2), sample_rate=16000)
    assert len(wave) == 40000
    assert np.abs(wave).max() == pytest.approx(0.6 / np.sqrt(2), abs=0.02)


def test_audio_segment_boundaries(media):
    # the tone starts at 2.0 s
    before = load_audio(media["onset"], 1.0, 1.9)
    after = load_audio(media["onset"], 2.1, 3.0)
    assert np.abs(before).max() < 0.01
    assert np.abs(after).max() > 0.3
    around = load_audio(media["onset"], 1.5, 2.5)
    half = len(around) // 2
    assert np.abs(around[: half - 800]).max() < 0.01  # silent until 50 ms before the onset
    assert np.abs(around[half + 800 :]).max() > 0.3


def test_delayed_audio_track_keeps_container_timeline(media):
    # the track starts 1 s into the file and its tone 0.5 s into the track: at 1.5 s on the video's clock
    wave = load_audio(media["delayed"], 1.0, 2.0)
    assert np.abs(wave[: 8000 - 800]).max() < 0.01
    assert np.abs(wave[8000 + 800 :]).max() > 0.3
    assert np.abs(load_audio(media["delayed"], 0.0, 0.9)).max() < 0.01  # leading silence


def test_audio_cache_sees_rewritten_file(tmp_path):
    path = make_audio(tmp_path / "a.wav", 1.0, rate=16000, frequency=440)
    assert dominant_frequency(load_audio(path), 16000) == pytest.approx(440, abs=5)
    make_audio(path, 1.0, rate=16000, frequency=1000)
    assert dominant_frequency(load_audio(path), 16000) == pytest.approx(1000, abs=5)
    media_ecmc.clear_audio_cache()


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("fn", [load_video_frames, load_audio, media_duration])
@pytest.mark.parametrize(
    "key,problem",
    [
        ("missing", "not found"),
        ("empty", "empty"),
        ("corrupt", "corrupt"),
        ("unknown", "corrupt file or unknown container"),
    ],
)
def test_bad_files_name_file_and_problem(media, fn, key, problem):
    with pytest.raises(MediaError) as info:
        fn(media[key])
    message = str(info.value)
    assert media[key].name in message
    assert problem in message


def test_no_audio_track(media):
    with pytest.raises(MediaError, match=r"clip\.mp4 has no audio track"):
        load_audio(media["noaudio"])


def test_no_video_stream(media):
    with pytest.raises(MediaError, match=r"speech\.wav has no video stream"):
        load_video_frames(media["wav"])


def test_media_error_is_value_error():
    assert issubclass(MediaError, ValueError)


@pytest.mark.parametrize("fn", [load_video_frames, load_audio])
@pytest.mark.parametrize(
    "start,end,problem",
    [
        (3.0, 2.0, "not before"),
        (2.0, 2.0, "not before"),
        (1.0, 9.0, "beyond"),
        (7.0, None, "beyond"),
        (-0.5, 1.0, "negative start"),
        (0.0, -3.0, "negative end"),
        (float("nan"), 1.0, "not finite"),
    ],
)
def test_bad_segments(media, fn, start, end, problem):
    with pytest.raises(MediaError) as info:
        fn(media["timecode"], start, end)
    assert "timecode.mp4" in str(info.value) and problem in str(info.value)


def test_too_short_segments(media):
    with pytest.raises(MediaError, match=r"timecode\.mp4.*too short"):
        load_audio(media["timecode"], 1.0, 1.005)
    # [1.01, 1.03) lies between the frames at 1.00 and 1.04 s
    with pytest.raises(MediaError, match=r"timecode\.mp4.*no video frame"):
        load_video_frames(media["timecode"], 1.01, 1.03)


def test_bad_num_frames(media):
    with pytest.raises(MediaError, match="num_frames"):
        load_video_frames(media["timecode"], 0, 1, num_frames=0)


def test_sample_rate_fallback_when_decord_info_unavailable(media, monkeypatch):
    # decord prints the native rate from C++; if that cannot be captured, a second decode decides
    monkeypatch.setattr(media_ecmc, "_reported_sample_rate", lambda reader: None)
    media_ecmc.clear_audio_cache()
    for key, seconds in (("wav", 2.5), ("mono44", 3.0), ("stereo48", 3.0)):
        wave = load_audio(media[key])
        assert abs(len(wave) - seconds * 16000) <= 0.03 * 16000
        assert dominant_frequency(wave, 16000) == pytest.approx(440, abs=5)
    media_ecmc.clear_audio_cache()


def test_module_travels_without_our_package(tmp_path, media):
    # checkpoints carry this file flat, next to other files, without the processing_ecmc package
    import shutil
    import subprocess
    import sys

    shutil.copy(media_ecmc.__file__, tmp_path / "media_ecmc.py")
    code = (
        "import sys; sys.modules.pop('processing_ecmc', None); import media_ecmc; "
        f"print(media_ecmc.load_video_frames({str(media['mono44'])!r}, 0, 1, 4).shape, "
        f"len(media_ecmc.load_audio({str(media['mono44'])!r}, 0, 1)))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "(4, 48, 64, 3) 16000" in out.stdout
