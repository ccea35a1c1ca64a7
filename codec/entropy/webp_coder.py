"""Lossless WebP (libwebp via Pillow) of the symbol planes.

Layout: with 3 or 4 channels, one RGB(A) image whose pixels are the channels at one latent position
(libwebp's cross-colour transform can use the channel correlation); otherwise the planes stacked
vertically in one grayscale image. The decoder checks format, mode, size and frame count from the
header before it decodes any pixel, so a payload can never make it allocate more than the latent
shape implies.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from codec.container.images import open_strict
from codec.entropy.base import CoderUnsuitable, check_shape
from codec.entropy.planes import MAX_SIDE, check_pixels, from_tiled, tiled_size, to_tiled
from codec.errors import BitstreamError

CODER_ID = 3
NAME = "webp"
#: libwebp effort (0..6). 6 is ~3x slower than 4 for < 1 % smaller planes.
METHOD = 4

_INTERLEAVED = {3: "RGB", 4: "RGBA"}


def _layout(shape: tuple[int, int, int]) -> tuple[str, tuple[int, int]]:
    """(mode, (width, height)) of the image a latent of ``shape`` is stored as."""
    c, h, w = shape
    if c in _INTERLEAVED:
        return _INTERLEAVED[c], (w, h)
    return "L", tiled_size(shape)


class WebpCoder:
    coder_id = CODER_ID
    name = NAME

    def encode(self, symbols: np.ndarray, levels: int) -> bytes:
        c, h, w = symbols.shape
        mode, (width, height) = _layout(symbols.shape)
        if max(width, height) > MAX_SIDE:
            raise CoderUnsuitable(f"latent {c}x{h}x{w} too large for WebP")
        if mode == "L":
            img = Image.fromarray(to_tiled(symbols), "L")
        else:
            img = Image.fromarray(np.ascontiguousarray(symbols.transpose(1, 2, 0).astype(np.uint8)), mode)
        buf = io.BytesIO()
        img.save(buf, "WEBP", lossless=True, quality=100, method=METHOD, exact=True)
        return buf.getvalue()

    def decode(self, payload: bytes, shape: tuple[int, int, int], levels: int) -> np.ndarray:
        c, h, w = check_shape(shape, levels)
        mode, size = _layout((c, h, w))
        if len(payload) < 12 or payload[:4] != b"RIFF" or payload[8:12] != b"WEBP":
            raise BitstreamError("webp payload is not a WebP file")
        riff_size = int.from_bytes(payload[4:8], "little")
        if riff_size + 8 != len(payload):
            raise BitstreamError(f"webp payload is {len(payload)} bytes, RIFF says {riff_size + 8}")
        with open_strict(payload, "webp", size, "webp payload") as img:
            # Size and frame count come from the headers: check them before decoding pixels.
            if getattr(img, "n_frames", 1) != 1:
                raise BitstreamError("webp payload is animated")
            if img.mode not in ("RGB", "RGBA"):
                raise BitstreamError(f"webp payload has mode {img.mode}")
            img.load()
            rgba = np.asarray(img.convert("RGBA"))
        if mode != "RGBA" and (rgba[..., 3] != 255).any():
            raise BitstreamError("webp payload has an unexpected alpha channel")
        if mode == "L":
            if (rgba[..., 0] != rgba[..., 1]).any() or (rgba[..., 0] != rgba[..., 2]).any():
                raise BitstreamError("webp payload is not grayscale")
            return from_tiled(rgba[..., 0], (c, h, w), levels)
        values = check_pixels(rgba[..., :c], levels)
        return np.ascontiguousarray(values.transpose(2, 0, 1))
