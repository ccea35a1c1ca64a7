"""codec.imageio: every input source and pixel mode, EXIF orientation, alpha policy, limits, errors."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from codec.errors import InputImageError, UsageError
from codec.imageio import (
    crop,
    load_image,
    pad_to_multiple,
    padded_size,
    resize_rgb,
    to_pil,
    to_tensor,
    to_uint8,
)

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, size=(6, 10, 3), dtype=np.uint8)


def _png_bytes(img: Image.Image, **kwargs: object) -> bytes:
    b = io.BytesIO()
    img.save(b, "PNG", **kwargs)
    return b.getvalue()


def _raw_png(width: int, height: int, bit_depth: int, color_type: int, rows: list[bytes]) -> bytes:
    """A minimal PNG writer (filter 0 on every row), independent of Pillow's encoder."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    idat = zlib.compress(b"".join(b"\x00" + r for r in rows))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _check_rgb(out: np.ndarray, shape: tuple[int, int]) -> None:
    assert out.dtype == np.uint8 and out.shape == (*shape, 3) and out.flags.c_contiguous


# ------------------------------------------------------------------ sources


def test_source_path_str_and_pathlike(tmp_path: Path) -> None:
    p = tmp_path / "a.png"
    p.write_bytes(_png_bytes(Image.fromarray(RGB)))
    np.testing.assert_array_equal(load_image(p), RGB)
    np.testing.assert_array_equal(load_image(str(p)), RGB)


def test_source_bytes_bytearray_memoryview() -> None:
    data = _png_bytes(Image.fromarray(RGB))
    for src in (data, bytearray(data), memoryview(data)):
        np.testing.assert_array_equal(load_image(src), RGB)


def test_source_file_object(tmp_path: Path) -> None:
    p = tmp_path / "a.png"
    p.write_bytes(_png_bytes(Image.fromarray(RGB)))
    with open(p, "rb") as f:
        np.testing.assert_array_equal(load_image(f), RGB)
    np.testing.assert_array_equal(load_image(io.BytesIO(p.read_bytes())), RGB)


def test_source_pil_image() -> None:
    out = load_image(Image.fromarray(RGB))
    _check_rgb(out, (6, 10))
    np.testing.assert_array_equal(out, RGB)


def test_source_ndarray_variants() -> None:
    np.testing.assert_array_equal(load_image(RGB), RGB)
    assert load_image(RGB) is not RGB  # a copy: callers may modify it
    np.testing.assert_array_equal(load_image(RGB[:, ::-1]), RGB[:, ::-1])  # non-contiguous view
    gray = RGB[..., 0]
    np.testing.assert_array_equal(load_image(gray), np.repeat(gray[..., None], 3, 2))
    np.testing.assert_array_equal(load_image(gray[..., None]), np.repeat(gray[..., None], 3, 2))
    u16 = gray.astype(np.uint16) * 257
    np.testing.assert_array_equal(load_image(u16), np.repeat(gray[..., None], 3, 2))
    f = RGB.astype(np.float32) / 255
    np.testing.assert_array_equal(load_image(f), RGB)
    b = gray > 128
    np.testing.assert_array_equal(load_image(b)[..., 0], np.where(b, 255, 0))
    np.testing.assert_array_equal(load_image(RGB.astype(np.int64)), RGB)
    rgba = np.dstack([RGB, np.full((6, 10), 255, np.uint8)])
    np.testing.assert_array_equal(load_image(rgba), RGB)
    la = np.dstack([gray, np.zeros_like(gray)])
    assert (load_image(la) == 255).all()  # fully transparent → white


@pytest.mark.parametrize(
    "bad",
    [np.zeros((4, 4, 5), np.uint8), np.zeros((4,), np.uint8), np.zeros((0, 4, 3), np.uint8),
     np.full((4, 4, 3), 300, np.int32), np.zeros((4, 4, 3), np.complex64)],
)
def test_bad_arrays(bad: np.ndarray) -> None:
    with pytest.raises(InputImageError):
        load_image(bad)


# ------------------------------------------------------------------ modes


def test_exif_orientation_applied() -> None:
    base = Image.fromarray(RGB)
    for orientation, expected in [(3, np.rot90(RGB, 2)), (6, np.rot90(RGB, -1)), (8, np.rot90(RGB, 1))]:
        exif = Image.Exif()
        exif[0x0112] = orientation
        out = load_image(_png_bytes(base, exif=exif))
        np.testing.assert_array_equal(out, expected, err_msg=f"orientation {orientation}")


