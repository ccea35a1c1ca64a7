"""The interface every entropy coder implements, and the checks they share.

A coder turns a ``(C, h, w)`` array of quantizer symbols in ``[0, levels)`` into bytes and back.
Decoders get their shape and levels from the (already validated) bitstream header, never from the
payload, so they can bound every allocation before touching the payload; anything inconsistent
raises `BitstreamError`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from codec.errors import BitstreamError

MIN_LEVELS = 2
MAX_LEVELS = 256
#: Upper bound on C*h*w a decoder accepts: 100 MP / 64 latent positions × 64 channels.
MAX_SYMBOLS = 100_000_000 // 64 * 64


@runtime_checkable
class EntropyCoder(Protocol):
    """One entropy coder. ``coder_id`` is what the bitstream header stores."""

    coder_id: int
    name: str

    def encode(self, symbols: np.ndarray, levels: int) -> bytes:
        """Encode ``symbols`` (C, h, w) uint16 in [0, levels). May raise `CoderUnsuitable`."""
        ...

    def decode(self, payload: bytes, shape: tuple[int, int, int], levels: int) -> np.ndarray:
        """Decode to a (C, h, w) uint16 array; `BitstreamError` on anything wrong."""
        ...


class CoderUnsuitable(Exception):
    """A coder cannot represent these symbols (e.g. an image codec and too many planes).

    Only raised by ``encode``; `encode_symbols` then skips the coder. Not a `CodecError`: it never
    leaves the entropy package.
    """


def check_shape(shape: tuple[int, int, int], levels: int) -> tuple[int, int, int]:
    """Validate a (C, h, w) shape and a level count; return the shape as plain ints."""
    if not isinstance(shape, (tuple, list)) or len(shape) != 3:
        raise BitstreamError(f"latent shape must be (channels, height, width), got {shape!r}")
    try:
        c, h, w = (int(v) for v in shape)
    except (TypeError, ValueError) as exc:
        raise BitstreamError(f"latent shape must be integers, got {shape!r}") from exc
    if min(c, h, w) < 1:
        raise BitstreamError(f"latent shape {c}x{h}x{w} has an empty dimension")
    if c * h * w > MAX_SYMBOLS:
        raise BitstreamError(f"latent shape {c}x{h}x{w} exceeds the limit of {MAX_SYMBOLS} symbols")
    check_levels(levels)
    return c, h, w


def check_levels(levels: int) -> int:
    if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)):
        raise BitstreamError(f"levels must be an integer, got {levels!r}")
    if not MIN_LEVELS <= int(levels) <= MAX_LEVELS:
        raise BitstreamError(f"levels {levels} outside [{MIN_LEVELS}, {MAX_LEVELS}]")
    return int(levels)


def check_symbols(symbols: np.ndarray, levels: int) -> np.ndarray:
    """Validate encoder input: a (C, h, w) integer array with values in [0, levels)."""
    levels = check_levels(levels)
    arr = np.asarray(symbols)
    if arr.ndim != 3:
        raise ValueError(f"symbols must be (C, h, w), got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"symbols must be integers, got {arr.dtype}")
    check_shape(arr.shape, levels)
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= levels):
        raise ValueError(f"symbols outside [0, {levels})")
    return np.ascontiguousarray(arr, dtype=np.uint16)


def bits_per_symbol(levels: int) -> int:
    """Bits of a fixed-length code for ``levels`` symbols."""
    return max(1, (int(levels) - 1).bit_length())
