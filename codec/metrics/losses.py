"""Differentiable distortion losses of the encoder side: RDO (`codec.encoder.rdo`) and the training of
the tuned encoder (`codec.tools.training`). Images are (N, 3, H, W) float in [0, 1]."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from pytorch_msssim import ms_ssim
from torch import Tensor

from codec.metrics.lpips_alex import get_lpips_model
from codec.metrics.msssim import scales_for, truncated_ms_ssim_map


@dataclass(frozen=True)
class LossWeights:
    """Weights of the distortion terms: mse·MSE + msssim·(1−MS-SSIM) + lpips·LPIPS (images in [0,1])."""

    mse: float = 1.0
    msssim: float = 0.1
    lpips: float = 0.05



def ms_ssim_loss(x: Tensor, y: Tensor) -> Tensor:
    """Per-sample 1 − MS-SSIM (data range 1, 11-px window), differentiable.

    Five scales (pytorch-msssim) when the shorter side is > 160 px; below that the largest number
    of scales that fits with the first weights renormalised (as `codec.metrics.msssim` does), so
    small training crops get a multi-scale loss too. Raises ValueError below 11 px.
    """
    scales = scales_for(*x.shape[-2:])
    if scales == 0:
        raise ValueError(f"MS-SSIM needs images of at least 11 px a side, got {min(x.shape[-2:])}")
    # Always float32, even inside a bfloat16 autocast region: SSIM's variance terms cancel badly.
    with torch.autocast(x.device.type, enabled=False):
        x, y = x.float(), y.float()
        if scales == 5:
            return 1.0 - ms_ssim(x, y, data_range=1.0, size_average=False)
        return 1.0 - truncated_ms_ssim_map(x, y, scales, data_range=1.0, eps=1e-6).mean(dim=1)


class RdoLoss:
    """Distortion loss for RDO and for training the tuned encoder (per-sample, shape (N,))."""

    def __init__(self, weights: LossWeights = LossWeights(), device: Any = "cpu") -> None:
        self.weights = weights
        self.lpips_net = None
        if weights.lpips:
            self.lpips_net = get_lpips_model(device)

    def terms(self, recon: Tensor, target: Tensor) -> dict[str, Tensor]:
        """Each term per sample; ``recon`` is clamped to [0, 1] here (as the codec's output is)."""
        recon = recon.float().clamp(0.0, 1.0)
        target = target.float()
        out = {"mse": (recon - target).pow(2).mean(dim=(1, 2, 3))}
        if self.weights.msssim:
            out["msssim"] = ms_ssim_loss(recon, target)
        if self.lpips_net is not None:
            out["lpips"] = self.lpips_net(recon, target).float()
        return out

    def __call__(self, recon: Tensor, target: Tensor) -> Tensor:
        t = self.terms(recon, target)
        w = self.weights
        total = w.mse * t["mse"]
        if "msssim" in t:
            total = total + w.msssim * t["msssim"]
        if "lpips" in t:
            total = total + w.lpips * t["lpips"]
        return total
