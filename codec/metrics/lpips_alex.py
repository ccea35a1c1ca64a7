"""LPIPS-alex v0.1 (Zhang et al. 2018) from offline weights, without torchvision or the lpips package.

The network is the upstream one written out by hand: inputs in [-1, 1] are shifted/scaled per
channel, AlexNet's five conv+ReLU stages give five feature maps, each is unit-normalised along the
channels, the squared difference goes through the learned 1×1 "lin" layer (no bias), is averaged
over space, and the five numbers are summed. Weights: see ``../shared/models/metrics/README.md``.
The reference images there give 0.7219 and 0.1375 (upstream 0.721854 / 0.137506).

`LpipsAlex` is an ``nn.Module`` (differentiable, for losses); `lpips()` is the uint8 convenience.
`get_lpips_model()` loads the weights once per process and device and returns the cached module.
"""

from __future__ import annotations

import threading

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from codec.metrics._check import check_pair
from codec.metrics.weights import ALEX_FEATURES, ALEX_LIN, metrics_file

# LPIPS ScalingLayer constants (applied to inputs in [-1, 1]).
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
# (features index, stride, padding, max-pool before this conv)
_ALEX_CONVS = ((0, 4, 2, False), (3, 1, 2, True), (6, 1, 1, True), (8, 1, 1, False), (10, 1, 1, False))
MIN_SIDE = 32  # smaller inputs vanish inside AlexNet's stride-4 conv and two 3×3/2 max-pools


class LpipsAlex(nn.Module):
    """LPIPS-alex v0.1. ``forward(x, y)`` takes (N,3,H,W) tensors in [0, 1] and returns (N,) distances."""

    def __init__(self, features: dict[str, Tensor], lin: dict[str, Tensor]) -> None:
        super().__init__()
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1))
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.lins = nn.ParameterList()
        for k, (idx, *_rest) in enumerate(_ALEX_CONVS):
            self.weights.append(nn.Parameter(features[f"features.{idx}.weight"].float(), requires_grad=False))
            self.biases.append(nn.Parameter(features[f"features.{idx}.bias"].float(), requires_grad=False))
            self.lins.append(nn.Parameter(lin[f"lin{k}.model.1.weight"].float(), requires_grad=False))

    def features(self, x: Tensor) -> list[Tensor]:
        """The five AlexNet ReLU feature maps for an image in [0, 1]."""
        h = ((x * 2.0 - 1.0) - self.shift) / self.scale
        out = []
        for k, (_idx, stride, pad, pool) in enumerate(_ALEX_CONVS):
            if pool:
                h = F.max_pool2d(h, kernel_size=3, stride=2)
            h = F.relu(F.conv2d(h, self.weights[k], self.biases[k], stride=stride, padding=pad))
            out.append(h)
        return out

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        if x.shape != y.shape or x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"LPIPS needs two (N,3,H,W) tensors of one shape, got {x.shape} / {y.shape}")
        if min(x.shape[-2:]) < MIN_SIDE:
            side = tuple(x.shape[-2:])
            raise ValueError(f"LPIPS-alex needs images of at least {MIN_SIDE} px a side, got {side}")
        total = x.new_zeros(x.shape[0])
        for k, (fx, fy) in enumerate(zip(self.features(x), self.features(y), strict=True)):
            nx = fx / (torch.sqrt(torch.sum(fx * fx, dim=1, keepdim=True)) + 1e-10)
            ny = fy / (torch.sqrt(torch.sum(fy * fy, dim=1, keepdim=True)) + 1e-10)
            total = total + F.conv2d((nx - ny) ** 2, self.lins[k]).mean(dim=(1, 2, 3))
        return total


_CACHE: dict[str, LpipsAlex] = {}
_LOCK = threading.Lock()


def get_lpips_model(device: str | torch.device | None = None) -> LpipsAlex:
    """The process-wide LPIPS-alex module on ``device`` (CPU by default), loaded on first use."""
    dev = torch.device(device or "cpu")
    key = str(dev)
    with _LOCK:
        model = _CACHE.get(key)
        if model is None:
            features = torch.load(metrics_file(ALEX_FEATURES), map_location="cpu", weights_only=True)
            lin = torch.load(metrics_file(ALEX_LIN), map_location="cpu", weights_only=True)
            model = LpipsAlex(features, lin).to(dev).eval()
            _CACHE[key] = model
    return model


def to_unit_tensor(x: np.ndarray, device: str | torch.device | None = None) -> Tensor:
    """uint8 HxWx3 → (1,3,H,W) float32 in [0, 1]."""
    t = torch.tensor(np.asarray(x), device=device or "cpu")
    return t.permute(2, 0, 1).unsqueeze(0).float() / 255.0


def lpips(a: np.ndarray, b: np.ndarray, *, device: str | None = None) -> float:
    """LPIPS-alex v0.1 distance between two uint8 RGB images (0 = identical, lower is better)."""
    a, b = check_pair(a, b)
    model = get_lpips_model(device)
    dev = model.shift.device
    with torch.no_grad():
        return float(model(to_unit_tensor(a, dev), to_unit_tensor(b, dev))[0])
