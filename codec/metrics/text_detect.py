"""Text line detection with PaddleOCR's PP-OCRv4 models (the ``rapidocr-onnxruntime`` wheel).

`codec.metrics.legibility.find_text_regions` finds lines with Tesseract's own page segmentation, which
misses small lines on photos: of 18 rendered sign lines on 9 training photos (12- and 20-px cap
height, ``scripts/text_bench.py`` layout) the encoder's line search kept 13 (4 of the 9 12-px lines),
and a line it does not find is neither checked nor protected. PP-OCRv4's detector (a DBNet, 4.7 MB)
found all 18, median IoU with the rendered box 0.85 (Tesseract's 0.69), in half the time
(docs/bench/faces/text_detect.md, ``scripts/text_detect_bench.py``). It runs with its recogniser (the
reading filters texture that merely looks like text) through onnxruntime on one thread; both model
files ship inside the wheel (Apache-2.0), nothing is downloaded.

This module only *finds* lines. Reading them for the CER stays with Tesseract
(`codec.metrics.legibility.read_line`), so the metric is the same whichever detector found the line;
the encoder's policy of which lines to check is `codec.encoder.text`.
"""

from __future__ import annotations

import math
import threading
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image

from codec.metrics.legibility import OcrUnavailableError, TextRegion, _check_rgb

INSTALL_HINT = "pip install --no-deps -r requirements-ocr.txt (rapidocr-onnxruntime, models inside)"
#: recogniser score below which a detected box is not a line (rapidocr's own default ``text_score``)
MIN_SCORE = 0.5
#: images with a side below this hold no line of legible text worth checking (the floor is a 12-px cap
#: height; thinner strips also make the detector upsample them into huge inputs)
MIN_SIDE = 24
#: longest side / shortest side of one detector call (see `_windows`)
MAX_ASPECT = 32
_lock = threading.Lock()


class DetectorUnavailableError(OcrUnavailableError):
    """``rapidocr-onnxruntime`` (or the OpenCV / onnxruntime it runs on) is not installed."""


@lru_cache(maxsize=1)
def _engine() -> Any:
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError as exc:  # the package, cv2, pyclipper, shapely or onnxruntime
        raise DetectorUnavailableError(
            f"the PP-OCR text detector is not installed: {exc} ({INSTALL_HINT})") from exc
    # one thread each: the worker's other core encodes (the same rule as Tesseract's OMP_THREAD_LIMIT=1)
    return RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1)


#: what `_engine` imports (the wheel and the libraries it runs on)
MODULES = ("rapidocr_onnxruntime", "cv2", "onnxruntime")


def missing_modules() -> list[str]:
    """The `MODULES` that are not installed, without importing any (cheap: for system checks)."""
    import importlib.util

    return [m for m in MODULES if importlib.util.find_spec(m) is None]


def available() -> bool:
    """Whether `find_lines` can run (the package imports and its models load)."""
    try:
        _engine()
    except DetectorUnavailableError:
        return False
    return True


def find_lines(rgb: np.ndarray, *, min_chars: int = 2, min_score: float = MIN_SCORE,
               max_pixels: int = 2_000_000) -> list[TextRegion]:
    """Text lines of ``rgb`` as axis-aligned boxes in its pixel coordinates, with PP-OCR's reading.

    The image is shrunk to at most ``max_pixels`` before the search (the detector itself scales its
    input so the short side is 736 px, up or down, with the long side ≤ 2000 px). A box is kept when
    the recogniser's score is ≥ ``min_score`` and its reading has ≥ ``min_chars`` letters or digits;
    ``confidence`` is that score × 100 (Tesseract's scale).
    """
    arr = _check_rgb(rgb)
    h, w = arr.shape[:2]
    if min(h, w) < MIN_SIDE:  # no line of legible text fits; the detector's resize would fail too
        return []
    scale = min(1.0, math.sqrt(max_pixels / (h * w)))
    img = arr
    if scale < 1.0:
        img = np.asarray(Image.fromarray(arr).resize((max(1, round(w * scale)), max(1, round(h * scale))),
                                                     Image.Resampling.LANCZOS))
    boxes = []
    ih, iw = img.shape[:2]
    tall = ih > MAX_ASPECT * iw  # searched turned a quarter (see `_windows`), boxes turned back
    for x0, y0, window in _windows(np.rot90(img) if tall else img):
        for box, text, score in _detect(window):
            text = " ".join(str(text).split())
            if float(score) < min_score or not text:
                continue
            pts = np.asarray(box, dtype=np.float64) + np.array([x0, y0])
            if tall:  # rot90: (x, y) in the turned image is (iw − y, x) in ``img``
                pts = np.stack([iw - pts[:, 1], pts[:, 0]], axis=1)
            pts = pts / scale
            left, top = (max(0, math.floor(v)) for v in pts.min(axis=0))
            right, bottom = min(w, math.ceil(pts[:, 0].max())), min(h, math.ceil(pts[:, 1].max()))
            if right > left and bottom > top:
                boxes.append(TextRegion(left, top, right, bottom, text, round(100.0 * float(score), 1)))
    boxes = _distinct(boxes)
    return [r for r in merge_words(boxes) if sum(ch.isalnum() for ch in r.text) >= min_chars]