def test_grayscale_modes() -> None:
    g = RGB[..., 1]
    want = np.repeat(g[..., None], 3, 2)
    np.testing.assert_array_equal(load_image(_png_bytes(Image.fromarray(g, "L").convert("L"))), want)
    la = Image.merge("LA", [Image.fromarray(g), Image.new("L", (10, 6), 255)])
    np.testing.assert_array_equal(load_image(_png_bytes(la)), want)
    one = Image.fromarray(g).convert("1")
    out = load_image(_png_bytes(one))
    assert set(np.unique(out)) <= {0, 255}
    i_img = Image.fromarray(g.astype(np.int32) * 257)  # mode I, 16-bit data
    assert i_img.mode == "I"
    np.testing.assert_array_equal(load_image(i_img), want)
    f_img = Image.fromarray(g.astype(np.float32) / 255)  # mode F in [0, 1]
    assert f_img.mode == "F"
    np.testing.assert_array_equal(load_image(f_img), want)


def test_16bit_gray_png() -> None:
    g16 = (RGB[..., 0].astype(np.uint16) * 257 + 100).astype(">u2")
    data = _raw_png(10, 6, 16, 0, [row.tobytes() for row in g16])
    img = Image.open(io.BytesIO(data))
    assert img.mode.startswith("I")
    out = load_image(data)
    want = np.rint(g16.astype(np.float64) * 255 / 65535).astype(np.uint8)
    np.testing.assert_array_equal(out, np.repeat(want[..., None], 3, 2))
    # I;16 via Pillow's own writer too
    np.testing.assert_array_equal(load_image(_png_bytes(Image.fromarray(g16.astype(np.uint16)))), out)


def test_16bit_rgb_and_rgba_png() -> None:
    rgb16 = RGB.astype(np.uint16) * 257 + 77
    data = _raw_png(10, 6, 16, 2, [row.astype(">u2").tobytes() for row in rgb16])
    out = load_image(data)
    _check_rgb(out, (6, 10))
    # Pillow reduces 16-bit RGB to 8 bits (high byte); allow that rounding difference
    assert np.abs(out.astype(int) - rgb16.astype(float) * 255 / 65535).max() <= 1
    alpha16 = np.full((6, 10, 1), 65535, np.uint16)
    rgba16 = np.concatenate([rgb16, alpha16], axis=2)
    out_a = load_image(_raw_png(10, 6, 16, 6, [row.astype(">u2").tobytes() for row in rgba16]))
    np.testing.assert_array_equal(out_a, out)


def test_palette_modes() -> None:
    p = Image.fromarray(RGB).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    np.testing.assert_array_equal(load_image(_png_bytes(p)), np.asarray(p.convert("RGB")))
    # transparent palette index → white when composited, the palette colour when dropped
    pt = Image.new("P", (4, 4), 0)
    pt.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    pt.putpixel((0, 0), 1)
    data = _png_bytes(pt, transparency=0)
    assert "transparency" in Image.open(io.BytesIO(data)).info
    comp = load_image(data)
    drop = load_image(data, alpha="drop")
    assert tuple(comp[1, 1]) == (255, 255, 255) and tuple(drop[1, 1]) == (10, 20, 30)
    assert tuple(comp[0, 0]) == (200, 100, 50) == tuple(drop[0, 0])
    pa = Image.open(io.BytesIO(data)).convert("PA")  # palette + alpha band
    assert pa.mode == "PA"
    np.testing.assert_array_equal(load_image(pa), comp)


def test_cmyk_image_and_adobe_cmyk_jpeg() -> None:
    cmyk = Image.new("CMYK", (32, 32), (0, 0, 0, 0))
    colours = {(0, 0): ((255, 0, 0, 0), (0, 255, 255)), (16, 0): ((0, 255, 0, 0), (255, 0, 255)),
               (0, 16): ((0, 0, 255, 0), (255, 255, 0)), (16, 16): ((0, 0, 0, 255), (0, 0, 0))}
    for (x, y), (ink, _) in colours.items():
        cmyk.paste(ink, (x, y, x + 16, y + 16))
    direct = load_image(cmyk)
    buf = io.BytesIO()
    cmyk.save(buf, "JPEG", quality=95)
    reread = Image.open(io.BytesIO(buf.getvalue()))
    assert reread.mode == "CMYK" and "adobe" in reread.info  # Pillow writes an inverted Adobe CMYK JPEG
    via_jpeg = load_image(buf.getvalue())
    for (x, y), (_, rgb) in colours.items():
        assert tuple(direct[y + 8, x + 8]) == rgb
        assert np.abs(via_jpeg[y + 8, x + 8].astype(int) - rgb).max() <= 8, (rgb, via_jpeg[y + 8, x + 8])


