"""PSNR, MS-SSIM and LPIPS-alex (codec.metrics) on real images and the offline LPIPS weights."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from codec.errors import ModelNotFoundError
from codec.metrics import lpips, ms_ssim, msssim_scales, psnr

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def lpips_examples() -> dict[str, np.ndarray]:
    from codec.resources import metrics_dir

    folder = metrics_dir() / "testimgs"
    if not folder.is_dir():
        pytest.fail(f"{folder} missing (LPIPS example images, see ../shared/models/metrics/README.md)")
    return {n: np.asarray(Image.open(folder / f"ex_{n}.png").convert("RGB")) for n in ("ref", "p0", "p1")}


@pytest.fixture(scope="module")
def kodak_crop(kodak_image) -> np.ndarray:
    return np.asarray(Image.open(kodak_image(3)).convert("RGB"))[100:356, 200:456]


def _noisy(img: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


def test_lpips_reproduces_reference_distances(lpips_examples):
    ex = lpips_examples
    # Upstream LPIPS v0.1 alex prints 0.721854 / 0.137506 for these pairs (README of the weights).
    assert lpips(ex["ref"], ex["p0"]) == pytest.approx(0.7219, abs=1e-3)
    assert lpips(ex["ref"], ex["p1"]) == pytest.approx(0.1375, abs=1e-3)


def test_lpips_identity_symmetry_and_monotone_in_noise(kodak_crop):
    assert lpips(kodak_crop, kodak_crop) == pytest.approx(0.0, abs=1e-6)
    slight, strong = _noisy(kodak_crop, 4), _noisy(kodak_crop, 25)
    d1 = lpips(kodak_crop, slight)
    assert d1 == pytest.approx(lpips(slight, kodak_crop), abs=1e-5)
    assert 0 < d1 < lpips(kodak_crop, strong) < 1.5


def test_lpips_module_is_differentiable_and_cached():
    import torch

    from codec.metrics.lpips_alex import get_lpips_model

    model = get_lpips_model()
    assert get_lpips_model("cpu") is model  # loaded once per process
    x = torch.rand(2, 3, 48, 40, requires_grad=True)
    d = model(x, torch.rand(2, 3, 48, 40))
    assert d.shape == (2,)
    d.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    with pytest.raises(ValueError, match="at least"):
        model(torch.rand(1, 3, 20, 64), torch.rand(1, 3, 20, 64))


def test_missing_lpips_weights_name_the_file(tmp_path, monkeypatch):
    from codec.metrics.weights import ALEX_LIN, metrics_file

    monkeypatch.setenv("CODEC_METRICS_DIR", str(tmp_path))
    monkeypatch.setenv("CODEC_NO_SHARED_FALLBACK", "1")  # the env dir comes first, ../shared after it
    with pytest.raises(ModelNotFoundError, match=r"lpips_alex_v0\.1_lin\.pth.*CODEC_METRICS_DIR"):
        metrics_file(ALEX_LIN)


def test_psnr_known_values(kodak_crop):
    assert psnr(kodak_crop, kodak_crop) == math.inf
    a = np.full((16, 16, 3), 100, np.uint8)
    b = a.copy()
    b[..., 0] += 3  # MSE = 9/3 = 3
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 3), abs=1e-9)


def test_ms_ssim_full_scale(kodak_crop):
    assert ms_ssim(kodak_crop, kodak_crop) == pytest.approx(1.0, abs=1e-6)
    slight, strong = ms_ssim(kodak_crop, _noisy(kodak_crop, 4)), ms_ssim(kodak_crop, _noisy(kodak_crop, 25))
    assert 1.0 > slight > strong > 0.3


def test_truncated_ms_ssim_matches_library_at_five_scales(kodak_crop):
    """Our reduced-scale loop is the library's loop: with all five scales both agree."""
    from pytorch_msssim import ms_ssim as lib

    from codec.metrics.msssim import _to_tensor, truncated_ms_ssim_map

    x, y = _to_tensor(kodak_crop, None), _to_tensor(_noisy(kodak_crop, 10), None)
    ours = float(truncated_ms_ssim_map(x, y, 5, data_range=255).mean())
    assert ours == pytest.approx(float(lib(x, y, data_range=255)), abs=1e-5)


SIDES = [(161, 5), (160, 4), (81, 4), (80, 3), (41, 3), (21, 2), (11, 1)]


@pytest.mark.parametrize(("side", "scales"), SIDES)
def test_ms_ssim_small_images_use_fewer_scales(kodak_crop, side, scales):
    assert msssim_scales(side, 300) == scales
    a = kodak_crop[:side, :side]
    value = ms_ssim(a, _noisy(a, 10))
    assert 0.0 < value < 1.0
    assert ms_ssim(a, a) == pytest.approx(1.0, abs=1e-6)


def test_bad_inputs_raise(kodak_crop):
    with pytest.raises(ValueError, match="too small"):
        ms_ssim(kodak_crop[:10, :10], kodak_crop[:10, :10])
    with pytest.raises(ValueError, match="shape"):
        psnr(kodak_crop, kodak_crop[:-1])
    with pytest.raises(ValueError, match="uint8"):
        lpips(kodak_crop.astype(np.float32), kodak_crop.astype(np.float32))


def test_importing_metrics_does_not_import_torch():
    code = "import sys, codec.metrics; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_package_functions_survive_submodule_imports(kodak_crop):
    """Importing the implementation modules must not replace the package's functions."""
    import codec.metrics as m
    import codec.metrics.lpips  # the compatibility module path
    from codec.metrics import lpips_alex, msssim  # noqa: F401

    assert callable(m.lpips) and callable(m.ms_ssim) and callable(m.psnr)
    noisy = _noisy(kodak_crop, 10)
    assert m.lpips(kodak_crop, noisy) == pytest.approx(lpips_alex.lpips(kodak_crop, noisy), abs=1e-7)
    assert m.get_lpips_model() is codec.metrics.lpips.get_lpips_model()