def _detect(img: np.ndarray) -> list:
    """The engine's (box, text, score) triples for one RGB window."""
    engine = _engine()
    with _lock:  # one search at a time per process (the sessions are shared)
        result, _elapsed = engine(np.ascontiguousarray(img[:, :, ::-1]), use_cls=False)  # it expects BGR
    return list(result or [])


def _windows(img: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
    """A wide ``img`` as (x0, y0, window) pieces no more elongated than `MAX_ASPECT`.

    Past ~250:1 the detector's own resize fails outright (a 16×4096 strip); at 100:1 it finds nothing.
    Windows overlap by the short side, so a line across a seam is whole in one of them (`_distinct`
    drops the repeats); ~1 s per window on 2 cores (a 24×40,000 strip: 54 windows). Measured
    on an 8000×80 banner with six 40-px lines: all six found, 4.1 s in 4 windows (8:1 windows: 15
    windows, 36 s: the detector upsamples every input to a 736-px short side). Tall strips come here
    turned a quarter: searched upright, a 4096×24 strip took 77 s (6 windows), turned 6 s.
    """
    h, w = img.shape[:2]
    if w <= MAX_ASPECT * h:
        return [(0, 0, img)]
    length = MAX_ASPECT * h
    starts = [*range(0, w - length, length - h), w - length]
    return [(x, 0, img[:, x:x + length]) for x in starts]


def _distinct(boxes: list[TextRegion]) -> list[TextRegion]:
    """``boxes`` without those mostly (≥ 80 %) inside one already kept (repeats from window overlaps)."""
    kept: list[TextRegion] = []
    for box in sorted(boxes, key=lambda r: -(r.right - r.left) * (r.bottom - r.top)):
        area = (box.right - box.left) * (box.bottom - box.top)
        if all(max(0, min(box.right, k.right) - max(box.left, k.left))
               * max(0, min(box.bottom, k.bottom) - max(box.top, k.top)) < 0.8 * area for k in kept):
            kept.append(box)
    return kept


def merge_words(boxes: list[TextRegion]) -> list[TextRegion]:
    """Boxes on one line joined into the line's box. The detector splits a line into words where the
    gaps are wide for its input size (large text on a small image is upsampled 4×: "NO", "PARKING",
    "ZONE", "B"), and the check reads lines. Two boxes are one line when their vertical overlap is
    ≥ half the lower one's height and the gap between them is at most the taller one's height;
    the reading is the words' left to right, the confidence the lowest."""
    lines: list[TextRegion] = []
    for box in sorted(boxes, key=lambda r: (r.left, r.top)):
        for i, line in enumerate(lines):
            overlap = min(line.bottom, box.bottom) - max(line.top, box.top)
            gap = box.left - line.right
            if overlap >= 0.5 * min(line.height, box.height) and gap <= max(line.height, box.height):
                lines[i] = TextRegion(min(line.left, box.left), min(line.top, box.top),
                                      max(line.right, box.right), max(line.bottom, box.bottom),
                                      f"{line.text} {box.text}", min(line.confidence, box.confidence))
                break
        else:
            lines.append(box)
    return sorted(lines, key=lambda r: (r.top, r.left))
