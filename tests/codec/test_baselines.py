"""Classical codecs at a byte budget (codec.baselines): real Pillow encoders on a Kodak crop."""

from __future__ import annotations

import io
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from codec.baselines import (
    FORMATS,
    BaselineResult,
    decode_baseline,
    encode_at_budget,
    encode_once,
    largest_fitting,
)
from codec.errors import InputImageError, UsageError
from codec.metrics import psnr

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def crop(kodak_image) -> np.ndarray:
    return np.asarray(Image.open(kodak_image(23)).convert("RGB"))[128:320, 200:456]  # 256×192


def budget(rgb: np.ndarray, bpp: float) -> int:
    return int(bpp * rgb.shape[0] * rgb.shape[1] / 8)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_fits_budget_with_the_largest_quality(crop, fmt):
    max_bytes = budget(crop, 0.6)  # a budget every format reaches on this crop
    r = encode_at_budget(crop, fmt, max_bytes)
    assert r.fits and r.fmt == fmt and (r.width, r.height, r.scale) == (256, 192, 1.0)
    assert 0 < len(r.data) <= max_bytes
    # the search is exact: one quality step more would be over budget (or it is the top quality)
    if r.quality < FORMATS[fmt].q_max:
        assert len(encode_once(Image.fromarray(crop), fmt, r.quality + 1)) > max_bytes
    assert r.encode_s >= r.final_encode_s > 0 and r.trials >= 1
    out = decode_baseline(r.data)
    assert out.shape == crop.shape and out.dtype == np.uint8
    assert psnr(crop, out) > 24


def test_too_small_budget_says_so(crop):
    r = encode_at_budget(crop, "jpeg", 300)
    assert not r.fits
    assert len(r.data) > 300 and r.quality == FORMATS["jpeg"].q_min
    assert "does not fit" in r.note and "300 B" in r.note


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
def test_downscale_mode_shrinks_until_the_floor_fits(crop, fmt):
    max_bytes = 1200  # far below full-size JPEG/WebP at quality 30
    r = encode_at_budget(crop, fmt, max_bytes, mode="downscale")
    assert r.fits and r.downscaled and len(r.data) <= max_bytes
    assert r.quality >= FORMATS[fmt].downscale_min_quality
    assert r.width < 256 and r.height < 192 and r.scale == pytest.approx(r.width / 256)
    assert abs(r.width / r.height - 256 / 192) < 0.05
    assert f"downscaled to {r.width}×{r.height}" in r.note
    with Image.open(io.BytesIO(r.data)) as im:
        assert im.size == (r.width, r.height)
    back = decode_baseline(r)  # upscaled to the original size for metrics
    assert back.shape == crop.shape
    assert psnr(crop, back) > 18


def test_downscale_mode_keeps_full_size_when_it_fits(crop):
    r = encode_at_budget(crop, "jpeg", budget(crop, 2.0), mode="downscale")
    assert r.fits and not r.downscaled and r.quality > FORMATS["jpeg"].downscale_min_quality


def test_downscale_mode_gives_up_below_container_overhead(crop):
    r = encode_at_budget(crop, "jpeg", 60, mode="downscale")
    assert not r.fits and "does not fit" in r.note


def test_accepts_pil_images_and_rejects_bad_input(crop):
    r = encode_at_budget(Image.fromarray(crop).convert("RGBA"), "webp", budget(crop, 1.0))
    assert isinstance(r, BaselineResult) and r.fits
    with pytest.raises(UsageError):
        encode_at_budget(crop, "gif", 1000)
    with pytest.raises(UsageError):
        encode_at_budget(crop, "jpeg", 1000, mode="zoom")
    with pytest.raises(InputImageError):
        encode_at_budget(crop[..., :2], "jpeg", 1000)
    with pytest.raises(InputImageError):
        decode_baseline(b"\xff\xd8 definitely not a jpeg")


def test_largest_fitting_agrees_with_brute_force():
    rng = random.Random(5)
    for _ in range(300):
        lo, hi = rng.choice([(0, 100), (1, 95), (8, 767)])
        base, growth = rng.uniform(50, 5000), rng.uniform(0.005, 0.3)
        steps = [0]
        for _x in range(hi - lo):
            steps.append(steps[-1] + rng.choice([0, 1, 1, 2, 5]))  # monotone, with plateaus and jumps
        calls = []

        def size_of(x, base=base, growth=growth, steps=steps, calls=calls, lo=lo):
            calls.append(x)
            return int(base * np.exp(growth * steps[x - lo] / 3))

        budget_ = rng.randint(10, 20000)
        want = max((x for x in range(lo, hi + 1) if size_of(x) <= budget_), default=None)
        calls.clear()
        got = largest_fitting(lo, hi, size_of, budget_, first=rng.randint(lo, hi), slope=0.06)
        assert got == want
        assert len(calls) <= 2 * (hi - lo).bit_length() + 2


def test_baselines_do_not_import_torch():
    code = "import sys, codec.baselines; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_options_replace_the_format_settings(crop):
    """``options`` (the residual layer's 4:4:4 AVIF) change the file, and the search still fits it."""
    img = Image.fromarray(crop)
    plain, full_chroma = encode_once(img, "avif", 40), encode_once(img, "avif", 40, {"subsampling": "4:4:4"})
    assert plain != full_chroma
    budget = len(full_chroma) + 50
    r = encode_at_budget(crop, "avif", budget, options={"subsampling": "4:4:4"})
    assert r.fits and len(r.data) <= budget and r.quality >= 40
    assert decode_baseline(r).shape == crop.shape
