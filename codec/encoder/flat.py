"""Cheap path for images without fine detail: flat fills, smooth gradients, heavily blurred pictures.

Why: the encoder's cost grows with the pixel count (one encoder pass per resolution scale tried, the
guard's decodes), not with what the picture holds. A 6300×6300 PNG of zeros (115 KB) kept a worker
busy for half an hour (issue 10). Such an image is reproduced exactly by a tiny picture upsampled:
if resizing the original down to a long side of `DETAIL_SIDES` px and back (the decoder's own
Lanczos resize, `codec.imageio.resize_rgb`) changes no pixel by more than `MAX_ABS_ERROR` grey levels,
nothing finer than that exists to code, and the latent is coded at that size only — one tiny encoder
pass, a tiny decode in the guard. The guard still measures the result against the original block by
block, so a wrong decision costs its usual search, never fidelity.

The test is strict on purpose (every pixel, not a percentile): one line of small text on a white page
differs by far more than `MAX_ABS_ERROR` after the round trip and keeps the normal path.
Cost: one resize down/up of a ≤ `PROBE_SIDE` probe per size tried (milliseconds); a full-resolution
check only for an image whose probe already passed (≈ 1 s for 40 MP, in row strips).
"""

from __future__ import annotations

import numpy as np

from codec.encoder.ratecontrol import Setting
from codec.imageio import resize_rgb

#: coded long sides tried, smallest first; the normal ladder goes down to 1/4 scale on its own
DETAIL_SIDES: tuple[int, ...] = (256, 512)
#: largest difference (grey levels, any pixel and channel) between the original and its round trip
MAX_ABS_ERROR = 6
#: mean absolute difference allowed over the whole image (grey levels)
MAX_MEAN_ERROR = 0.75
#: the quick first check runs on the original resized to at most this long side
PROBE_SIDE = 512
#: rows per strip of the full-resolution check (bounds its memory on huge images)
STRIP_ROWS = 256


def _round_trip_ok(rgb: np.ndarray, coded_w: int, coded_h: int) -> bool:
    h, w = rgb.shape[:2]
    up = resize_rgb(resize_rgb(rgb, coded_w, coded_h), w, h)
    total = 0.0
    for top in range(0, h, STRIP_ROWS):
        diff = np.abs(rgb[top:top + STRIP_ROWS].astype(np.int16) - up[top:top + STRIP_ROWS].astype(np.int16))
        if int(diff.max()) > MAX_ABS_ERROR:
            return False
        total += float(diff.sum())
    return total / rgb.size <= MAX_MEAN_ERROR


def _probe(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    if max(h, w) <= PROBE_SIDE:
        return rgb
    k = PROBE_SIDE / max(h, w)
    return resize_rgb(rgb, max(1, round(w * k)), max(1, round(h * k)))


def low_detail_scale(rgb: np.ndarray) -> float | None:
    """The smallest resolution scale that codes ``rgb`` without loss of detail, or None (a normal
    image: the full rate search runs). Only scales ≤ 1/2 of the image are considered."""
    h, w = rgb.shape[:2]
    longest = max(h, w)
    probe = _probe(rgb)
    ph, pw = probe.shape[:2]
    for side in DETAIL_SIDES:
        if 2 * side > longest:
            return None
        scale = side / longest
        coded_w, coded_h = Setting(scale, 2).coded_size(w, h)
        probe_w, probe_h = max(1, round(pw * coded_w / w)), max(1, round(ph * coded_h / h))
        if probe is not rgb and not _round_trip_ok(probe, probe_w, probe_h):
            continue
        if _round_trip_ok(rgb, coded_w, coded_h):
            return scale
    return None
