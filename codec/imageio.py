"""Any input image → an RGB ``uint8`` array (H, W, 3), plus padding and tensor helpers.

Policy of :func:`load_image` (documented behaviour callers can rely on):

- Sources: a path (``str``/``os.PathLike``), ``bytes``/``bytearray``/``memoryview``, a binary file
  object, a ``PIL.Image.Image`` or a ``numpy.ndarray``.
- Size: the pixel count is checked from the header, BEFORE any pixel data is decoded, against
  ``max_pixels`` (default :data:`DEFAULT_MAX_PIXELS` = 50 MP). Pillow's own decompression-bomb guard
  stays on as well (so above ~179 MP Pillow refuses even if ``max_pixels`` is raised).
- Orientation: the EXIF orientation tag is applied (``ImageOps.exif_transpose``); unreadable EXIF is
  ignored rather than fatal.
- Animated images (GIF, APNG, WebP, …): the first frame is used.
- Modes: grayscale (``1``, ``L``, ``LA``, ``I;16*``, ``I``, ``F``), palette (``P``, ``PA``, with or
  without a transparent index), ``CMYK`` (Adobe-inverted CMYK JPEGs are handled by Pillow's reader),
  ``YCbCr``, 16-bit (``I;16`` PNGs, 16-bit RGB/RGBA PNGs, ``uint16`` arrays) are converted to 8-bit RGB.
  16-bit values are scaled with rounding (``v * 255 / 65535``); mode ``I`` is taken as 16-bit data
  (clipped to 0..65535); mode ``F`` and float arrays as [0, 1] when their maximum is ≤ 1, else 0..255.
- Alpha: ``alpha="composite"`` (default) composites over white (``background``), which is what a
  viewer shows for a transparent photo on a white page; ``alpha="drop"`` discards the alpha channel
  and keeps the colour values stored under transparent pixels.
- Colour management: an embedded ICC profile (RGB, RGBA or CMYK images, e.g. Adobe RGB or Display P3
  photos, print CMYK JPEGs) is applied: the pixels are converted to sRGB (perceptual intent, LittleCMS
  through ``PIL.ImageCms``), because everything downstream (the autoencoders, metrics, the browser
  showing a decode) assumes sRGB. Images without a profile, or with an sRGB one, are taken as sRGB; a
  profile that cannot be parsed or applied is ignored (the values are taken as sRGB) rather than fatal.
- Every failure (missing file, not an image, truncated data, too large, unsupported mode) raises
  :class:`~codec.errors.InputImageError` with a one-line reason; invalid options raise ``UsageError``.

This module imports Pillow and numpy only; torch is imported inside the tensor helpers, because the
web process imports this module and must not import torch.
"""

from __future__ import annotations

import io
import os
from typing import IO, TYPE_CHECKING, Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from codec.container.images import register_jxl
from codec.errors import InputImageError, UsageError
from codec.options import DEFAULT_MAX_PIXELS

if TYPE_CHECKING:
    import torch

_ORIENTATION = 0x0112  # EXIF tag
AlphaPolicy = Literal["composite", "drop"]
ImageSource = str | os.PathLike | bytes | bytearray | memoryview | IO[bytes] | Image.Image | np.ndarray

def load_image(
    src: ImageSource,
    *,
    alpha: AlphaPolicy = "composite",
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    background: tuple[int, int, int] = (255, 255, 255),
) -> np.ndarray:
    """Read ``src`` into a C-contiguous (H, W, 3) ``uint8`` RGB array (see the module docstring)."""
    if alpha not in ("composite", "drop"):
        raise UsageError(f"alpha must be 'composite' or 'drop', got {alpha!r}")
    if max_pixels is not None and max_pixels < 1:
        raise UsageError(f"max_pixels must be positive, got {max_pixels}")
    if isinstance(src, np.ndarray):
        return _from_array(src, alpha, max_pixels, background)
    if isinstance(src, Image.Image):
        return _from_pil(src, alpha, max_pixels, background)
    if isinstance(src, (bytes, bytearray, memoryview)):
        if len(src) == 0:
            raise InputImageError("empty input: 0 bytes")
        return _from_stream(io.BytesIO(bytes(src)), alpha, max_pixels, background)
    if isinstance(src, (str, os.PathLike)):
        path = os.fspath(src)
        try:
            with open(path, "rb") as f:
                return _from_stream(f, alpha, max_pixels, background)
        except FileNotFoundError:
            raise InputImageError(f"no such file: {path}") from None
        except IsADirectoryError:
            raise InputImageError(f"is a directory, not an image: {path}") from None
        except PermissionError:
            raise InputImageError(f"permission denied: {path}") from None
    if hasattr(src, "read"):
        return _from_stream(src, alpha, max_pixels, background)  # type: ignore[arg-type]
    raise InputImageError(f"unsupported image source type {type(src).__name__}")


