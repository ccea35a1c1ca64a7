"""Bjøntegaard delta rate (BD-rate) between two rate–quality curves.

The field's method (VCEG-M33, with the piecewise-cubic interpolation of later JVET/AOM practice):
log-rate is interpolated as a function of quality with a monotone piecewise-cubic (PCHIP, or Akima)
through each codec's points, both are integrated over the quality range the two curves share, and
the mean log-rate difference becomes a percentage: ``(exp(mean(log R_test − log R_anchor)) − 1)·100``.
Negative = the test codec needs fewer bytes for the same quality.

Quality must grow with rate: for "lower is better" metrics (LPIPS) pass ``-lpips``; MS-SSIM is
usually mapped to dB, ``-10·log10(1 − MS-SSIM)`` (`msssim_db`), as in the learned-compression papers.
Points whose quality does not improve on a cheaper point are dropped first (they are not on the
rate–quality frontier, and the interpolation needs quality strictly increasing).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

#: fewer points than this → no BD-rate (the cubic needs some support)
MIN_POINTS = 3


def msssim_db(value: float) -> float:
    """MS-SSIM in dB, -10·log10(1 − MS-SSIM) (1.0 is capped at 60 dB)."""
    return -10.0 * math.log10(max(1.0 - float(value), 1e-6))


def frontier(rates: Sequence[float], quality: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The points sorted by rate, keeping only those better than every cheaper one."""
    r = np.asarray(rates, dtype=np.float64)
    q = np.asarray(quality, dtype=np.float64)
    ok = np.isfinite(r) & np.isfinite(q) & (r > 0)
    r, q = r[ok], q[ok]
    order = np.lexsort((-q, r))  # by rate; equal rates: best quality first
    keep_r: list[float] = []
    keep_q: list[float] = []
    for ri, qi in zip(r[order], q[order], strict=True):
        if keep_q and qi <= keep_q[-1]:
            continue
        if keep_r and ri == keep_r[-1]:
            continue
        keep_r.append(float(ri))
        keep_q.append(float(qi))
    return np.array(keep_r), np.array(keep_q)


def _integral(q: np.ndarray, log_r: np.ndarray, lo: float, hi: float, method: str) -> float:
    from scipy.interpolate import Akima1DInterpolator, PchipInterpolator

    f = PchipInterpolator(q, log_r) if method == "pchip" else Akima1DInterpolator(q, log_r)
    return float(f.integrate(lo, hi))


def bd_rate(
    anchor_rates: Sequence[float],
    anchor_quality: Sequence[float],
    test_rates: Sequence[float],
    test_quality: Sequence[float],
    *,
    method: str = "pchip",
) -> float | None:
    """BD-rate of ``test`` against ``anchor`` in percent; None when the curves share no quality range.

    ``method``: "pchip" (monotone piecewise-cubic, default) or "akima".
    """
    if method not in ("pchip", "akima"):
        raise ValueError(f"method must be 'pchip' or 'akima', got {method!r}")
    ra, qa = frontier(anchor_rates, anchor_quality)
    rt, qt = frontier(test_rates, test_quality)
    if len(ra) < MIN_POINTS or len(rt) < MIN_POINTS:
        return None
    lo, hi = max(qa.min(), qt.min()), min(qa.max(), qt.max())
    if not hi > lo:
        return None
    ia = _integral(qa, np.log(ra), lo, hi, method)
    it = _integral(qt, np.log(rt), lo, hi, method)
    return (math.exp((it - ia) / (hi - lo)) - 1.0) * 100.0


def overlap(anchor_quality: Sequence[float], test_quality: Sequence[float]) -> tuple[float, float] | None:
    """The shared quality interval (what the BD-rate averages over), None if empty."""
    if not len(anchor_quality) or not len(test_quality):
        return None
    lo = max(min(anchor_quality), min(test_quality))
    hi = min(max(anchor_quality), max(test_quality))
    return (lo, hi) if hi > lo else None
