"""Lossless JPEG XL (libjxl via pillow-jxl-plugin) of the symbol planes stacked vertically (8-bit gray).

The plugin decodes the whole image as soon as it opens it, so the decoder first parses the JPEG XL
codestream header itself (`_check_header`: bare codestream, exact image size, 8-bit integer samples,
no extra channels, no preview, no animation, not XYB) and only then hands the bytes to libjxl.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from codec.container.images import open_strict, register_jxl
from codec.entropy.base import check_shape
from codec.entropy.planes import MAX_SIDE, from_tiled, tiled_size, to_tiled
from codec.errors import BitstreamError

CODER_ID = 4
NAME = "jxl"
#: libjxl effort 1..10; 7 is the default, 9 gains < 1 % here at ~2x the time.
EFFORT = 7

_SIGNATURE = b"\xff\x0a"
_RATIOS = {1: (1, 1), 2: (12, 10), 3: (4, 3), 4: (3, 2), 5: (16, 9), 6: (5, 4), 7: (2, 1)}


class _Bits:
    """LSB-first bit reader over a bytes object (JPEG XL's bit order)."""

    def __init__(self, data: bytes, start: int) -> None:
        self.data, self.pos = data, start * 8

    def read(self, n: int) -> int:
        value = 0
        for i in range(n):
            byte = self.pos >> 3
            if byte >= len(self.data):
                raise BitstreamError("jxl payload header truncated")
            value |= ((self.data[byte] >> (self.pos & 7)) & 1) << i
            self.pos += 1
        return value

    def u32(self, *dists: tuple[int, int]) -> int:
        """JPEG XL U32: 2-bit selector, then (bits, offset) of the chosen distribution."""
        bits, offset = dists[self.read(2)]
        return self.read(bits) + offset


def _size_header(r: _Bits) -> tuple[int, int]:
    small = r.read(1)
    height = (r.read(5) + 1) * 8 if small else r.u32((9, 1), (13, 1), (18, 1), (30, 1))
    ratio = r.read(3)
    if ratio:
        num, den = _RATIOS[ratio]
        width = height * num // den
    elif small:
        width = (r.read(5) + 1) * 8
    else:
        width = r.u32((9, 1), (13, 1), (18, 1), (30, 1))
    return width, height


def _check_header(payload: bytes, size: tuple[int, int]) -> None:
    if payload[:2] != _SIGNATURE:
        raise BitstreamError("jxl payload is not a bare JPEG XL codestream")
    r = _Bits(payload, 2)
    got = _size_header(r)
    if got != size:
        raise BitstreamError(f"jxl payload is {got[0]}x{got[1]}, expected {size[0]}x{size[1]}")
    if r.read(1):  # all_default: 8-bit XYB (lossy) – never written by this coder
        raise BitstreamError("jxl payload has default (XYB) image metadata")
    if r.read(1):  # extra_fields: orientation, intrinsic size, preview, animation
        raise BitstreamError("jxl payload has extra fields (preview/animation/orientation)")
    if r.read(1):
        raise BitstreamError("jxl payload has float samples")
    bits = r.u32((0, 8), (0, 10), (0, 12), (6, 1))
    if bits != 8:
        raise BitstreamError(f"jxl payload has {bits}-bit samples, expected 8")
    r.read(1)  # modular_16_bit_buffers
    if r.u32((0, 0), (0, 1), (4, 2), (12, 1)) != 0:
        raise BitstreamError("jxl payload has extra channels")
    if r.read(1):
        raise BitstreamError("jxl payload is XYB-encoded (lossy)")


class JxlCoder:
    coder_id = CODER_ID
    name = NAME

    def encode(self, symbols: np.ndarray, levels: int) -> bytes:
        register_jxl()
        img = Image.fromarray(to_tiled(symbols), "L")
        buf = io.BytesIO()
        img.save(buf, "JXL", lossless=True, effort=EFFORT, use_container=False, num_threads=1)
        return buf.getvalue()

    def decode(self, payload: bytes, shape: tuple[int, int, int], levels: int) -> np.ndarray:
        c, h, w = check_shape(shape, levels)
        size = tiled_size((c, h, w))
        if max(size) > MAX_SIDE:
            raise BitstreamError(f"latent {c}x{h}x{w} cannot be a jxl payload")
        _check_header(payload, size)
        with open_strict(payload, "jxl", size, "jxl payload") as img:
            if img.mode != "L":
                raise BitstreamError(f"jxl payload decoded to {img.mode} {img.size}, expected L {size}")
            pixels = np.asarray(img)
        return from_tiled(pixels, (c, h, w), levels)
