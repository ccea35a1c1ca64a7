"""Upload validation: real content, limits, the bomb guard, per-file reasons."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from gallery.validation import UploadRejected, inspect_upload


def check(data: bytes, **kw):
    return inspect_upload(io.BytesIO(data), len(data), **kw)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width``×``height`` with (almost) no pixel data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + chunk(b"IEND", b"")
    )


def test_accepts_png_and_records_facts(make_image_bytes):
    facts = check(make_image_bytes(80, 60, "PNG"))
    assert (facts.format, facts.width, facts.height) == ("PNG", 80, 60)


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP", "GIF", "BMP", "TIFF"])
def test_accepts_common_formats(make_image_bytes, fmt):
    assert check(make_image_bytes(40, 30, fmt)).format == fmt


def test_accepts_cmyk_jpeg_and_16_bit_png_and_gray_alpha(make_image_bytes):
    assert check(make_image_bytes(40, 30, "JPEG", mode="CMYK")).mode == "CMYK"
    assert check(make_image_bytes(40, 30, "PNG", mode="LA")).mode == "LA"
    img = Image.new("I;16", (40, 30), 40000)
    out = io.BytesIO()
    img.save(out, "PNG")
    assert check(out.getvalue()).width == 40


def test_exif_rotation_swaps_dimensions(make_image_bytes):
    img = Image.open(io.BytesIO(make_image_bytes(80, 40, "JPEG")))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif.tobytes())
    facts = check(out.getvalue())
    assert (facts.width, facts.height) == (40, 80)


def test_rejects_empty():
    with pytest.raises(UploadRejected, match="empty"):
        check(b"")


def test_rejects_non_image_named_like_one():
    with pytest.raises(UploadRejected, match="not an image"):
        check(b"<html><script>alert(1)</script></html>")
    with pytest.raises(UploadRejected, match="not an image"):
        check(b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_rejects_truncated(make_image_bytes, fmt):
    data = make_image_bytes(200, 150, fmt)
    with pytest.raises(UploadRejected, match="damaged or truncated"):
        check(data[: len(data) // 2])


def test_rejects_too_large_file(make_image_bytes):
    data = make_image_bytes(64, 48)
    with pytest.raises(UploadRejected, match="limit"):
        check(data, max_bytes=len(data) - 1)


def test_rejects_too_many_pixels(make_image_bytes):
    with pytest.raises(UploadRejected, match=r"limit is 0\.0 MP"):
        check(make_image_bytes(100, 100), max_pixels=5000)


def test_rejects_decompression_bomb_header():
    with pytest.raises(UploadRejected, match=r"decompression-bomb|limit"):
        check(png_header_only(100_000, 100_000))


def test_rejects_tiny_image(make_image_bytes):
    with pytest.raises(UploadRejected, match="at least 16 pixels"):
        check(make_image_bytes(8, 100))


def test_rejects_animated_gif():
    frames = [Image.new("RGB", (32, 32), c) for c in ("red", "blue", "green")]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100)
    with pytest.raises(UploadRejected, match="Animated"):
        check(out.getvalue())
