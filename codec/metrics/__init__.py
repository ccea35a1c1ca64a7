"""Image-quality metrics used by the benchmark and the encoder: PSNR, MS-SSIM and LPIPS-alex.

All three take two uint8 ``HxWx3`` RGB arrays of the same shape and return a Python float:

* `psnr` — numpy only, over all three channels, peak 255 (``inf`` for identical images).
* `ms_ssim` — pytorch-msssim on RGB (data range 255, 11-px Gaussian window, the standard five
  scale weights). Images smaller than 161 px on a side get fewer scales with renormalised weights
  (see `codec.metrics.msssim`).
* `lpips` — LPIPS-alex v0.1 (lower is better), our own forward pass over the offline weights in
  ``$CODEC_METRICS_DIR`` or ``../shared/models/metrics``; loaded once per process and reused.

torch is imported lazily, inside the functions: importing this package is cheap. (The implementation
modules are named differently from the functions — ``lpips_alex``, ``msssim`` — so importing them
never shadows ``codec.metrics.lpips`` / ``ms_ssim``; ``codec.metrics.lpips`` as a module path is a
callable compatibility alias.) `get_lpips_model` gives the cached, differentiable ``nn.Module``
(inputs (N,3,H,W) in [0, 1]) for losses. The web
process must not use it anyway (ARCHITECTURE.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from codec.metrics.psnr import psnr

if TYPE_CHECKING:
    import numpy as np

__all__ = ["get_lpips_model", "lpips", "ms_ssim", "msssim_scales", "psnr"]


def ms_ssim(a: np.ndarray, b: np.ndarray, **options: Any) -> float:
    """MS-SSIM of two uint8 RGB images; see `codec.metrics.msssim.ms_ssim`."""
    from codec.metrics.msssim import ms_ssim as _ms_ssim

    return _ms_ssim(a, b, **options)


def msssim_scales(height: int, width: int) -> int:
    """How many MS-SSIM scales an image of this size gets (5 when both sides are ≥ 161 px)."""
    from codec.metrics.msssim import scales_for

    return scales_for(height, width)


def lpips(a: np.ndarray, b: np.ndarray, **options: Any) -> float:
    """LPIPS-alex v0.1 distance of two uint8 RGB images; see `codec.metrics.lpips_alex.lpips`."""
    from codec.metrics.lpips_alex import lpips as _lpips

    return _lpips(a, b, **options)


def get_lpips_model(device: Any = None) -> Any:
    """The process-wide LPIPS-alex ``nn.Module`` on ``device``; see `codec.metrics.lpips_alex`."""
    from codec.metrics.lpips_alex import get_lpips_model as _get

    return _get(device)
