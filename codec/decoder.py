"""The one decode path: bitstream → RGB, used by `codec.decode`, the fidelity guard and the bench.

A latent payload goes symbols → latent (`codec.entropy`, `codec.quant`) → the model's stock decoder
(tiled for large images, `codec.tiling`) → crop to the coded size → resize to the display size, then
the patch layer (if any) is pasted over it. A whole-image AVIF payload (the guard's last resort) is
decoded by the container's strict image decoder. Torch-side: the web process never imports this.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from codec import entropy
from codec.container import patchlayer
from codec.container.describe import as_bytes
from codec.container.header import PAYLOAD_AVIF, Header, parse
from codec.container.images import decode_image
from codec.errors import UsageError
from codec.imageio import resize_rgb
from codec.models.base import LatentAutoencoder
from codec.models.registry import get_model, get_spec
from codec.options import DEFAULT_DECODE_MAX_PIXELS
from codec.quant import dequantize
from codec.tiling import decode_latent


def latent_to_rgb(
    model: LatentAutoencoder, latent: np.ndarray, coded_w: int, coded_h: int, width: int, height: int
) -> np.ndarray:
    """Decoder pass: latent → RGB uint8 cropped to the coded size, upsampled to the display size."""
    rgb = decode_latent(model, latent)[:coded_h, :coded_w]
    if (coded_w, coded_h) != (width, height):
        rgb = resize_rgb(rgb, width, height)
    return rgb


def decode_rgb(
    data: Any,
    *,
    model: LatentAutoencoder | None = None,
    device: str | None = None,
    model_path: str | None = None,
    max_pixels: int | None = DEFAULT_DECODE_MAX_PIXELS,
    patches: bool = True,
) -> np.ndarray:
    """Decode a bitstream to (H, W, 3) uint8 at the display size.

    ``model``: an already loaded model (the encoder's own, in the guard); else the header's model is
    loaded (cached per process). ``patches=False`` skips the patch layer (the guard scores the plain
    latent first). ``max_pixels``: see `codec.decode`.
    """
    if max_pixels is not None and max_pixels < 1:
        raise UsageError(f"max_pixels must be positive, got {max_pixels}")
    header, payload = parse(as_bytes(data), max_pixels=max_pixels)
    if header.payload_kind == PAYLOAD_AVIF:  # the fidelity guard's last resort
        return decode_image(payload, "avif", (header.width, header.height))
    layer = None
    if patches and header.patch_layer is not None:  # checked before the latent is decoded
        layer = patchlayer.parse(header.patch_layer, header.width, header.height)
    latent = _latent(header, payload)
    if model is None:
        model = get_model(get_spec(header.model_id).name, device=device, model_path=model_path)
    rgb = latent_to_rgb(model, latent, header.coded_width, header.coded_height, header.width, header.height)
    if layer is not None:
        rgb = patchlayer.apply(rgb, layer)
    return rgb


def _latent(header: Header, payload: bytes) -> np.ndarray:
    """Entropy-decode and dequantize the latent (bounded by the header's shape)."""
    assert header.quant is not None
    symbols = entropy.decode_symbols(header.entropy_coder, payload, header.latent_shape, header.quant.levels)
    return dequantize(symbols, header.quant)


def decode(
    data: bytes,
    *,
    device: str | None = None,
    model_path: str | None = None,
    max_pixels: int | None = DEFAULT_DECODE_MAX_PIXELS,
) -> Image.Image:
    """Decode a bitstream to an RGB PIL image of the original display size.

    ``max_pixels`` bounds the work a stream may ask for: an all-zero latent of a huge image entropy-codes
    to a few dozen bytes, so no byte-level check can tell a 35-byte "decode bomb" from a flat photo.
    The default equals the encoder's input limit (every file written with defaults decodes with
    defaults); services decoding untrusted streams should pass their own, smaller limit. ``None`` leaves
    only the format's own limit (100 MP).
    """
    rgb = decode_rgb(data, device=device, model_path=model_path, max_pixels=max_pixels)
    return Image.fromarray(rgb, "RGB")