def _check_size(width: int, height: int, max_pixels: int | None) -> None:
    if width <= 0 or height <= 0:
        raise InputImageError(f"image has no pixels ({width}x{height})")
    if max_pixels is not None and width * height > max_pixels:
        raise InputImageError(
            f"image too large: {width}x{height} = {width * height / 1e6:.1f} MP exceeds the limit of "
            f"{max_pixels / 1e6:.1f} MP"
        )


def _from_stream(
    fp: IO[bytes], alpha: AlphaPolicy, max_pixels: int | None, background: tuple[int, int, int]
) -> np.ndarray:
    register_jxl()
    try:
        img = Image.open(fp)  # lazy: parses the header only
    except Image.DecompressionBombError as exc:
        raise InputImageError(f"image too large (decompression-bomb guard): {exc}") from None
    except UnidentifiedImageError:
        raise InputImageError("not an image (unknown or unsupported format)") from None
    except Exception as exc:
        raise InputImageError(f"cannot read image header: {exc}") from None
    with img:
        return _from_pil(img, alpha, max_pixels, background)


def _from_pil(
    img: Image.Image, alpha: AlphaPolicy, max_pixels: int | None, background: tuple[int, int, int]
) -> np.ndarray:
    _check_size(img.width, img.height, max_pixels)  # header size, before pixels are decoded
    try:
        img.load()  # a freshly opened animated image sits on its first frame
    except InputImageError:
        raise
    except Exception as exc:  # truncated/corrupt data: OSError, SyntaxError, ValueError, EOFError, ...
        raise InputImageError(f"corrupt or truncated image data: {exc}") from None
    try:
        # only transpose (which copies) when there is something to do
        if img.getexif().get(_ORIENTATION, 1) != 1:
            img = ImageOps.exif_transpose(img)
    except Exception:
        pass  # unreadable EXIF: keep the stored orientation
    img = _to_srgb(img)
    try:
        return _pil_to_rgb(img, alpha, background)
    except InputImageError:
        raise
    except Exception as exc:
        raise InputImageError(f"cannot convert image mode {img.mode!r} to RGB: {exc}") from None


_ICC_MODES = {"RGB": "RGB", "RGBA": "RGBA", "CMYK": "RGB"}  # source mode → converted mode


def _to_srgb(img: Image.Image) -> Image.Image:
    """Apply the embedded ICC profile (see the module policy); returns ``img`` when there is none."""
    icc = img.info.get("icc_profile")
    if not icc or img.mode not in _ICC_MODES:
        return img
    try:
        from PIL import ImageCms

        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if "srgb" in (ImageCms.getProfileDescription(src) or "").lower().replace(" ", ""):
            return img
        out = ImageCms.profileToProfile(
            img, src, ImageCms.createProfile("sRGB"), renderingIntent=ImageCms.Intent.PERCEPTUAL,
            outputMode=_ICC_MODES[img.mode],
        )
        return out if out is not None else img
    except Exception:  # a broken or unsupported profile: the values are taken as sRGB
        return img


def _pil_to_rgb(img: Image.Image, alpha: AlphaPolicy, background: tuple[int, int, int]) -> np.ndarray:
    mode = img.mode
    if mode == "RGB":
        return np.array(img, dtype=np.uint8)
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        a = np.asarray(img).astype(np.float64)
        return _gray_to_rgb(_scale_to_uint8(np.clip(a, 0, 65535), 65535.0))
    if mode == "F":
        return _gray_to_rgb(_float_to_uint8(np.asarray(img)))
    if mode == "1":
        return _gray_to_rgb(np.array(img.convert("L"), dtype=np.uint8))
    if mode == "L":
        return _gray_to_rgb(np.array(img, dtype=np.uint8))
    if mode == "P":
        has_alpha = "transparency" in img.info or (img.palette is not None and img.palette.mode == "RGBA")
        img = img.convert("RGBA" if has_alpha else "RGB")
        return _pil_to_rgb(img, alpha, background)
    if mode in ("LA", "La", "PA", "RGBa", "RGBA"):
        rgba = np.array(img.convert("RGBA"), dtype=np.uint8)
        return _apply_alpha(rgba[..., :3], rgba[..., 3], alpha, background)
    # CMYK (Pillow's JPEG reader already undoes Adobe inversion), YCbCr, RGBX, LAB, HSV, ...
    return np.array(img.convert("RGB"), dtype=np.uint8)


def _gray_to_rgb(g: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.repeat(g[..., None], 3, axis=2))


def _scale_to_uint8(a: np.ndarray, full: float) -> np.ndarray:
    return np.rint(a * (255.0 / full)).astype(np.uint8)


def _float_to_uint8(a: np.ndarray) -> np.ndarray:
    a = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    scale = 1.0 if (a.size and a.max() <= 1.0) else 255.0
    return _scale_to_uint8(np.clip(a, 0, scale), scale)


