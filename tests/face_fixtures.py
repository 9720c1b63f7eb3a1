"""Clips of real photographed faces with known face boxes, for the face-detection tests.

scikit-image ships the "astronaut" portrait (Eileen Collins, public domain, 512 x 512) and an LFW
subset (25 x 25 face crops). A scene is a gray 640 x 480 frame with the portrait pasted at 448 x 448
(the patient), moving a few pixels from frame to frame as a seated person does, optionally with an
LFW face (the interviewer, smaller) beside it. The portrait's face box was drawn by hand on the
512 x 512 image: hairline to chin, cheek to cheek.
"""

import numpy as np
from PIL import Image

ASTRONAUT_FACE = (180, 70, 272, 166)  # x0, y0, x1, y1 on the 512 x 512 portrait, hand-drawn
WIDTH, HEIGHT, PORTRAIT = 640, 480, 448
SECOND = (500, 120, 564)  # x0, y0 and x1 of the second face (an LFW crop, square)


def _portrait():
    from skimage import data

    return np.asarray(Image.fromarray(data.astronaut()).resize((PORTRAIT, PORTRAIT), Image.BILINEAR))


def _second_face(side: int):
    from skimage import data

    face = (data.lfw_subset()[0] * 255).astype(np.uint8)
    return np.asarray(Image.fromarray(np.stack([face] * 3, -1)).resize((side, side), Image.BICUBIC))


def photo_scene(num_frames: int, two_people: bool = False, seed: int = 0):
    """(frames (T, 480, 640, 3) uint8, the patient's true boxes [(x0, y0, x1, y1)] per frame)."""
    rng = np.random.default_rng(seed)
    portrait = _portrait()
    scale = PORTRAIT / 512
    frames, boxes = [], []
    for _ in range(num_frames):
        dx, dy = (int(v) for v in rng.integers(-12, 13, 2))
        frame = np.full((HEIGHT, WIDTH, 3), 110, np.uint8)
        x, y = 40 + dx, 16 + dy
        frame[y:y + PORTRAIT, x:x + PORTRAIT] = portrait
        if two_people:
            x0, y0, x1 = SECOND
            frame[y0:y0 + x1 - x0, x0:x1] = _second_face(x1 - x0)
        frames.append(frame)
        boxes.append(tuple(v * scale + off for v, off in zip(ASTRONAUT_FACE, (x, y, x, y))))
    return np.stack(frames), boxes


def write_mp4(path, frames: np.ndarray, fps: int = 10):
    """H.264 MP4 of the frames (lossy, as recordings are), with imageio-ffmpeg's ffmpeg."""
    import imageio_ffmpeg

    height, width = frames.shape[1:3]
    writer = imageio_ffmpeg.write_frames(str(path), (width, height), fps=fps, codec="libx264", pix_fmt_in="rgb24",
                                         output_params=["-preset", "veryfast"], macro_block_size=1)
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()
    return path
