"""Server-side checks of an uploaded file before anything is staged or queued.

Only the bytes count, never the file name: Pillow must recognise the content as one of the accepted
formats, the size and pixel limits (settings) must hold, Pillow's decompression-bomb guard is on,
and the whole image must decode (a truncated file fails here, not in the worker).
"""

from __future__ import annotations

import struct
import warnings
import zlib
from dataclasses import dataclass
from typing import BinaryIO

from django.conf import settings
from django.template.defaultfilters import filesizeformat
from PIL import Image, UnidentifiedImageError

# Pillow decoders the codec's image loader accepts. The JPEG decoder also opens MPO, the
# multi-picture JPEG many cameras write (first frame = the photo).
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "AVIF")
_ROTATED_ORIENTATIONS = {5, 6, 7, 8}  # EXIF orientations that swap width and height


class UploadRejected(ValueError):
    """The upload is not acceptable; ``str(exc)`` is a message for the user."""


@dataclass(frozen=True)
class ImageFacts:
    format: str
    width: int  # after EXIF orientation, as the photo will be shown
    height: int
    mode: str
    size: int  # bytes

    @property
    def pixels(self) -> int:
        return self.width * self.height


def _megapixels(n: int) -> str:
    return f"{n / 1e6:.1f} MP"


def inspect_upload(
    fileobj: BinaryIO,
    size: int,
    *,
    max_bytes: int | None = None,
    max_pixels: int | None = None,
    min_side: int | None = None,
) -> ImageFacts:
    """Return the facts about a valid image upload or raise ``UploadRejected`` with a clear reason."""
    max_bytes = settings.GALLERY_MAX_UPLOAD_BYTES if max_bytes is None else max_bytes
    max_pixels = settings.GALLERY_MAX_PIXELS if max_pixels is None else max_pixels
    min_side = settings.GALLERY_MIN_SIDE if min_side is None else min_side

    if size <= 0:
        raise UploadRejected("The file is empty.")
    if size > max_bytes:
        raise UploadRejected(f"The file is {filesizeformat(size)}; the limit is {filesizeformat(max_bytes)}.")
    try:
        with warnings.catch_warnings():
            # Above MAX_IMAGE_PIXELS Pillow only warns; treat that as the bomb it may be.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            fileobj.seek(0)
            with Image.open(fileobj, formats=ACCEPTED_FORMATS) as img:
                fmt = img.format or "?"
                width, height = img.size
                _check_dimensions(width, height, max_pixels, min_side)
                if fmt != "MPO" and getattr(img, "is_animated", False):
                    raise UploadRejected("Animated images are not supported; upload a still image.")
                img.verify()
            fileobj.seek(0)
            with Image.open(fileobj, formats=ACCEPTED_FORMATS) as img:
                orientation = img.getexif().get(0x0112, 1)
                mode = img.mode
                img.load()  # decode everything: truncated or corrupt data fails here
    except UploadRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UploadRejected(
            f"The image has more pixels than the limit of {_megapixels(max_pixels)} "
            "(refused by the decompression-bomb guard)."
        ) from exc
    except UnidentifiedImageError as exc:
        raise UploadRejected(
            "The content is not an image in a supported format (JPEG, PNG, WebP, GIF, BMP, TIFF, AVIF)."
        ) from exc
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, zlib.error) as exc:
        raise UploadRejected(f"The image is damaged or truncated ({exc.__class__.__name__}).") from exc
    finally:
        fileobj.seek(0)

    if orientation in _ROTATED_ORIENTATIONS:
        width, height = height, width
    return ImageFacts(format=fmt, width=width, height=height, mode=mode, size=size)


def _check_dimensions(width: int, height: int, max_pixels: int, min_side: int) -> None:
    if width * height > max_pixels:
        raise UploadRejected(
            f"The image is {width}×{height} ({_megapixels(width * height)}); "
            f"the limit is {_megapixels(max_pixels)}."
        )
    if min(width, height) < min_side:
        raise UploadRejected(f"The image is {width}×{height}; each side must be at least {min_side} pixels.")