def _apply_alpha(
    rgb: np.ndarray, a: np.ndarray, alpha: AlphaPolicy, background: tuple[int, int, int]
) -> np.ndarray:
    if alpha == "drop":
        return np.ascontiguousarray(rgb, dtype=np.uint8)
    w = a.astype(np.float32)[..., None] / 255.0
    bg = np.asarray(background, dtype=np.float32)
    out = rgb.astype(np.float32) * w + bg * (1.0 - w)
    return np.ascontiguousarray(np.clip(np.rint(out), 0, 255).astype(np.uint8))


def _from_array(
    a: np.ndarray, alpha: AlphaPolicy, max_pixels: int | None, background: tuple[int, int, int]
) -> np.ndarray:
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
        raise InputImageError(
            f"array must be HxW, HxWx1, HxWx2, HxWx3 or HxWx4, got shape {tuple(a.shape)}"
        )
    _check_size(a.shape[1], a.shape[0], max_pixels)
    if a.dtype == np.uint8:
        u8 = a
    elif a.dtype == np.uint16:
        u8 = _scale_to_uint8(a.astype(np.float64), 65535.0)
    elif a.dtype == np.bool_:
        u8 = a.astype(np.uint8) * 255
    elif np.issubdtype(a.dtype, np.floating):
        u8 = _float_to_uint8(a)
    elif np.issubdtype(a.dtype, np.integer):
        if a.size and (a.min() < 0 or a.max() > 255):
            raise InputImageError(
                f"integer array of dtype {a.dtype} has values outside 0..255; pass uint16 for 16-bit data"
            )
        u8 = a.astype(np.uint8)
    else:
        raise InputImageError(f"unsupported array dtype {a.dtype}")
    c = u8.shape[2]
    if c == 1:
        return _gray_to_rgb(u8[..., 0])
    if c == 2:
        return _apply_alpha(np.repeat(u8[..., :1], 3, axis=2), u8[..., 1], alpha, background)
    if c == 3:
        return np.array(u8, dtype=np.uint8, order="C")
    return _apply_alpha(u8[..., :3], u8[..., 3], alpha, background)


# ---------------------------------------------------------------- padding / cropping


def padded_size(height: int, width: int, multiple: int) -> tuple[int, int]:
    """(H, W) rounded up to multiples of ``multiple``."""
    return (-(-height // multiple) * multiple, -(-width // multiple) * multiple)


def pad_to_multiple(x: np.ndarray, multiple: int) -> np.ndarray:
    """Pad an (H, W) or (H, W, C) array at the bottom/right by edge replication to multiples of ``multiple``.

    Edge replication (not zeros) keeps the encoder from seeing an artificial border; crop back with
    :func:`crop` after decoding.
    """
    if multiple < 1:
        raise ValueError(f"multiple must be >= 1, got {multiple}")
    h, w = x.shape[:2]
    ph, pw = padded_size(h, w, multiple)
    if (ph, pw) == (h, w):
        return x
    pad = [(0, ph - h), (0, pw - w)] + [(0, 0)] * (x.ndim - 2)
    return np.pad(x, pad, mode="edge")


def crop(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """The top-left ``height`` × ``width`` region of an (H, W, ...) array (undoes :func:`pad_to_multiple`)."""
    return x[:height, :width]


def resize_rgb(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize an (H, W, 3) uint8 image to ``width`` × ``height`` with Pillow's Lanczos filter.

    Used for resolution as a rate-control dimension (encode at reduced size, upsample the decode).
    """
    if width < 1 or height < 1:
        raise ValueError(f"invalid target size {width}x{height}")
    if rgb.shape[1] == width and rgb.shape[0] == height:
        return rgb
    out = to_pil(rgb).resize((width, height), Image.Resampling.LANCZOS)
    return np.asarray(out, dtype=np.uint8).copy()


# ---------------------------------------------------------------- tensors (torch imported lazily)


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 → (1, 3, H, W) float32 in [0, 1]."""
    import torch

    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 array, got {rgb.shape} {rgb.dtype}")
    t = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).unsqueeze(0)
    return t.to(torch.float32).div_(255.0)


def to_uint8(t: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) or (3, H, W) float tensor in ~[0, 1] → (H, W, 3) uint8 (clamped, rounded)."""
    if t.ndim == 4:
        if t.shape[0] != 1:
            raise ValueError(f"expected a batch of one image, got {tuple(t.shape)}")
        t = t[0]
    if t.ndim != 3 or t.shape[0] != 3:
        raise ValueError(f"expected (3, H, W), got {tuple(t.shape)}")
    a = t.detach().float().clamp(0, 1).mul(255).round().to("cpu").permute(1, 2, 0)
    return np.ascontiguousarray(a.numpy().astype(np.uint8))


def to_pil(rgb: np.ndarray) -> Image.Image:
    """(H, W, 3) uint8 → PIL RGB image."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) array, got {rgb.shape}")
    return Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8))
