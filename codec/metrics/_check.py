"""Input validation shared by the metrics (numpy only)."""

from __future__ import annotations

import numpy as np


def check_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both inputs must be uint8 ``HxWx3`` arrays of the same shape; returns them as arrays."""
    a = np.asarray(a)
    b = np.asarray(b)
    for name, x in (("a", a), ("b", b)):
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[2] != 3:
            raise ValueError(f"metric input {name} must be a uint8 HxWx3 RGB array, got {x.dtype} {x.shape}")
    if a.shape != b.shape:
        raise ValueError(f"metric inputs differ in shape: {a.shape} vs {b.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError("metric inputs are empty")
    return a, b
