"""Symbol planes ↔ 8-bit images, shared by the image-codec based coders (WebP, JPEG XL)."""

from __future__ import annotations

import numpy as np

from codec.entropy.base import CoderUnsuitable
from codec.errors import BitstreamError

#: Largest side an image codec payload may have (WebP's own limit is 16383).
MAX_SIDE = 16383


def tiled_size(shape: tuple[int, int, int]) -> tuple[int, int]:
    """(width, height) of the grayscale image that stacks the C planes vertically."""
    c, h, w = shape
    return w, c * h


def to_tiled(symbols: np.ndarray) -> np.ndarray:
    c, h, w = symbols.shape
    width, height = tiled_size(symbols.shape)
    if max(width, height) > MAX_SIDE:
        raise CoderUnsuitable(f"{c} planes of {w}x{h} do not fit a {MAX_SIDE}-px image")
    return np.ascontiguousarray(symbols.reshape(height, width).astype(np.uint8))


def from_tiled(pixels: np.ndarray, shape: tuple[int, int, int], levels: int) -> np.ndarray:
    values = check_pixels(pixels, levels)
    return values.reshape(shape)


def check_pixels(pixels: np.ndarray, levels: int) -> np.ndarray:
    values = pixels.astype(np.uint16)
    if values.size and int(values.max()) >= levels:
        raise BitstreamError(f"image payload holds a symbol >= levels ({levels})")
    return values
