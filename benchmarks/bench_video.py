"""Video segment decoding: seeking to the picked frames (`load_video_frames`) vs decoding every frame.

A 60 s, 25 fps, 320×240 H.264 MP4 (ffmpeg's `testsrc`, x264 defaults: a key frame every 250 frames =
10 s) is written with imageio-ffmpeg's ffmpeg into a temporary folder. From it a 4 s segment is read
as 16 frames, three ways:
- `load_video_frames` (ours): decord seeks to the key frame before the first picked frame and
  decodes only up to the picked frames (`get_batch`);
- `decode_all_frames` (baseline in `modeling_ecmc.media_ecmc`): seeks to the segment, then decodes
  and converts every one of its frames, then subsamples;
- a sequential reader from the start of the file (what `cv2.VideoCapture` loops do): every frame
  up to the segment's end.
All three must return the same 16 frames.

    python -m benchmarks.bench_video [--quick]
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import Row, quick_main, timeit

DURATION_S, FPS, WIDTH, HEIGHT = 60, 25, 320, 240
SEGMENT = (33.0, 37.0)  # 4 s, starting 3 s after a key frame (t = 30 s)
NUM_FRAMES = 16


def make_video(folder: Path) -> Path:
    import imageio_ffmpeg

    path = folder / "session.mp4"
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
           "-i", f"testsrc=size={WIDTH}x{HEIGHT}:rate={FPS}:duration={DURATION_S}",
           "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)]
    subprocess.run(cmd, check=True)
    return path


def decode_from_start(path, start, end, num_frames):
    """A sequential reader: decode every frame from the first one to the segment's end, keep the picked."""
    import decord

    from modeling_ecmc.media_ecmc import _segment_indices

    vr = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
    indices, _, last = _segment_indices(str(path), vr, start, end, num_frames)
    frames = [vr.next().asnumpy() for _ in range(last + 1)]
    return np.stack([frames[i] for i in indices])


def run(quick: bool = False) -> list[Row]:
    from modeling_ecmc.media_ecmc import decode_all_frames, load_video_frames

    with tempfile.TemporaryDirectory(prefix="ecmc-bench-video-") as tmp:
        path = make_video(Path(tmp))
        start, end = SEGMENT
        repeats = 3 if quick else 10
        t_ours, ours = timeit(lambda: load_video_frames(path, start, end, NUM_FRAMES), repeats=repeats)
        t_all, every = timeit(lambda: decode_all_frames(path, start, end, NUM_FRAMES), repeats=repeats)
        t_start, sequential = timeit(lambda: decode_from_start(path, start, end, NUM_FRAMES),
                                     repeats=1 if quick else 3)
    size = f"{end - start:.0f} s segment at {start:.0f} s of a {DURATION_S} s {WIDTH}×{HEIGHT} {FPS} fps MP4, {NUM_FRAMES} frames"
    rows = []
    for baseline, t_base, frames in (("decode every frame of the segment", t_all, every),
                                     ("decode every frame from the file start", t_start, sequential)):
        same = frames.shape == ours.shape and np.array_equal(frames, ours)
        rows.append(Row(
            benchmark="video segment decoding", size=size, baseline=baseline, baseline_value=t_base,
            ours="seek (load_video_frames)", ours_value=t_ours, unit="s",
            check=f"{'yes' if same else 'NO'}: {'identical' if same else 'different'} {ours.shape[0]} frames",
        ))
    return rows


def main(argv=None):
    quick_main(run, __doc__, argv)


if __name__ == "__main__":
    main()
