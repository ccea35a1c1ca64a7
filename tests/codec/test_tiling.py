"""Tiled vs whole-image encode/decode with the real TAESD weights on a Kodak crop."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from codec import weights
from codec.imageio import load_image
from codec.models import get_model
from codec.tiling import TilingConfig, _spans, decode_latent, encode_image


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


@pytest.fixture(scope="module")
def crop() -> np.ndarray:
    try:
        path = weights.kodak_dir() / "kodim23.png"
    except Exception as exc:  # pragma: no cover
        pytest.skip(str(exc))
    return load_image(path)[128:384, 256:512]  # 256x256


def test_spans_cover_exactly() -> None:
    for length in (1, 7, 64, 65, 500, 751):
        for core in (1, 16, 64, 128):
            spans = _spans(length, core)
            assert spans[0][0] == 0 and spans[-1][1] == length
            assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
            assert all(0 < e - s <= core for s, e in spans)


def test_small_tiles_match_whole_image(crop: np.ndarray) -> None:
    """2x2 tiles of 128 px with a 64 px margin on a 256x256 Kodak crop.

    Measured: whole 26.78 dB, tiled 26.79 dB vs the original; tiled vs whole 44.0 dB (a 128 px margin
    makes them identical on this crop).
    """
    m = get_model("taesd", device="cpu")
    z_whole = encode_image(m, crop, tiled=False)
    y_whole = decode_latent(m, z_whole, tiled=False)
    cfg = TilingConfig(tile=128, margin=64)
    z_tiled = encode_image(m, crop, config=cfg, tiled=True)
    y_tiled = decode_latent(m, z_tiled, config=cfg, tiled=True)
    assert z_tiled.shape == z_whole.shape == (4, 32, 32)
    assert y_tiled.shape == y_whole.shape == (256, 256, 3)
    assert _psnr(y_tiled, y_whole) >= 40.0
    assert abs(_psnr(y_tiled, crop) - _psnr(y_whole, crop)) < 0.1
    assert _psnr(y_whole, crop) >= 25.0
    # no seam: the error along the tile border (column/row 128) is no worse than elsewhere
    diff = np.abs(y_tiled.astype(int) - y_whole).max(axis=2)
    seam = max(diff[:, 124:132].mean(), diff[124:132, :].mean())
    assert seam <= 3 * max(diff.mean(), 0.05)


def test_automatic_choice_and_odd_sizes(crop: np.ndarray) -> None:
    m = get_model("taesd", device="cpu")
    img = np.ascontiguousarray(crop[:61, :101])  # not multiples of 8
    small = TilingConfig(max_whole_pixels=50 * 50, tile=64, margin=16)
    z_auto = encode_image(m, img, config=small)  # automatic → tiled
    z_tiled = encode_image(m, img, config=small, tiled=True)
    np.testing.assert_array_equal(z_auto, z_tiled)
    assert z_auto.shape == (4, 8, 13)
    y = decode_latent(m, z_auto, config=small)
    assert y.shape == (64, 104, 3) and y.dtype == np.uint8
    assert _psnr(y[:61, :101], img) > 20.0


def test_a_model_may_bring_its_own_decode_tiles(crop: np.ndarray) -> None:
    """``decode_latent`` without a config uses the model's ``decode_tiling`` (the OpenVINO engine: smaller
    tiles bound the buffers it keeps), and the default tiles otherwise."""
    from codec.models.onnx_runtime import ENGINE_DECODE_TILING, OnnxAutoencoder
    from codec.tiling import DEFAULT_TILING

    assert OnnxAutoencoder.decode_tiling is ENGINE_DECODE_TILING
    assert ENGINE_DECODE_TILING.tile < DEFAULT_TILING.tile
    m = get_model("taesd", device="cpu")
    z = encode_image(m, crop, tiled=False)
    passes: list[tuple[int, ...]] = []

    class Recording:
        latent_channels, downscale = m.latent_channels, m.downscale
        decode_tiling = TilingConfig(max_whole_pixels=64 * 64, tile=128, margin=32)

        def decode(self, t):
            passes.append(tuple(t.shape))
            return m.decode(t)

    y = decode_latent(Recording(), z)
    assert len(passes) == 4 and y.shape == (256, 256, 3)  # 2 × 2 tiles of the model's own config
    assert getattr(m, "decode_tiling", None) is None  # torch: the default config


def test_bad_inputs() -> None:
    m = get_model("taesd", device="cpu")
    with pytest.raises(ValueError):
        encode_image(m, np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError):
        decode_latent(m, np.zeros((16, 2, 2), np.float32))
