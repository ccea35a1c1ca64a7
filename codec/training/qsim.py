"""Quantization simulation for training and evaluation of the encoder-side RDO.

The codec's quantizer (``codec.quant``) is uniform: ``levels`` reconstruction points spread evenly
over ``[lo, hi]`` (both ends included), symbols ``round((clip(z) − lo) / step)`` with
``step = (hi − lo) / (levels − 1)``. Training draws a level count per sample so one encoder serves
every rate the rate control may pick; the range stays fixed (``[-3, 3]`` by default, the TAESD latent
range).

Two relaxations of rounding:

* ``"ste"`` — straight-through: the forward pass is the exact quantizer, gradients pass as identity
  inside the range (and are zero outside, like the clip).
* ``"noise"`` — additive uniform noise of one step width (the usual training proxy of learned
  compression); smoother, but the decoder then never sees exact reconstruction points.
"""

from __future__ import annotations

import torch
from torch import Tensor

DEFAULT_LO = -3.0
DEFAULT_HI = 3.0


def _per_sample(levels: Tensor | int | float, z: Tensor) -> Tensor:
    lv = torch.as_tensor(levels, dtype=z.dtype, device=z.device)
    if lv.ndim == 0:
        lv = lv.expand(z.shape[0])
    return lv.view(-1, *([1] * (z.ndim - 1)))


def quantize_sim(
    z: Tensor,
    levels: Tensor | int,
    lo: float | Tensor = DEFAULT_LO,
    hi: float | Tensor = DEFAULT_HI,
    mode: str = "ste",
) -> Tensor:
    """Simulated quantization of latents ``z`` (N,C,h,w) at ``levels`` (scalar or one per sample).

    ``lo``/``hi`` are floats or per-channel tensors broadcastable to ``z`` (e.g. shape (1,C,1,1)).
    Returns the dequantized latents (same shape and dtype), differentiable w.r.t. ``z``.
    """
    lv = _per_sample(levels, z)
    lo_t = torch.as_tensor(lo, dtype=z.dtype, device=z.device)
    hi_t = torch.as_tensor(hi, dtype=z.dtype, device=z.device)
    step = (hi_t - lo_t) / (lv - 1)
    zc = torch.maximum(torch.minimum(z, hi_t), lo_t)
    if mode == "ste":
        q = torch.round((zc - lo_t) / step) * step + lo_t
        return zc + (q - zc).detach()
    if mode == "noise":
        noisy = zc + (torch.rand_like(zc) - 0.5) * step
        return torch.maximum(torch.minimum(noisy, hi_t), lo_t)
    raise ValueError(f"unknown quantization mode {mode!r} (use 'ste' or 'noise')")


def quantize_symbols(z: Tensor, levels: int, lo: float = DEFAULT_LO, hi: float = DEFAULT_HI) -> Tensor:
    """Exact integer symbols in ``[0, levels)`` (int64), same semantics as ``codec.quant.quantize``."""
    step = (hi - lo) / (levels - 1)
    return torch.round((z.clamp(lo, hi) - lo) / step).long()


def dequantize_symbols(sym: Tensor, levels: int, lo: float = DEFAULT_LO, hi: float = DEFAULT_HI) -> Tensor:
    """Reconstruction points of integer symbols."""
    step = (hi - lo) / (levels - 1)
    return sym.float() * step + lo
