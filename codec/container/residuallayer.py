"""The residual layer: what the latent decode still gets wrong, coded as one classical image (issue 14).

Above ~0.2 bpp the latent decoder's ceiling (TAESD: ≈ 26–27 dB on Kodak even unquantized) wastes the
budget: more latent bytes buy almost nothing. The encoder then codes a smaller latent and spends the
rest on the residual ``original − decode`` (offset by 128, clipped to 0..255) as a WebP / AVIF / JPEG XL
image; the decoder adds it back. Measured on training photos (docs/bench/residual/): at 0.25–0.5 bpp
this raises PSNR, MS-SSIM *and* lowers LPIPS against the same bytes in the latent alone.

Section layout (section id 3, after the patch and region layers):

====================  ===========================================================================
``u8`` kind            bits 0–2: image codec (1 WebP, 2 AVIF, 3 JPEG XL); bits 3–4: downscale shift
                       ``s`` (the residual image is ``ceil(W/2^s) × ceil(H/2^s)``, resized back to
                       ``W × H`` bilinearly); bits 5–7: reserved, must be 0
image                  the rest: the coded residual image, exactly that size
====================  ===========================================================================

The decoder adds the layer last, after the region latents and the patch layer: the encoder computes
the residual against exactly that decode. `parse` checks the kind byte and the image's own header
(format, size) before a pixel is decoded; anything wrong is a `BitstreamError`. No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from codec.container.images import decode_image
from codec.container.patchlayer import CODEC_IDS, CODECS
from codec.errors import BitstreamError, UnsupportedVersionError

MAX_SHIFT = 3
OFFSET = 128


@dataclass(frozen=True)
class ResidualLayer:
    codec: str
    shift: int
    image: bytes

    def __post_init__(self) -> None:
        if self.codec not in CODEC_IDS:
            raise ValueError(f"residual layer: unknown codec {self.codec!r}")
        if not 0 <= self.shift <= MAX_SHIFT:
            raise ValueError(f"residual layer: shift {self.shift} outside [0, {MAX_SHIFT}]")
        if not self.image:
            raise ValueError("residual layer: empty image")


def image_size(width: int, height: int, shift: int) -> tuple[int, int]:
    """(width, height) of the residual image of a ``width × height`` picture at ``shift``."""
    f = 1 << shift
    return -(-width // f), -(-height // f)


def pack(layer: ResidualLayer) -> bytes:
    """The section body of ``layer``."""
    return bytes([CODEC_IDS[layer.codec] | (layer.shift << 3)]) + layer.image


def parse(data: bytes, width: int, height: int) -> ResidualLayer:
    """Parse and check a section body for a ``width × height`` picture; `BitstreamError` if bad."""
    data = bytes(data)
    if len(data) < 2:
        raise BitstreamError("residual layer: truncated body")
    kind = data[0]
    if kind & 0xE0:
        raise UnsupportedVersionError(f"residual layer: reserved kind bits set (0x{kind:02x})")
    codec_id, shift = kind & 0x07, (kind >> 3) & 0x03
    if codec_id not in CODECS:
        raise UnsupportedVersionError(f"residual layer: unknown image codec {codec_id}")
    layer = ResidualLayer(CODECS[codec_id], shift, data[1:])
    decode_image(layer.image, layer.codec, image_size(width, height, shift), header_only=True)
    return layer


def residual_image(original: np.ndarray, decoded: np.ndarray, shift: int = 0) -> np.ndarray:
    """The image the encoder codes: ``original − decoded + 128`` clipped to uint8 (downscaled by
    ``2^shift`` with a box filter)."""
    r = np.clip(original.astype(np.int16) - decoded.astype(np.int16) + OFFSET, 0, 255).astype(np.uint8)
    if shift:
        h, w = r.shape[:2]
        r = np.asarray(Image.fromarray(r).resize(image_size(w, h, shift), Image.BOX))
    return r


def add(base: np.ndarray, residual: np.ndarray) -> np.ndarray:
    """``base + residual − 128`` (the residual image resized to ``base``'s size first), clipped."""
    h, w = base.shape[:2]
    if residual.shape[:2] != (h, w):
        residual = np.asarray(Image.fromarray(residual).resize((w, h), Image.BILINEAR))
    return np.clip(base.astype(np.int16) + residual.astype(np.int16) - OFFSET, 0, 255).astype(np.uint8)


def apply(base: np.ndarray, layer: ResidualLayer) -> np.ndarray:
    """Decode the layer's image and add it to ``base`` (H, W, 3) uint8; returns a new array."""
    h, w = base.shape[:2]
    return add(base, decode_image(layer.image, layer.codec, image_size(w, h, layer.shift)))
