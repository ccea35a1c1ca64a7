"""PSNR over the three RGB channels (numpy only)."""

from __future__ import annotations

import math

import numpy as np

from codec.metrics._check import check_pair


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB (peak 255, MSE over all pixels and channels).

    Returns ``math.inf`` for identical images; callers that write JSON must handle that.
    """
    a, b = check_pair(a, b)
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(255.0**2 / mse)
