"""The cheap path for images without fine detail (`codec.encoder.flat`, issue 10)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image, ImageDraw

import codec
from codec.container.header import parse
from codec.encoder.flat import low_detail_scale


def _gradient(n: int) -> np.ndarray:
    x = np.linspace(0, 255, n)
    planes = [np.tile(x, (n, 1)), np.tile(x[:, None], (1, n)), np.full((n, n), 128.0)]
    return np.stack(planes, -1).astype(np.uint8)


def test_flat_and_smooth_images_get_a_small_scale() -> None:
    assert low_detail_scale(np.zeros((1024, 1024, 3), np.uint8)) == 256 / 1024
    assert low_detail_scale(_gradient(1024)) == 256 / 1024
    # too small to gain anything: the normal ladder already goes down to 1/4
    assert low_detail_scale(np.zeros((400, 300, 3), np.uint8)) is None


def test_detail_keeps_the_normal_path() -> None:
    page = Image.new("RGB", (1024, 768), "white")
    ImageDraw.Draw(page).text((500, 380), "one small line of text", fill="black")
    assert low_detail_scale(np.asarray(page)) is None
    noise = np.random.default_rng(0).integers(0, 256, (1024, 1024, 3), dtype=np.uint8)
    assert low_detail_scale(noise) is None


@pytest.mark.timeout(300)
def test_flat_megapixel_encodes_fast_and_exactly() -> None:
    """A 1 MP flat image took 118 s (3 encoder scales of tiles + guard decodes); now one 256² pass."""
    codec.encode(np.zeros((64, 64, 3), np.uint8), bpp=0.5, effort="fast")  # model load outside timing
    img = np.full((1024, 1024, 3), (40, 90, 200), np.uint8)
    start = time.perf_counter()
    data = codec.encode(img, bpp=0.15, effort="fast")
    elapsed = time.perf_counter() - start
    header, _ = parse(data)
    assert (header.coded_width, header.coded_height) == (256, 256)
    assert header.fidelity_floor_met
    out = np.asarray(codec.decode(data))
    assert out.shape == img.shape
    # TAESD itself reproduces this saturated colour with a mean error of ≈ 5 (max ≈ 39 at the borders)
    # at full resolution too; the cheap path must not be worse than that
    assert np.abs(out.astype(int) - img).mean() < 8
    assert elapsed < 60, f"flat 1 MP encode took {elapsed:.1f} s"
