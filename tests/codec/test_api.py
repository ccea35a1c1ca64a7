"""End-to-end codec API on real Kodak images with the real TAESD weights."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import codec
from codec.errors import BitstreamError, BudgetError, UsageError
from codec.metrics import psnr


@pytest.fixture(scope="module")
def kodak_crop(kodak_image) -> np.ndarray:
    """A 256×192 crop of kodim23 (parrots): real photo content, cheap to code."""
    rgb = np.asarray(Image.open(kodak_image(23)).convert("RGB"))
    return np.ascontiguousarray(rgb[160:352, 256:512])


@pytest.mark.parametrize("bpp", [0.05, 0.15])
def test_budget_is_never_exceeded_and_quality_has_a_floor(kodak_crop: np.ndarray, bpp: float) -> None:
    h, w = kodak_crop.shape[:2]
    data = codec.encode(kodak_crop, bpp=bpp, effort="fast", min_fidelity=0)
    assert len(data) <= int(bpp * w * h / 8)
    out = np.asarray(codec.decode(data))
    assert out.shape == kodak_crop.shape
    assert psnr(kodak_crop, out) > (19.0 if bpp < 0.1 else 21.0)


def test_full_kodak_image_default_effort_round_trip(kodak_image) -> None:
    rgb = codec.load_image(kodak_image(1))
    data = codec.encode(kodak_image(1), bpp=0.15, effort="default")
    assert len(data) <= int(0.15 * 768 * 512 / 8)
    meta = codec.info(data)
    assert (meta["width"], meta["height"]) == (768, 512)
    assert meta["bytes"] == len(data)
    out = np.asarray(codec.decode(data))
    assert out.shape == rgb.shape
    assert psnr(rgb, out) > 20.0


def test_quality_mode_monotone_in_size(kodak_crop: np.ndarray) -> None:
    low = codec.encode(kodak_crop, quality=10, effort="fast", min_fidelity=0)
    high = codec.encode(kodak_crop, quality=95, effort="fast", min_fidelity=0)
    assert len(low) < len(high)


def test_decode_is_deterministic(kodak_crop: np.ndarray) -> None:
    data = codec.encode(kodak_crop, quality=60, effort="fast", min_fidelity=0)
    a = np.asarray(codec.decode(data))
    b = np.asarray(codec.decode(data))
    assert np.array_equal(a, b)


@pytest.mark.parametrize("size", [(1, 1), (13, 7), (100, 37)])
def test_any_input_size_round_trips_to_the_same_size(size: tuple[int, int]) -> None:
    w, h = size
    rgb = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
    data = codec.encode(rgb, quality=50, effort="fast", min_fidelity=0)
    assert codec.decode(data).size == (w, h)


@pytest.mark.parametrize("size", [(1, 1), (10, 10), (31, 20), (300, 12)])
def test_photos_smaller_than_the_metrics_encode_at_every_effort(size: tuple[int, int]) -> None:
    """Below 32 px a side LPIPS (and below 11 px MS-SSIM) is undefined; the encoder's measured choices
    score a magnified view instead, and effort max skips its refinement — no ValueError from a metric."""
    w, h = size
    rgb = np.random.default_rng(1).integers(0, 255, (h, w, 3), dtype=np.uint8)
    for kwargs in ({"max_bytes": 400}, {"max_bytes": 400, "effort": "max"},
                   {"target": "faithful", "base_bytes": 150, "max_bytes": 400}):
        data = codec.encode(rgb, **kwargs)
        assert len(data) <= 400 and codec.decode(data).size == (w, h), kwargs


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "CMYK", "I;16"])
def test_every_input_mode_encodes(kodak_crop: np.ndarray, mode: str) -> None:
    img = Image.fromarray(kodak_crop[:64, :64])
    if mode == "I;16":
        wide = np.asarray(img.convert("L")).astype("<u2") * 257
        img = Image.frombytes("I;16", img.size, wide.tobytes())
    else:
        img = img.convert(mode)
    buf = io.BytesIO()
    img.save(buf, "TIFF" if mode == "CMYK" else "PNG")
    data = codec.encode(buf.getvalue(), quality=50, effort="fast", min_fidelity=0)
    assert codec.decode(data).size == (64, 64)


def test_conflicting_rate_options_are_rejected(kodak_crop: np.ndarray) -> None:
    with pytest.raises(UsageError):
        codec.encode(kodak_crop, quality=50, max_bytes=1000)
    with pytest.raises(UsageError):
        codec.encode(kodak_crop, effort="turbo")


def test_impossible_budget_is_a_budget_error(kodak_crop: np.ndarray) -> None:
    with pytest.raises(BudgetError):
        codec.encode(kodak_crop, max_bytes=10, effort="fast", min_fidelity=0)


def test_info_does_not_need_torch_and_rejects_garbage(tmp_path) -> None:
    """In a fresh process (this one has torch loaded already): `codec.info` of a real file works, garbage
    is a BitstreamError, bytes-likes only — and torch is never imported on the way."""
    import subprocess
    import sys
    from pathlib import Path

    stream = codec.encode(np.full((40, 56, 3), 90, np.uint8), max_bytes=400, effort="fast", min_fidelity=0)
    (tmp_path / "s.bin").write_bytes(stream)
    code = (
        "import sys, pathlib, codec\n"
        f"meta = codec.info(pathlib.Path({str(tmp_path / 's.bin')!r}).read_bytes())\n"
        "assert (meta['width'], meta['height'], meta['model']) == (56, 40, 'taesd'), meta\n"
        "for bad in (b'not a bitstream at all', b''):\n"
        "    try:\n"
        "        codec.info(bad)\n"
        "    except codec.BitstreamError:\n"
        "        pass\n"
        "    else:\n"
        "        sys.exit('garbage accepted')\n"
        "try:\n"
        "    codec.info('a str')\n"
        "except codec.UsageError:\n"
        "    pass\n"
        "else:\n"
        "    sys.exit('a str accepted')\n"
        "sys.exit('torch imported' if 'torch' in sys.modules else 0)\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_decode_pixel_limit_refuses_tiny_streams_claiming_huge_images() -> None:
    """A 35-byte valid stream of a flat 4096² latent: refused from the header under the caller's limit."""
    import time
    from pathlib import Path

    corpus = Path(__file__).parent / "corpus"
    bomb = (corpus / "fuzz_decode_bomb_4096px_from_ctx.bin").read_bytes()
    assert len(bomb) < 64 and codec.info(bomb)["width"] == 4096
    t0 = time.perf_counter()
    with pytest.raises(BitstreamError, match="limit"):
        codec.decode(bomb, max_pixels=4_000_000)
    assert time.perf_counter() - t0 < 1.0  # refused before any entropy decoding or model work
    with pytest.raises(BitstreamError, match="limit"):  # 100 MP: over the library default (50 MP)
        codec.decode((corpus / "fuzz_decode_bomb_10000px_from_lzma.bin").read_bytes())
    with pytest.raises(UsageError):
        codec.decode(bomb, max_pixels=0)
