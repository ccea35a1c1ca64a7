"""Rate control: which coding setting (resolution scale × quantizer levels) to use.

Two dimensions control the rate of a latent bitstream:

- ``levels``: the number of uniform quantizer levels per latent value;
- ``scale``: the resolution the latent encodes (the decoder output is upsampled back). At very
  low rates a half-resolution latent with many levels beats a full-resolution one with few
  levels by a wide margin (full-res L=4 collapses), so scale is part of the search.

`LADDER` orders settings from best to worst expected quality. The order comes from a calibration
on the *training* photos (never Kodak), made by ``scripts/calibrate_ladder.py``, stored as data in
``codec/ratecontrol_table.json`` (bpp, MS-SSIM, LPIPS per setting).

With a byte budget the encoder walks this ladder and keeps the first setting whose file fits,
so the file is never larger than asked. Sizes are monotone in ``levels`` for a fixed latent, which
lets `search` bisect inside each scale instead of trying every rung.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from codec.errors import BudgetError, UsageError

MIN_QUALITY, MAX_QUALITY = 1, 100
DEFAULT_QUALITY = 75


@dataclass(frozen=True, order=True)
class Setting:
    """One coding setting: encode at ``scale`` × the image size with ``levels`` quantizer levels."""

    scale: float
    levels: int

    def coded_size(self, width: int, height: int) -> tuple[int, int]:
        """Size of the image the latent encodes (at least 8 px per side, never above the image)."""
        if self.scale >= 1.0:
            return width, height
        w = min(width, max(8, round(width * self.scale)))
        return w, min(height, max(8, round(height * self.scale)))


SCALES: tuple[float, ...] = (1.0, 0.75, 0.5, 0.375, 0.25)
LEVELS: tuple[int, ...] = (3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16, 18, 20, 24, 28, 32, 40, 48, 64)


TABLE_PATH = Path(__file__).resolve().parent / "ratecontrol_table.json"


@lru_cache(maxsize=1)
def _table() -> dict[float, list[tuple[float, float]]]:
    """scale → [(log2 levels, score)] sorted, from the calibration file (empty if absent)."""
    try:
        rows = json.loads(TABLE_PATH.read_text())["settings"]
    except (OSError, ValueError, KeyError):
        return {}
    out: dict[float, list[tuple[float, float]]] = {}
    for row in rows:
        out.setdefault(float(row["scale"]), []).append((math.log2(int(row["levels"])), float(row["score"])))
    return {k: sorted(v) for k, v in out.items()}


def _score(scale: float, levels: int) -> float:
    """Expected quality of a setting (MS-SSIM − LPIPS on the calibration photos), higher is better.

    Linear interpolation in log2(levels) between calibrated rungs (clamped at the ends); scales
    without calibration use a smooth model: quality grows with log(levels), drops with lost
    resolution.
    """
    points = _table().get(scale)
    x = math.log2(levels)
    if not points:
        return x * 0.25 - (1.0 - scale) * 1.2
    if x <= points[0][0]:
        return points[0][1]
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return points[-1][1]


def ladder(scales: Sequence[float] = SCALES, levels: Sequence[int] = LEVELS) -> list[Setting]:
    """All settings, best expected quality first."""
    items = [Setting(s, q) for s in scales for q in levels]
    return sorted(items, key=lambda st: _score(st.scale, st.levels), reverse=True)


def setting_for_quality(quality: int) -> Setting:
    """Map ``--quality 1..100`` onto the ladder: 100 → best rung, 1 → worst rung."""
    if not MIN_QUALITY <= quality <= MAX_QUALITY:
        raise UsageError(f"quality must be in {MIN_QUALITY}..{MAX_QUALITY}, got {quality}")
    rungs = _quality_rungs()
    index = round((MAX_QUALITY - quality) / (MAX_QUALITY - MIN_QUALITY) * (len(rungs) - 1))
    return rungs[index]


def _quality_rungs() -> list[Setting]:
    """The rungs a quality number can select: per expected quality, only full-scale settings
    until the full-scale rungs get worse than reduced-scale ones (the same order as the ladder)."""
    return ladder()


def candidates(
    size_of: Callable[[Setting], int],
    max_bytes: int,
    *,
    scales: Sequence[float] = SCALES,
    levels: Sequence[int] = LEVELS,
) -> list[Setting]:
    """Per scale, the largest level count whose file fits ``max_bytes``; best expected first.

    ``size_of(setting)`` encodes (cheaply: the caller caches the latent per scale) and returns the
    byte size. Inside one scale, size grows with levels, so we bisect. Scales whose best possible
    rung cannot beat a fitting candidate already found are skipped (no encoder pass for them).
    """
    found: list[Setting] = []
    top = max(levels)
    for scale in sorted(scales, key=lambda sc: _score(sc, top), reverse=True):
        if found and _score(scale, top) <= max(_score(c.scale, c.levels) for c in found):
            continue
        fitting = _largest_fitting_levels(lambda q, s=scale: size_of(Setting(s, q)), max_bytes, levels)
        if fitting is not None:
            found.append(Setting(scale, fitting))
    if not found:
        raise BudgetError(
            f"{max_bytes} bytes is too small for any setting (smallest tried: scale {min(scales)}, "
            f"{min(levels)} levels)"
        )
    return sorted(found, key=lambda st: _score(st.scale, st.levels), reverse=True)


def search(size_of: Callable[[Setting], int], max_bytes: int, **kwargs: Sequence) -> Setting:
    """The fitting setting with the best expected quality (see `candidates`)."""
    return candidates(size_of, max_bytes, **kwargs)[0]


def _largest_fitting_levels(
    size_of_levels: Callable[[int], int], max_bytes: int, levels: Sequence[int]
) -> int | None:
    ordered = sorted(levels)
    lo, hi = 0, len(ordered) - 1
    if size_of_levels(ordered[0]) > max_bytes:
        return None
    # invariant: ordered[lo] fits
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if size_of_levels(ordered[mid]) <= max_bytes:
            lo = mid
        else:
            hi = mid - 1
    return ordered[lo]
