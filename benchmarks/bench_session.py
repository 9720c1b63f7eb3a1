"""Whole interviews: how fast a session is turned into captions and a profile, and what a long file costs in memory.

- **Speed**: one ECMC-Synth interview session of about 10 minutes (`--preset interview`, 84 answers;
  `--quick`: 3), through `evaluation_ecmc.session_profile.profile_session` with no transcript: Silero
  VAD + Whisper tiny.en + voice clustering -> the patient's turns -> a caption per turn (batch 8) ->
  the profile. Baseline: the recording's own duration (real time); the ratio is how many times faster
  than real time the whole job ran. The checkpoint is `outputs/demo/checkpoint` when it exists
  (`make demo`), else the untrained offline default (same architecture and cost).
- **Memory**: a 2-hour recording (the session's audio looped, AAC; `--quick`: 10 minutes) read for
  segmentation. Baseline: the whole track decoded into memory (faster-whisper's `decode_audio`, what
  a transcription script does); ours: `processing_ecmc.transcribe.audio_chunks` with voice activity on
  every chunk. Then one 5 s turn half-way through, read for captioning: the pipeline given the file
  (`media_ecmc.load_audio`: decord decodes the whole track) vs `transcribe.read_segment` (a seek),
  which `profile_session` passes the pipeline. Each runs in its own process; the value is its peak
  resident memory (VmHWM).

    python -m benchmarks.bench_session [--quick]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import REPO_ROOT, Row, quick_main

_PEAK = """
import sys
sys.path.insert(0, {root!r})
from faster_whisper import decode_audio
from processing_ecmc.transcribe import audio_chunks, read_segment, _regions
from modeling_ecmc.media_ecmc import load_audio
if {mode!r} == "whole":
    seconds = len(decode_audio({path!r}, sampling_rate=16000)) / 16000
elif {mode!r} == "turn, path":
    seconds = len(load_audio({path!r}, {at}, {at} + 5)) / 16000
elif {mode!r} == "turn, seek":
    seconds = len(read_segment({path!r}, {at}, {at} + 5)) / 16000
else:
    seconds = regions = 0
    for _, chunk in audio_chunks({path!r}):
        seconds += len(chunk) / 16000
        regions += len(_regions(chunk))
# VmHWM: this process image's peak (ru_maxrss would keep the forking parent's peak across exec)
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(seconds, peak / 1024)
"""


def make_session(folder: Path, answers: int) -> Path:
    from processing_ecmc.synth import generate_synth

    manifest = generate_synth(folder, preset="interview", num_subjects=3, utterances_per_subject=answers,
                              split="test", progress=False)
    return next((manifest.parent / "media").glob("*.mp4"))


def loop_audio(session: Path, seconds: float, out: Path) -> Path:
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-stream_loop", "-1",
                    "-i", str(session), "-vn", "-t", str(seconds), "-c:a", "aac", "-b:a", "48k", str(out)], check=True)
    return out


def peak_memory(path: Path, mode: str, at: float = 0.0) -> tuple[float, float]:
    """(seconds of audio read, peak resident MiB) of reading `path` in a fresh process: "whole",
    "chunks" (+ VAD), or one 5 s turn: "turn, path" (the pipeline given the file: media_ecmc.load_audio)
    or "turn, seek" (read_segment, what profile_session gives the pipeline)."""
    code = _PEAK.format(root=str(REPO_ROOT), path=str(path), mode=mode, at=at)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return float(out[-2]), float(out[-1])


def _pipeline():
    from evaluation_ecmc.detection import attach_profile_llm
    from modeling_ecmc.pipeline_ecmc import load_pipeline

    trained = REPO_ROOT / "outputs" / "demo" / "checkpoint"
    if (trained / "config.json").is_file():
        return attach_profile_llm(load_pipeline(trained), "auto"), "the demo checkpoint"
    import torch

    from modeling_ecmc.pipeline_ecmc import PIPELINE_TASK, ECMCCaptioningPipeline
    from modeling_ecmc.presets import build_offline_default

    torch.manual_seed(0)
    model, processor = build_offline_default()
    pipe = ECMCCaptioningPipeline(model=model.eval(), processor=processor, task=PIPELINE_TASK)
    return attach_profile_llm(pipe, "auto"), "the untrained offline default"


def run(quick: bool = False) -> list[Row]:
    from evaluation_ecmc.session_profile import profile_session
    from modeling_ecmc.media_ecmc import media_duration

    with tempfile.TemporaryDirectory(prefix="ecmc-bench-session-") as tmp:
        session = make_session(Path(tmp) / "synth", 3 if quick else 84)
        duration = media_duration(session)
        pipe, which = _pipeline()
        t0 = time.perf_counter()
        result = profile_session(pipe, session, progress=False)
        seconds = time.perf_counter() - t0
        rows = [Row(benchmark="whole interview -> turns, captions, profile", size=f"{duration / 60:.1f} min session, "
                    f"{len(result.turns)} turns kept, {which}", baseline="real time (the recording's duration)",
                    baseline_value=duration, ours="profile_session (VAD, Whisper tiny.en, voices, captions)",
                    ours_value=seconds, unit="s", check=f"{len(result.turns)} turns, a {len(result.profile.split())}-word profile")]
        long_seconds = 600 if quick else 7200
        long = loop_audio(session, long_seconds, Path(tmp) / "long.m4a")
        read, whole_mib = peak_memory(long, "whole")
        streamed, chunk_mib = peak_memory(long, "chunks")
        _, path_mib = peak_memory(long, "turn, path", at=long_seconds / 2)
        turn, seek_mib = peak_memory(long, "turn, seek", at=long_seconds / 2)
    rows.append(Row(benchmark="long recording read for segmentation", size=f"{read / 3600:.1f} h of AAC audio",
                    baseline="decode the whole track (faster_whisper.decode_audio)", baseline_value=whole_mib,
                    ours="audio_chunks + VAD per 5-min chunk", ours_value=chunk_mib, unit="MiB peak",
                    check=f"{'yes' if abs(read - streamed) < 1 else 'NO'}: {streamed:.0f} s vs {read:.0f} s read"))
    rows.append(Row(benchmark="long recording: one 5 s turn read for captioning", size=f"{read / 3600:.1f} h of AAC audio",
                    baseline="the pipeline given the file (media_ecmc.load_audio: decord decodes the whole track)",
                    baseline_value=path_mib, ours="read_segment (seek), as profile_session passes it",
                    ours_value=seek_mib, unit="MiB peak", check=f"{'yes' if abs(turn - 5) < 1e-6 else 'NO'}: 5 s read"))
    return rows


def main(argv=None):
    quick_main(run, __doc__, argv)


if __name__ == "__main__":
    main()
