"""Face rendering for ECMC-Synth: a cartoon face whose expression, gaze and motion carry cues.

Pure numpy + PIL, deterministic for a given parameter set and RNG. Drawn at 2x and box-filtered
down, so a few-pixel mouth curvature survives at 96x96.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

SIZE = 96  # output frame side in pixels
_SS = 2  # supersampling factor


def subject_look(rng: np.random.Generator) -> dict:
    """Per-subject appearance (skin, hair, background, face shape): nuisance variation only."""
    skin = np.array([224, 182, 150]) * rng.uniform(0.6, 1.08) + rng.normal(0, 8, 3)
    return {
        "skin": tuple(int(v) for v in np.clip(skin, 40, 255)),
        "hair": tuple(int(v) for v in rng.integers(10, 120, 3)),
        "background": tuple(int(v) for v in rng.integers(90, 220, 3)),
        "face_w": float(rng.uniform(0.52, 0.62)),  # head half-width as a fraction of SIZE/2
        "face_h": float(rng.uniform(0.68, 0.78)),
        "eye_dx": float(rng.uniform(0.15, 0.18)),
        "phase": [float(p) for p in rng.uniform(0, 2 * math.pi, 4)],
    }


def _head(look: dict, expr: dict, t: float) -> tuple[float, float, float, float]:
    """Centre and half-axes of the head ellipse at time t, in supersampled canvas units."""
    s = SIZE * _SS
    u, ph = s / 96.0, look["phase"]
    amp = expr["head_amp"] * u
    dx = amp * (math.sin(2 * math.pi * 0.45 * t + ph[0]) + 0.5 * math.sin(2 * math.pi * 1.1 * t + ph[1]))
    dy = amp * 0.8 * math.sin(2 * math.pi * 0.7 * t + ph[2]) + expr["droop"] * u
    return s / 2 + dx, s / 2 + 4 * u + dy, look["face_w"] * s / 2, look["face_h"] * s / 2


def head_box(look: dict, expr: dict, t: float) -> list[float]:
    """The face's true box (x0, y0, x1, y1) in output pixels: the skin ellipse, clipped to the frame."""
    cx, cy, rx, ry = _head(look, expr, t)
    return [round(min(max(v / _SS, 0.0), SIZE), 2) for v in (cx - rx, cy - ry, cx + rx, cy + ry)]


def render_frame(look: dict, expr: dict, t: float, mouth_open: float, gaze: tuple[float, float],
                 blink: float, rng: np.random.Generator, noise: float = 2.0) -> np.ndarray:
    """One RGB frame (SIZE x SIZE x 3 uint8).

    expr: curvature (-1 frown .. 1 smile), brow (-1 sad/inner raised .. 1 raised/arched),
    eye_open (~0.8..1.2), head_amp (head motion amplitude in output pixels), droop (head lowered by
    this many output pixels). gaze: (x, y) in -1..1 (y<0 up). blink: 0 open .. 1 closed.
    """
    s = SIZE * _SS
    u = s / 96.0  # one output-pixel-at-96 in canvas units
    img = Image.new("RGB", (s, s), look["background"])
    d = ImageDraw.Draw(img)
    cx, cy, rx, ry = _head(look, expr, t)
    # hair (behind), head, ears
    d.ellipse([cx - rx - 3 * u, cy - ry - 5 * u, cx + rx + 3 * u, cy + ry * 0.2], fill=look["hair"])
    d.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=look["skin"])
    dark = tuple(int(c * 0.25) for c in look["skin"])
    line = max(1, int(round(2 * u)))
    # eyes
    ex = look["eye_dx"] * s
    ey = cy - 0.18 * ry
    eh = max(0.4 * u, 5.5 * u * expr["eye_open"] * (1.0 - 0.9 * blink))
    ew = 7.0 * u
    for side in (-1, 1):
        x0 = cx + side * ex
        d.ellipse([x0 - ew, ey - eh, x0 + ew, ey + eh], fill=(245, 245, 245))
        if blink < 0.6:
            px, py = x0 + gaze[0] * 3.8 * u, ey + gaze[1] * 3.0 * u
            pr = min(3.4 * u, eh)
            d.ellipse([px - pr, py - pr, px + pr, py + pr], fill=(30, 20, 15))
        # brows: inner end raised for sadness (brow<0), both raised and arched for brow>0
        b = expr["brow"]
        inner_y = ey - 8.5 * u - (max(-b, 0) * 6 + max(b, 0) * 3) * u
        outer_y = ey - 8.5 * u - (max(b, 0) * 5 - max(-b, 0) * 2) * u
        mid_y = min(inner_y, outer_y) - max(b, 0) * 2 * u
        xi, xo = x0 - side * 1.5 * u, x0 + side * 8.5 * u
        d.line([(xi, inner_y), ((xi + xo) / 2, mid_y), (xo, outer_y)], fill=look["hair"], width=line + 1)
    # nose
    d.line([(cx, cy - 0.02 * ry), (cx - 2 * u, cy + 0.18 * ry), (cx + 1 * u, cy + 0.2 * ry)], fill=dark, width=line)
    # mouth: quadratic curve, corners up for curvature > 0; opening follows the speech envelope
    my = cy + 0.5 * ry
    hw = 13 * u
    xs = np.linspace(-1.0, 1.0, 13)
    curv = expr["curvature"] * 6.0 * u
    upper = [(cx + x * hw, my - curv * (x * x - 0.5)) for x in xs]  # smile: corners above centre
    opening = mouth_open * 7.0 * u
    if opening > 0.8 * u:
        lower = [(px, py + opening * (1 - x * x)) for (px, py), x in zip(upper, xs)]
        d.polygon(upper + lower[::-1], fill=(90, 25, 30))
    d.line(upper, fill=(120, 40, 45), width=line + 1)
    frame = np.asarray(img.reduce(_SS), dtype=np.float32)
    if noise > 0:
        frame = frame + rng.normal(0.0, noise, frame.shape)
    return np.clip(frame + 0.5, 0, 255).astype(np.uint8)


def gaze_at(t: float, events: list, rng_jitter: float) -> tuple[float, float]:
    """Gaze at time t given events [(t0, t1, kind)]: 'wander' (side to side), 'away', 'up'."""
    gx, gy = rng_jitter, 0.0
    for t0, t1, kind in events:
        if t0 <= t < t1:
            ramp = min(1.0, (t - t0) / 0.25, (t1 - t) / 0.25)
            if kind == "wander":
                gx = ramp * math.sin(2 * math.pi * 0.8 * (t - t0))
                gy = 0.0
            elif kind == "away":
                gx, gy = ramp * 0.95, ramp * 0.7
            elif kind == "up":
                gx, gy = ramp * 0.3, -ramp * 0.95
    return gx, gy
