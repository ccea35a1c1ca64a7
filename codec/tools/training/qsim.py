"""Quantization simulation for training the tuned encoder, with `codec.quant`'s semantics.

`codec.quant`: ``levels`` reconstruction points spread evenly over a per-channel range ``[lo, hi]``
(both ends included), in the raw or the tanh-companded domain; by default (``params_for_latent``)
the range is the latent's own 0.2 % / 99.8 % quantiles per channel, stored as float16. Training
reproduces that per sample: the range of each sample and channel comes from its (detached) latent,
and the level count is drawn per sample so one encoder serves every rate the rate control may pick.
``range_mode="fixed"`` uses one fixed range (``[-3, 3]``) instead.

Two relaxations of rounding:

* ``"ste"`` — straight-through: the forward pass is the exact quantizer, gradients pass as identity
  inside the range (zero outside, like the clip).
* ``"noise"`` — additive uniform noise of one step width (the usual training proxy of learned
  compression); smoother, but the decoder then never sees exact reconstruction points.
"""

from __future__ import annotations

import torch
from torch import Tensor

from codec.quant import CLAMP, DEFAULT_QUANTILE, TANH_LIMIT

FIXED_RANGE = (-3.0, 3.0)


def compand(z: Tensor, domain: str) -> Tensor:
    return CLAMP * torch.tanh(z / CLAMP) if domain == "tanh" else z


def expand(u: Tensor, domain: str) -> Tensor:
    return CLAMP * torch.atanh(u / CLAMP) if domain == "tanh" else u


def sample_range(
    z: Tensor, range_mode: str = "quantile", domain: str = "raw", quantile: float = DEFAULT_QUANTILE
) -> tuple[Tensor, Tensor]:
    """Per-sample, per-channel (lo, hi) of shape (N, C, 1, 1) in the quantizer domain (no gradient)."""
    n, c = z.shape[:2]
    if range_mode == "fixed":
        lo = torch.full((n, c, 1, 1), FIXED_RANGE[0], dtype=z.dtype, device=z.device)
        return lo, torch.full_like(lo, FIXED_RANGE[1])
    if range_mode != "quantile":
        raise ValueError(f"unknown range mode {range_mode!r} (use 'quantile' or 'fixed')")
    u = compand(z.detach().float(), domain).reshape(n, c, -1)
    q = torch.tensor([quantile, 1.0 - quantile], device=z.device)
    lo, hi = torch.quantile(u, q, dim=2)  # each (N, C)
    if domain == "tanh":
        lo, hi = lo.clamp(-TANH_LIMIT, TANH_LIMIT), hi.clamp(-TANH_LIMIT, TANH_LIMIT)
    hi = torch.maximum(hi, lo + 1e-2)
    # the bitstream stores the range as float16: quantize with what the decoder will read
    lo, hi = lo.half().float(), hi.half().float()
    return lo.view(n, c, 1, 1).to(z.dtype), hi.view(n, c, 1, 1).to(z.dtype)


def quantize_sim(
    z: Tensor,
    levels: Tensor | int,
    lo: Tensor,
    hi: Tensor,
    mode: str = "ste",
    domain: str = "raw",
) -> Tensor:
    """Simulated quantization of latents ``z`` (N,C,h,w) at ``levels`` (scalar or one per sample).

    ``lo``/``hi``: ranges broadcastable to ``z`` (e.g. from `sample_range`), in the quantizer domain.
    Returns the dequantized latents, differentiable w.r.t. ``z``.
    """
    lv = torch.as_tensor(levels, dtype=z.dtype, device=z.device)
    lv = (lv.expand(z.shape[0]) if lv.ndim == 0 else lv).view(-1, 1, 1, 1)
    step = (hi - lo) / (lv - 1)
    u = compand(z, domain)
    uc = torch.maximum(torch.minimum(u, hi), lo)
    if mode == "ste":
        uq = uc + (torch.round((uc - lo) / step) * step + lo - uc).detach()
    elif mode == "noise":
        uq = torch.maximum(torch.minimum(uc + (torch.rand_like(uc) - 0.5) * step, hi), lo)
    else:
        raise ValueError(f"unknown quantization mode {mode!r} (use 'ste' or 'noise')")
    return expand(uq, domain)
