"""Fixed-length bit packing: ceil(log2 levels) bits per symbol, no modelling.

The fallback that always works with a size known in advance; mostly useful for tiny latents where
the other coders' overheads dominate, and as a reference point.
"""

from __future__ import annotations

import numpy as np

from codec.entropy.base import bits_per_symbol, check_shape
from codec.errors import BitstreamError

CODER_ID = 0
NAME = "raw"


def pack_bits(values: np.ndarray, bits: int) -> bytes:
    """Pack non-negative integers (< 2**bits) MSB-first, zero-padded to a whole byte."""
    flat = np.asarray(values, dtype=np.uint16).ravel()
    shifts = np.arange(bits - 1, -1, -1, dtype=np.uint16)
    planes = ((flat[:, None] >> shifts[None, :]) & 1).astype(np.uint8)
    return np.packbits(planes.ravel()).tobytes()


def unpack_bits(payload: bytes, count: int, bits: int) -> np.ndarray:
    """Inverse of `pack_bits` for exactly ``count`` values; strict about length and padding."""
    expected = (count * bits + 7) // 8
    if len(payload) != expected:
        raise BitstreamError(f"raw payload is {len(payload)} bytes, expected {expected}")
    flags = np.unpackbits(np.frombuffer(payload, dtype=np.uint8))
    if flags[count * bits :].any():
        raise BitstreamError("raw payload has non-zero padding bits")
    planes = flags[: count * bits].reshape(count, bits).astype(np.uint16)
    weights = (1 << np.arange(bits - 1, -1, -1)).astype(np.uint16)
    return (planes * weights[None, :]).sum(axis=1, dtype=np.uint16)


class RawCoder:
    coder_id = CODER_ID
    name = NAME

    def encode(self, symbols: np.ndarray, levels: int) -> bytes:
        return pack_bits(symbols, bits_per_symbol(levels))

    def decode(self, payload: bytes, shape: tuple[int, int, int], levels: int) -> np.ndarray:
        c, h, w = check_shape(shape, levels)
        values = unpack_bits(payload, c * h * w, bits_per_symbol(levels))
        if values.size and int(values.max()) >= levels:
            raise BitstreamError(f"raw payload holds a symbol >= levels ({levels})")
        return values.reshape(c, h, w)
