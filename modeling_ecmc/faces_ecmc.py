"""The patient's face in an utterance's sampled frames: detected, one face track chosen, cropped.

    boxes = face_track(frames)                     # one FaceBox (or None) per frame: the patient's track
    crops = crop_faces(frames, boxes, margin=0.25) # (T, S, S, 3) uint8, or None when no face was found

Detection is OpenCV's frontal-face Haar cascade (`opencv-python-headless` 4.x ships it in `cv2.data`;
5.0 ships no cascades): real pretrained weights inside the wheel, C++ speed on a CPU (frames are searched at
at most 360 px on the shorter side). Tried beside it (DESIGN §3): scikit-image's LBP cascade found the same
faces plus more false positives at a usable scale step; BlazeFace (mediapipe) wants numpy < 2.

Which face is the patient's (documented rule): detections are linked from frame to frame into tracks
(IoU >= 0.3 with the track's last box); the patient's track is the one with the largest summed box
area over the sampled frames, i.e. the face on camera the longest and the closest. An interviewer
also in view is smaller or seen for fewer frames in an interview recording; a false detection on the
background rarely persists. Frames where the chosen track has no box take the box of the nearest
frame that has one (the camera is fixed and an answer lasts seconds); when no frame has a face, there
is nothing to crop and the caller marks the video missing rather than inventing one.

This file travels inside saved checkpoints; cv2 is imported only when a face is looked for.
"""

from dataclasses import dataclass

import numpy as np

CASCADE = "haarcascade_frontalface_default.xml"
LINK_IOU = 0.3  # a detection continues a track when it overlaps the track's last box this much
MIN_FACE_FRACTION = 0.08  # smallest face side searched for, as a fraction of the frame's shorter side
DETECT_SIDE = 360  # larger frames are searched at this shorter side


@dataclass(frozen=True)
class FaceBox:
    """A face box in pixels: [x0, x1) x [y0, y1)."""
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def area(self) -> float:
        return max(0.0, self.x1 - self.x0) * max(0.0, self.y1 - self.y0)

    def iou(self, other: "FaceBox") -> float:
        inter = FaceBox(max(self.x0, other.x0), max(self.y0, other.y0), min(self.x1, other.x1), min(self.y1, other.y1))
        union = self.area + other.area - inter.area
        return inter.area / union if union > 0 else 0.0

    def padded_square(self, margin: float, width: int, height: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) integer pixels: a square `margin` x side larger on every side, moved
        (not shrunk) to lie inside the frame where it fits, clipped where it does not."""
        side = max(self.x1 - self.x0, self.y1 - self.y0) * (1 + 2 * margin)
        side = min(side, width, height)
        cx, cy = (self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2
        x0 = int(round(min(max(cx - side / 2, 0), width - side)))
        y0 = int(round(min(max(cy - side / 2, 0), height - side)))
        s = int(round(side))
        return x0, y0, min(x0 + s, width), min(y0 + s, height)


_DETECTOR = None


def _detector():
    """The Haar cascade, loaded once per process."""
    global _DETECTOR
    if _DETECTOR is None:
        try:
            import cv2
        except ImportError:
            raise ImportError("face_crop needs OpenCV with its Haar cascades: pip install "
                              "'opencv-python-headless>=4.14,<5' (or the package's `faces` extra)") from None
        path = cv2.data.haarcascades + CASCADE if hasattr(cv2, "data") else ""
        cascade = cv2.CascadeClassifier(path)
        if cascade.empty():
            raise ImportError(f"OpenCV {cv2.__version__} ships no {CASCADE} (5.0 ships no cascades): "
                              "pip install 'opencv-python-headless>=4.14,<5'")
        _DETECTOR = (cv2, cascade)
    return _DETECTOR


def detect_faces(frame: np.ndarray) -> list[FaceBox]:
    """Frontal faces in one RGB uint8 frame (H, W, 3), largest first. Frames whose shorter side is
    over DETECT_SIDE pixels are searched at that size (the cascade's cost grows with the pixels; a
    face of MIN_FACE_FRACTION of the frame is still 29 px there) and the boxes scaled back."""
    cv2, cascade = _detector()
    gray = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
    scale = min(1.0, DETECT_SIDE / min(gray.shape))
    if scale < 1.0:
        gray = cv2.resize(gray, (round(gray.shape[1] * scale), round(gray.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    gray = cv2.equalizeHist(gray)
    side = max(12, int(min(gray.shape) * MIN_FACE_FRACTION))
    found = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(side, side))
    boxes = [FaceBox(x / scale, y / scale, (x + w) / scale, (y + h) / scale)
             for x, y, w, h in np.reshape(found, (-1, 4)).astype(float)]
    return sorted(boxes, key=lambda b: b.area, reverse=True)


def link_tracks(detections: list[list[FaceBox]]) -> list[dict[int, FaceBox]]:
    """Per-frame detections -> tracks ({frame index: box}): each detection continues the track whose
    last box it overlaps most (IoU >= LINK_IOU; one detection per track and frame), else starts one."""
    tracks: list[dict[int, FaceBox]] = []
    for t, boxes in enumerate(detections):
        taken = set()
        for box in boxes:
            best, best_iou = None, LINK_IOU
            for k, track in enumerate(tracks):
                if k in taken:
                    continue
                overlap = box.iou(track[max(track)])
                if overlap >= best_iou:
                    best, best_iou = k, overlap
            if best is None:
                tracks.append({t: box})
                taken.add(len(tracks) - 1)
            else:
                tracks[best][t] = box
                taken.add(best)
    return tracks


def face_track(frames: np.ndarray) -> list[FaceBox | None]:
    """One box per frame (None where the patient's track has none) for a (T, H, W, 3) uint8 clip; all
    None when no frame has a face. The rule is the module docstring's."""
    tracks = link_tracks([detect_faces(frame) for frame in frames])
    if not tracks:
        return [None] * len(frames)
    patient = max(tracks, key=lambda track: sum(box.area for box in track.values()))
    return [patient.get(t) for t in range(len(frames))]


def fill_from_nearest(boxes: list[FaceBox | None]) -> list[FaceBox | None]:
    """Each frame without a box takes the box of the nearest frame that has one (earlier on a tie)."""
    known = [t for t, box in enumerate(boxes) if box is not None]
    if not known:
        return list(boxes)
    return [boxes[min(known, key=lambda k: (abs(k - t), k))] for t in range(len(boxes))]


def crop_faces(frames: np.ndarray, boxes: list[FaceBox | None], margin: float = 0.25) -> np.ndarray | None:
    """The frames cut to the track's margin-padded square (every frame to one size: the largest
    crop side, resized), or None when no frame has a face."""
    filled = fill_from_nearest(boxes)
    if all(box is None for box in filled):
        return None
    height, width = frames.shape[1:3]
    squares = [box.padded_square(margin, width, height) for box in filled]
    side = max(min(x1 - x0, y1 - y0) for x0, y0, x1, y1 in squares)
    from PIL import Image

    crops = []
    for frame, (x0, y0, x1, y1) in zip(frames, squares):
        crop = Image.fromarray(np.ascontiguousarray(frame[y0:y1, x0:x1]))
        crops.append(np.asarray(crop.resize((side, side), Image.BILINEAR) if crop.size != (side, side) else crop))
    return np.stack(crops)