def test_ycbcr_and_rgbx() -> None:
    img = Image.fromarray(RGB)
    out = load_image(img.convert("YCbCr"))
    assert np.abs(out.astype(int) - RGB).max() <= 3
    np.testing.assert_array_equal(load_image(img.convert("RGBX")), RGB)


def test_alpha_composite_over_white_or_drop() -> None:
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., :3] = (200, 100, 0)
    rgba[..., 3] = [[255, 128], [0, 64]]
    data = _png_bytes(Image.fromarray(rgba, "RGBA"))
    comp = load_image(data)
    drop = load_image(data, alpha="drop")
    assert (drop == (200, 100, 0)).all()
    assert tuple(comp[0, 0]) == (200, 100, 0)
    assert tuple(comp[1, 0]) == (255, 255, 255)
    a = 128 / 255
    assert tuple(comp[0, 1]) == tuple(round(c * a + 255 * (1 - a)) for c in (200, 100, 0))
    black = load_image(data, background=(0, 0, 0))
    assert tuple(black[1, 0]) == (0, 0, 0)
    with pytest.raises(UsageError):
        load_image(data, alpha="keep")  # type: ignore[arg-type]


def test_animated_gif_takes_first_frame() -> None:
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    b = io.BytesIO()
    frames[0].save(b, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert Image.open(io.BytesIO(b.getvalue())).n_frames == 2
    out = load_image(b.getvalue())
    assert tuple(out[4, 4]) == (255, 0, 0)


def test_kodak_png_path() -> None:
    from codec.weights import kodak_dir

    try:
        p = kodak_dir() / "kodim01.png"
    except Exception as exc:  # pragma: no cover
        pytest.skip(str(exc))
    out = load_image(p)
    _check_rgb(out, (512, 768))


# ------------------------------------------------------------------ limits and errors


def test_pixel_limit_checked_before_decoding() -> None:
    # header claims 8000x8000 (64 MP, under Pillow's bomb guard) with a tiny IDAT: only the header is read
    data = _raw_png(8000, 8000, 8, 2, [b"\x00" * 24])
    t = time.perf_counter()
    with pytest.raises(InputImageError, match="too large"):
        load_image(data)
    assert time.perf_counter() - t < 0.5
    with pytest.raises(InputImageError, match="too large"):
        load_image(_png_bytes(Image.fromarray(RGB)), max_pixels=59)
    np.testing.assert_array_equal(load_image(_png_bytes(Image.fromarray(RGB)), max_pixels=60), RGB)
    with pytest.raises(InputImageError, match="too large"):
        load_image(np.zeros((10, 10, 3), np.uint8), max_pixels=99)


def test_decompression_bomb_header() -> None:
    data = _raw_png(100_000, 100_000, 8, 2, [b"\x00" * 24])
    with pytest.raises(InputImageError, match="too large"):
        load_image(data, max_pixels=None)


def test_truncated_png_and_jpeg() -> None:
    big = RNG.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    png = _png_bytes(Image.fromarray(big))
    b = io.BytesIO()
    Image.fromarray(big).save(b, "JPEG", quality=90)
    for data in (png[: len(png) // 2], b.getvalue()[: len(b.getvalue()) // 2]):
        with pytest.raises(InputImageError, match="corrupt or truncated"):
            load_image(data)


@pytest.mark.parametrize(
    "data", [b"hello, not an image", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff" + b"\x00" * 20]
)
def test_not_an_image(data: bytes) -> None:
    with pytest.raises(InputImageError):
        load_image(data)


def test_other_errors(tmp_path: Path) -> None:
    with pytest.raises(InputImageError, match="empty"):
        load_image(b"")
    with pytest.raises(InputImageError, match="no such file"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(InputImageError, match="directory"):
        load_image(tmp_path)
    with pytest.raises(InputImageError, match="unsupported image source"):
        load_image(12345)  # type: ignore[arg-type]


# ------------------------------------------------------------------ helpers


def test_pad_and_crop() -> None:
    x = RGB  # 6x10
    assert padded_size(6, 10, 8) == (8, 16)
    p = pad_to_multiple(x, 8)
    assert p.shape == (8, 16, 3)
    np.testing.assert_array_equal(crop(p, 6, 10), x)
    np.testing.assert_array_equal(p[7, 15], x[5, 9])  # edge replication
    np.testing.assert_array_equal(p[6:, :10], np.repeat(x[5:6], 2, axis=0))
    same = np.zeros((16, 8, 3), np.uint8)
    assert pad_to_multiple(same, 8) is same
    assert pad_to_multiple(RGB[..., 0], 4).shape == (8, 12)


def test_resize_rgb() -> None:
    flat = np.full((6, 10, 3), 77, np.uint8)
    out = resize_rgb(flat, 5, 3)
    assert out.shape == (3, 5, 3) and (out == 77).all() and out.flags.writeable
    assert resize_rgb(RGB, 10, 6) is RGB
    up = resize_rgb(RGB, 20, 12)
    assert up.shape == (12, 20, 3) and abs(float(up.mean()) - float(RGB.mean())) < 3
    with pytest.raises(ValueError):
        resize_rgb(RGB, 0, 4)


def test_tensor_helpers() -> None:
    t = to_tensor(RGB)
    assert tuple(t.shape) == (1, 3, 6, 10) and float(t.max()) <= 1.0
    np.testing.assert_array_equal(to_uint8(t), RGB)
    assert (to_uint8(t[0] - 2) == 0).all() and (to_uint8(t + 2) == 255).all()  # clamped
    np.testing.assert_array_equal(np.asarray(to_pil(RGB)), RGB)
    with pytest.raises(ValueError):
        to_tensor(RGB.astype(np.float32))


def test_imageio_does_not_import_torch() -> None:
    code = (
        "import sys, numpy as np, codec.imageio as m; m.pad_to_multiple(m.load_image(np.zeros((3, 3))), 8); "
        "sys.exit('torch' in sys.modules)"
    )
    root = Path(__file__).resolve().parents[2]
    assert subprocess.run([sys.executable, "-c", code], cwd=root).returncode == 0


def _swapped_rg_profile() -> bytes:
    """An RGB ICC profile whose red and green primaries are swapped (sRGB's tags re-pointed)."""
    import struct

    from PIL import ImageCms

    b = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    count = struct.unpack(">I", b[128:132])[0]
    entry = {bytes(b[132 + 12 * i : 136 + 12 * i]): 132 + 12 * i for i in range(count)}
    r, g = entry[b"rXYZ"], entry[b"gXYZ"]
    b[r + 4 : r + 12], b[g + 4 : g + 12] = b[g + 4 : g + 12], b[r + 4 : r + 12]
    d = entry[b"desc"]
    off, size = struct.unpack(">II", b[d + 4 : d + 12])
    desc = bytes(b[off : off + size]).replace(b"sRGB", b"Swap")
    b[off : off + size] = desc.replace("sRGB".encode("utf-16-be"), "Swap".encode("utf-16-be"))
    b[84:100] = bytes(16)  # profile id (MD5) no longer valid: zero means "not computed"
    return bytes(b)


@pytest.mark.parametrize("fmt, mode", [("PNG", "RGB"), ("JPEG", "RGB"), ("PNG", "RGBA")])
def test_embedded_icc_profile_is_converted_to_srgb(fmt: str, mode: str) -> None:
    a = np.zeros((16, 16, len(mode)), np.uint8)
    a[..., 0] = 200
    if mode == "RGBA":
        a[..., 3] = 255
    buf = io.BytesIO()
    extra = {"quality": 95} if fmt == "JPEG" else {}
    Image.fromarray(a, mode).save(buf, fmt, icc_profile=_swapped_rg_profile(), **extra)
    r, g, b = (int(v) for v in load_image(buf.getvalue())[8, 8])
    assert g > 150 and r < 40 and b < 40, (r, g, b)  # "red" in that colour space is green in sRGB


@pytest.mark.parametrize("icc", [b"not a profile" * 8, b""], ids=["broken", "empty"])
def test_broken_or_srgb_icc_profile_leaves_values_alone(icc: bytes) -> None:
    from PIL import ImageCms

    a = np.zeros((8, 8, 3), np.uint8)
    a[..., 0] = 200
    for profile in (icc, ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()):
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, "PNG", **({"icc_profile": profile} if profile else {}))
        assert load_image(buf.getvalue())[4, 4].tolist() == [200, 0, 0]
