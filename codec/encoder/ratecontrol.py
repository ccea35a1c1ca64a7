"""Rate control: which coding setting (resolution scale × quantizer levels) to use.

Two dimensions control the rate of a latent bitstream:

- ``levels``: the number of uniform quantizer levels per latent value;
- ``scale``: the resolution the latent encodes (the decoder output is resized back). At very
  low rates a half-resolution latent with many levels beats a full-resolution one with few
  levels by a wide margin (full-res L=4 collapses), so scale is part of the search.
  Above ~0.25 bpp the opposite holds: the TAESD decoder's ceiling (~26–27 dB on Kodak) stops a
  full-size latent from using more bytes, while the image upsampled by `UP_SCALES` (1.25–2×),
  encoded, decoded at that size and downsampled keeps climbing (issue 14). Up-scales are tried only
  when the budget is large enough for them (`candidates`) and while the coded picture stays
  ≤ `MAX_UP_PIXELS` (the decoder's work grows with the coded area: 2× = 4× the decode time).

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
        """Size of the image the latent encodes: at least 8 px per side; above the image size only
        for an up-scale whose coded picture stays ≤ `MAX_UP_PIXELS` (else the image size)."""
        if self.scale > 1.0:
            w, h = round(width * self.scale), round(height * self.scale)
            grows = w > width and h > height  # the format wants both sides larger (FORMAT.md)
            return (w, h) if grows and w * h <= MAX_UP_PIXELS else (width, height)
        if self.scale == 1.0:
            return width, height
        w = min(width, max(8, round(width * self.scale)))
        return w, min(height, max(8, round(height * self.scale)))


#: resolution scales at or below the image size (what the fidelity guard also tries)
SCALES: tuple[float, ...] = (1.0, 0.75, 0.5, 0.375, 0.25)
#: scales above the image size (the format allows a coded size up to 2× the display size per side)
UP_SCALES: tuple[float, ...] = (1.25, 1.5, 2.0)
#: every scale the rate control searches with a byte budget
ALL_SCALES: tuple[float, ...] = UP_SCALES + SCALES
#: an up-scale is used only while the coded picture has at most this many pixels (decode work:
#: 768×512 at 2× = 1.6 MP; a 12 MP photo is never upsampled)
MAX_UP_PIXELS = 3_000_000
#: an up-scale is tried only when its cheapest rung's expected size (this image's scale-1.0 file ×
#: the calibrated bpp ratio) is ≤ this × the budget (cheap budgets skip the costly encoder pass)
UP_TRY_RATIO = 1.0
LEVELS: tuple[int, ...] = (3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16, 18, 20, 24, 28, 32, 40, 48, 64)


TABLE_PATH = Path(__file__).resolve().parent / "ratecontrol_table.json"


@lru_cache(maxsize=1)
def _rows() -> tuple[dict, ...]:
    try:
        return tuple(json.loads(TABLE_PATH.read_text())["settings"])
    except (OSError, ValueError, KeyError):
        return ()


@lru_cache(maxsize=1)
def _table() -> dict[float, list[tuple[float, float]]]:
    """scale → [(log2 levels, score)] sorted, from the calibration file (empty if absent)."""
    out: dict[float, list[tuple[float, float]]] = {}
    for row in _rows():
        out.setdefault(float(row["scale"]), []).append((math.log2(int(row["levels"])), float(row["score"])))
    return {k: sorted(v) for k, v in out.items()}


def calibrated_bpp(scale: float, levels: int) -> float | None:
    """Mean bpp of a calibrated rung (None when the table has no such row)."""
    for row in _rows():
        if float(row["scale"]) == scale and int(row["levels"]) == levels:
            return float(row["bpp"])
    return None


def levels_for(scale: float, levels: Sequence[int] = LEVELS) -> list[int]:
    """The level counts searched at ``scale``. An up-scale only from its lowest calibrated level on:
    below it the table has no data, and a big latent with few levels never wins anyway."""
    if scale <= 1.0:
        return list(levels)
    points = _table().get(scale)
    if not points:
        return []  # uncalibrated up-scale: never used
    low = 2 ** points[0][0]
    return [q for q in levels if q >= low - 1e-9]


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
    """All settings, best expected quality first (``ALL_SCALES`` to include the up-scales)."""
    items = [Setting(s, q) for s in scales for q in levels_for(s, levels)]
    return sorted(items, key=lambda st: _score(st.scale, st.levels), reverse=True)


def setting_for_quality(quality: int) -> Setting:
    """Map ``--quality 1..100`` onto the ladder: 100 → best rung, 1 → worst rung."""
    if not MIN_QUALITY <= quality <= MAX_QUALITY:
        raise UsageError(f"quality must be in {MIN_QUALITY}..{MAX_QUALITY}, got {quality}")
    rungs = _quality_rungs()
    index = round((MAX_QUALITY - quality) / (MAX_QUALITY - MIN_QUALITY) * (len(rungs) - 1))
    return rungs[index]


def _quality_rungs() -> list[Setting]:
    """The rungs a quality number can select: the ladder of `SCALES` (no up-scales, so
    ``--quality`` keeps its meaning and cost; larger latents are reached with a byte budget)."""
    return ladder()


def candidates(
    size_of: Callable[[Setting], int],
    max_bytes: int,
    *,
    scales: Sequence[float] = ALL_SCALES,
    levels: Sequence[int] = LEVELS,
) -> list[Setting]:
    """Per scale, the largest level count whose file fits ``max_bytes``; best expected first.

    ``size_of(setting)`` encodes (cheaply: the caller caches the latent per scale) and returns the
    byte size. Inside one scale, size grows with levels, so we bisect. Scales whose best possible
    rung cannot beat a fitting candidate already found are skipped (no encoder pass for them).
    Up-scales come after the others and only when the expected size of their cheapest rung fits
    (`_up_scale_may_fit`; else their big encoder pass is saved).
    """
    found: list[Setting] = []
    top = max(levels)
    base = sorted((sc for sc in scales if sc <= 1.0), key=lambda sc: _score(sc, top), reverse=True)
    for scale in base + [sc for sc in scales if sc > 1.0]:
        rungs = levels_for(scale, levels)
        if not rungs:
            continue
        if found and _score(scale, max(rungs)) <= max(_score(c.scale, c.levels) for c in found):
            continue
        if scale > 1.0 and not _up_scale_may_fit(scale, rungs, found, size_of, max_bytes):
            continue
        fitting = _largest_fitting_levels(lambda q, s=scale: size_of(Setting(s, q)), max_bytes, rungs,
                                          lambda q, s=scale: _calibrated_bpp_interp(s, q))
        if fitting is not None:
            found.append(Setting(scale, fitting))
    if not found:
        raise BudgetError(
            f"{max_bytes} bytes is too small for any setting (smallest tried: scale {min(scales)}, "
            f"{min(levels)} levels)"
        )
    return sorted(found, key=lambda st: _score(st.scale, st.levels), reverse=True)


def _calibrated_bpp_interp(scale: float, levels: int) -> float | None:
    """Calibrated bpp at ``levels``, linear in log2(levels) between calibrated rungs (clamped)."""
    known = sorted(
        (math.log2(int(r["levels"])), float(r["bpp"])) for r in _rows() if float(r["scale"]) == scale
    )
    if not known:
        return None
    x = math.log2(levels)
    if x <= known[0][0]:
        return known[0][1]
    for (x0, y0), (x1, y1) in itertools.pairwise(known):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return known[-1][1]


def _up_scale_may_fit(
    scale: float,
    rungs: Sequence[int],
    found: Sequence[Setting],
    size_of: Callable[[Setting], int],
    max_bytes: int,
) -> bool:
    """Whether the cheapest rung of an up-scale can fit: this image's size at the scale-1.0 candidate
    (already measured, so free) × the calibrated bpp ratio, compared with the budget."""
    full = [c for c in found if c.scale == 1.0]
    if not full:
        return False
    need = _calibrated_bpp_interp(scale, min(rungs))
    have = _calibrated_bpp_interp(1.0, full[0].levels)
    if need is None or not have:
        return False
    return size_of(full[0]) * need / have <= UP_TRY_RATIO * max_bytes


def search(size_of: Callable[[Setting], int], max_bytes: int, **kwargs: Sequence) -> Setting:
    """The fitting setting with the best expected quality (see `candidates`)."""
    return candidates(size_of, max_bytes, **kwargs)[0]


def _largest_fitting_levels(
    size_of_levels: Callable[[int], int],
    max_bytes: int,
    levels: Sequence[int],
    relative_size: Callable[[int], float | None] | None = None,
) -> int | None:
    """The largest of ``levels`` whose size fits ``max_bytes`` (sizes grow with levels), or None.

    ``relative_size(levels)``: the calibrated bpp curve of this scale (`_calibrated_bpp_interp`). With
    it the search predicts: this image's size at a measured rung × the curve's ratio gives the
    rung expected to fit last; that rung and its neighbour are tried first (one entropy encode each,
    ≈ 0.1 s at 768×512), which usually settles it in 3 encodes where bisection over 21 rungs takes
    5–6. When the prediction misses, bisection finishes the bracket, so the answer is the same as
    plain bisection's (what ``tests/codec/test_ratecontrol.py`` checks) and never more than 2 extra.
    """
    ordered = sorted(levels)
    sizes: dict[int, int] = {}

    def fits(i: int) -> bool:
        if i not in sizes:
            sizes[i] = size_of_levels(ordered[i])
        return sizes[i] <= max_bytes

    if not fits(0):
        return None
    lo, hi = 0, len(ordered)  # ordered[lo] fits; ordered[hi] does not (len: none known not to)
    guess = _predicted_index(ordered, sizes[0], max_bytes, relative_size) if relative_size else None
    if guess is not None and lo < guess < hi:
        if fits(guess):
            lo = guess
            if guess + 1 < hi:
                lo, hi = (guess + 1, hi) if fits(guess + 1) else (lo, guess + 1)
        else:
            hi = guess
            if guess - 1 > lo:
                lo, hi = (guess - 1, hi) if fits(guess - 1) else (lo, guess - 1)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    return ordered[lo]


def _predicted_index(ordered: Sequence[int], size0: int, max_bytes: int,
                     relative_size: Callable[[int], float | None]) -> int | None:
    """Index of the largest rung whose size, predicted from the smallest rung's measured ``size0``
    and the calibrated curve's ratio, fits ``max_bytes`` (None without a curve)."""
    base = relative_size(ordered[0])
    if not base or base <= 0:
        return None
    best = 0
    for i, q in enumerate(ordered):
        rel = relative_size(q)
        if rel is None:
            return None
        if size0 * rel / base <= max_bytes:
            best = i
    return best
