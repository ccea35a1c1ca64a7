"""MS-SSIM via pytorch-msssim, with an honest reduction for small images.

Standard MS-SSIM (Wang et al. 2003, as in pytorch-msssim and CompressAI) uses five scales with
weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333) and an 11-px Gaussian window; the coarsest scale
needs the shorter side to be > (11 − 1)·2⁴ = 160 px, and pytorch-msssim asserts that.

For smaller images we do not pad or change the window (which would silently change the metric):
we use the largest number of scales L that still fits (shorter side > 10·2^(L−1): 81–160 px → 4,
41–80 → 3, 21–40 → 2, 11–20 → 1) and the first L weights renormalised to sum to 1 — the usual
convention for truncated MS-SSIM. With L = 1 this is plain SSIM. Below 11 px it raises ValueError.
The numbers are therefore only comparable between images that got the same number of scales;
`scales_for` tells which one an image gets.
"""

from __future__ import annotations

import numpy as np

from codec.metrics._check import check_pair

WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WIN_SIZE = 11


def scales_for(height: int, width: int) -> int:
    """Number of MS-SSIM scales for an image of this size (0 if too small for any)."""
    side = min(height, width)
    for levels in range(len(WEIGHTS), 0, -1):
        if side > (WIN_SIZE - 1) * 2 ** (levels - 1):
            return levels
    return 0


def _to_tensor(x: np.ndarray, device: str | None):
    import torch

    t = torch.tensor(np.asarray(x), device=device or "cpu")
    return t.permute(2, 0, 1).unsqueeze(0).float()


def ms_ssim(a: np.ndarray, b: np.ndarray, *, device: str | None = None) -> float:
    """MS-SSIM of two uint8 RGB images (1 = identical), on RGB with data range 255."""
    import torch
    from pytorch_msssim import ms_ssim as _lib_ms_ssim

    a, b = check_pair(a, b)
    levels = scales_for(a.shape[0], a.shape[1])
    if levels == 0:
        raise ValueError(f"image {a.shape[1]}x{a.shape[0]} is too small for (MS-)SSIM (needs ≥ 11 px a side)")
    with torch.no_grad():
        x, y = _to_tensor(a, device), _to_tensor(b, device)
        if levels == len(WEIGHTS):
            return float(_lib_ms_ssim(x, y, data_range=255, win_size=WIN_SIZE))
        return float(truncated_ms_ssim_map(x, y, levels, data_range=255).mean())


def truncated_ms_ssim_map(x, y, levels: int, *, data_range: float, eps: float = 0.0):
    """pytorch-msssim's MS-SSIM loop with ``levels`` ≤ 5 scales (its public function hard-codes 5).

    ``x``, ``y``: (N, C, H, W) tensors; returns the (N, C) per-image, per-channel values (differentiable).
    ``eps`` > 0 floors each scale's term before the weighted product (finite gradients in a loss).
    """
    import torch
    import torch.nn.functional as F
    from pytorch_msssim.ssim import _fspecial_gauss_1d, _ssim

    weights = torch.tensor(WEIGHTS[:levels], dtype=x.dtype, device=x.device)
    weights = weights / weights.sum()
    win = _fspecial_gauss_1d(WIN_SIZE, 1.5).to(x.device).repeat([x.shape[1], 1, 1, 1])
    mcs = []
    for i in range(levels):
        ssim_per_channel, cs = _ssim(x, y, data_range=data_range, win=win, size_average=False)
        if i < levels - 1:
            mcs.append(torch.relu(cs))
            padding = [s % 2 for s in x.shape[2:]]
            x = F.avg_pool2d(x, kernel_size=2, padding=padding)
            y = F.avg_pool2d(y, kernel_size=2, padding=padding)
    stack = torch.stack([*mcs, torch.relu(ssim_per_channel)], dim=0)
    if eps > 0:
        stack = stack.clamp_min(eps)
    return torch.prod(stack ** weights.view(-1, 1, 1), dim=0)
