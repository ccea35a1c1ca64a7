"""Classical image formats inside the container (the whole-image AVIF payload, patch-layer atlases,
the WebP/JPEG XL entropy coders): one table of formats, JPEG XL plugin registration once, and the
one strict decoder that every embedded image goes through.

Strict: the format is forced (no other Pillow plugin sees the bytes), a decompression-bomb warning is
an error, and the size in the image's own header is checked before a pixel is decoded. Every failure
is a `BitstreamError`. Pillow only (the web process may import this).
"""

from __future__ import annotations

import functools
import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from PIL import Image

from codec.errors import BitstreamError, CodecError


@dataclass(frozen=True)
class ImageFormat:
    name: str
    pil: str  # Pillow format name
    extension: str
    content_type: str


#: the one content-type table of the codec's image formats
FORMATS: dict[str, ImageFormat] = {
    f.name: f
    for f in (
        ImageFormat("jpeg", "JPEG", ".jpg", "image/jpeg"),
        ImageFormat("png", "PNG", ".png", "image/png"),
        ImageFormat("webp", "WEBP", ".webp", "image/webp"),
        ImageFormat("avif", "AVIF", ".avif", "image/avif"),
        ImageFormat("jxl", "JXL", ".jxl", "image/jxl"),
    )
}


@functools.cache
def register_jxl() -> bool:
    """Register the JPEG XL plugin (pillow-jxl-plugin) with Pillow once; False when it is missing."""
    try:
        import pillow_jxl  # noqa: F401  (importing it registers the plugin)
    except ImportError:  # pragma: no cover - it is in requirements.txt
        return False
    return True


@contextmanager
def open_strict(
    data: bytes, fmt: str, size: tuple[int, int], what: str | None = None
) -> Iterator[Image.Image]:
    """Open ``data`` as format ``fmt`` only and check it is ``size`` = (width, height) before any
    pixel is decoded; inside the block decode as needed. Any failure → `BitstreamError`."""
    what = what or f"{fmt} image"
    if fmt == "jxl":
        register_jxl()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[FORMATS[fmt].pil]) as img:
                if img.size != tuple(size):
                    raise BitstreamError(
                        f"{what} is {img.size[0]}x{img.size[1]}, expected {size[0]}x{size[1]}"
                    )
                yield img
    except CodecError:
        raise
    except Exception as exc:  # Pillow and its plugins raise many kinds on corrupt data
        raise BitstreamError(f"cannot decode the {what}: {type(exc).__name__}: {exc}") from exc


def decode_image(data: bytes, fmt: str, size: tuple[int, int], *, header_only: bool = False) -> np.ndarray:
    """Decode a WebP/AVIF/JPEG XL image that must be exactly ``size`` = (width, height) → uint8 RGB.

    ``header_only``: stop after the size check (returns an empty array).
    """
    with open_strict(data, fmt, size) as img:
        if header_only:
            return np.zeros((0, 0, 3), dtype=np.uint8)
        img.load()
        rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
    if rgb.shape != (size[1], size[0], 3):
        raise BitstreamError(f"{fmt} image decoded to {rgb.shape}")
    return rgb
