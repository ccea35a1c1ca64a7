"""Builders of hostile and awkward upload files (real bytes, made here, nothing downloaded).

PNG chunks are written by hand where Pillow would refuse to write the hostile variant (absurd
headers, bombs, 48-bit colour, APNG frames, eXIf chunks).
"""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Four flat, clearly different colours: orientation and colour handling are checked per quadrant.
QUADRANT_COLOURS = np.array(
    [[(220, 40, 40), (40, 170, 60)], [(40, 60, 210), (235, 215, 50)]], dtype=np.uint8
)  # [row][col]: top-left red, top-right green, bottom-left blue, bottom-right yellow


def quadrants_rgb(width: int, height: int) -> np.ndarray:
    """An image of four flat quadrants (QUADRANT_COLOURS) with a little texture."""
    out = np.empty((height, width, 3), np.uint8)
    hh, hw = height // 2, width // 2
    for r, rows in enumerate((slice(0, hh), slice(hh, height))):
        for c, cols in enumerate((slice(0, hw), slice(hw, width))):
            out[rows, cols] = QUADRANT_COLOURS[r, c]
    rng = np.random.default_rng(1)
    noise = rng.integers(-6, 7, size=out.shape)
    return np.clip(out.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def quadrant_means(rgb: np.ndarray, margin: float = 0.2) -> np.ndarray:
    """Mean colour of the centre of each quadrant (away from the edges), shape (2, 2, 3)."""
    h, w = rgb.shape[:2]
    hh, hw = h // 2, w // 2
    my, mx = max(1, int(hh * margin)), max(1, int(hw * margin))
    out = np.zeros((2, 2, 3))
    for r, y0 in enumerate((0, hh)):
        for c, x0 in enumerate((0, hw)):
            block = rgb[y0 + my : y0 + hh - my, x0 + mx : x0 + hw - mx].reshape(-1, 3)
            out[r, c] = block.astype(np.float64).mean(axis=0)
    return out


def encode_pil(img: Image.Image, fmt: str, **kw) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **kw)
    return out.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_ihdr(width: int, height: int, bit_depth: int = 8, colour_type: int = 2) -> bytes:
    return png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0))


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width × height`` RGB pixels, with a few bytes of image data."""
    idat = zlib.compress(b"\x00" + b"\x80" * 64)
    return PNG_SIGNATURE + png_ihdr(width, height) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def png_pixel_bomb(side: int = 20_000) -> bytes:
    """A real, complete grayscale PNG of ``side²`` zero pixels: a few hundred KB → hundreds of MB."""
    comp = zlib.compressobj(9)
    row = b"\x00" * (side + 1)  # filter byte + pixels
    parts = [comp.compress(row) for _ in range(side)]
    parts.append(comp.flush())
    idat = b"".join(parts)
    return PNG_SIGNATURE + png_ihdr(side, side, 8, 0) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def png_with_chunk_bomb(base_png: bytes, kind: bytes = b"iCCP", inflated: int = 200 * 1024 * 1024) -> bytes:
    """A valid small PNG plus an ancillary chunk whose zlib data inflates to ``inflated`` bytes."""
    comp = zlib.compressobj(9)
    block = b"\x00" * (1 << 20)
    payload = b"".join(comp.compress(block) for _ in range(inflated >> 20)) + comp.flush()
    # iCCP: profile name, NUL, compression method 0; zTXt: keyword, NUL, compression method 0.
    data = (b"bomb" if kind == b"iCCP" else b"Comment") + b"\x00\x00" + payload
    ihdr_end = len(PNG_SIGNATURE) + 25
    return base_png[:ihdr_end] + png_chunk(kind, data) + base_png[ihdr_end:]


def png_rgb48(rgb16: np.ndarray) -> bytes:
    """A 16-bit-per-channel RGB PNG (colour type 2, bit depth 16) from a uint16 (H, W, 3) array."""
    h, w, _ = rgb16.shape
    raw = b"".join(b"\x00" + rgb16[y].astype(">u2").tobytes() for y in range(h))
    return (
        PNG_SIGNATURE
        + png_ihdr(w, h, 16, 2)
        + png_chunk(b"IDAT", zlib.compress(raw))
        + png_chunk(b"IEND", b"")
    )


def png_with_exif(base_png: bytes, exif: bytes) -> bytes:
    """Insert an ``eXIf`` chunk (raw TIFF-structured EXIF) after the header."""
    ihdr_end = len(PNG_SIGNATURE) + 25
    return base_png[:ihdr_end] + png_chunk(b"eXIf", exif) + base_png[ihdr_end:]


def animated_gif(width: int = 48, height: int = 32, frames: int = 3) -> bytes:
    imgs = [Image.fromarray(np.full((height, width, 3), 60 * i + 20, np.uint8)) for i in range(frames)]
    return encode_pil(imgs[0], "GIF", save_all=True, append_images=imgs[1:], duration=100, loop=0)


def apng(width: int = 48, height: int = 32, frames: int = 3) -> bytes:
    imgs = [Image.fromarray(np.full((height, width, 3), 60 * i + 20, np.uint8)) for i in range(frames)]
    return encode_pil(imgs[0], "PNG", save_all=True, append_images=imgs[1:], duration=100, loop=0)


def huge_exif_jpeg(rgb: np.ndarray, comment_bytes: int = 65_000) -> bytes:
    """A JPEG whose APP1/EXIF segment is as large as the format allows (~64 KiB)."""
    exif = Image.Exif()
    exif[0x010E] = "x" * comment_bytes  # ImageDescription
    return encode_pil(Image.fromarray(rgb), "JPEG", quality=92, exif=exif.tobytes())


def huge_exif_tiff_block(nbytes: int) -> bytes:
    exif = Image.Exif()
    exif[0x010E] = "y" * nbytes
    exif[0x0112] = 1
    return exif.tobytes()[len(b"Exif\x00\x00") :] if exif.tobytes().startswith(b"Exif") else exif.tobytes()


def oriented_jpeg(rgb_stored: np.ndarray, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode_pil(Image.fromarray(rgb_stored), "JPEG", quality=95, exif=exif.tobytes())


def cmyk_jpeg(rgb: np.ndarray) -> bytes:
    return encode_pil(Image.fromarray(rgb).convert("CMYK"), "JPEG", quality=95)


def gray_alpha_png(width: int = 64, height: int = 48) -> bytes:
    """Left half opaque dark gray, right half fully transparent (a white viewer shows white there)."""
    la = np.zeros((height, width, 2), np.uint8)
    la[:, : width // 2] = (60, 255)
    la[:, width // 2 :] = (200, 0)
    return encode_pil(Image.fromarray(la, "LA"), "PNG")


HTML_AS_JPG = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>\n"
SVG_AS_JPG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">'
    b"<script>alert(1)</script><rect width='100' height='100'/></svg>"
)
SCRIPT_AS_JPG = b"#!/bin/sh\nrm -rf / --no-preserve-root\n"


def make_100mp_jpeg(path: Path, side: int = 10_000) -> Path:
    """A real 100-megapixel JPEG, made in a child process so this one never holds its pixels."""
    if path.exists():
        return path
    code = (
        "import sys, numpy as np; from PIL import Image\n"
        "side=int(sys.argv[2]); y,x=np.mgrid[0:500,0:500]\n"
        "small=np.stack([(x*0.5)%256,(y*0.5)%256,((x+y)*0.25)%256],-1).astype('uint8')\n"
        "Image.fromarray(small).resize((side,side),Image.Resampling.BILINEAR)"
        ".save(sys.argv[1],'JPEG',quality=20)\n"
    )
    tmp = path.with_suffix(".part")
    subprocess.run([sys.executable, "-c", code, str(tmp), str(side)], check=True, timeout=300)
    tmp.rename(path)
    return path
