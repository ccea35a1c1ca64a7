"""Encoder-side rate–distortion optimisation (RDO) at three effort levels.

The decoder is never changed: every route below produces latents for the *stock* decoder of the
model, so any standard TAESD decoder still decodes the bitstream. What changes is how the encoder
side picks the latents that get quantized.

* ``fast`` — the stock encoder, nothing else (one encoder pass).
* ``default`` — amortised RDO: a fine-tuned copy of the stock encoder (weights in ``codec/zoo/``,
  loaded on top of the stock encoder) that was trained, against the frozen stock decoder, to emit
  latents that survive uniform quantization at 6..16 levels. Still one encoder pass, so it costs the
  same as ``fast`` (≈ 2 s for 768×512 on 2 CPU cores). Models without zoo weights fall back to the
  stock encoder. See ``codec/zoo/README.md`` for how the weights were made.
* ``max`` — iterative RDO: straight-through-rounding Adam steps on the latent through the frozen
  decoder, loss MSE + a·(1−MS-SSIM) + b·LPIPS (`RdoLoss`), started from the ``default`` latent.
  Each step is one decoder forward+backward at full resolution (≈ 4 s for 768×512 on 2 CPU cores,
  a few ms on a GPU): meant for a GPU, merely slow on a CPU. The best iterate (by loss at the
  quantized point) is returned.

API (used by `codec.encoder.session`)::

    get_encoder(effort: str, model: LatentAutoencoder) -> Callable[[Tensor], Tensor]
        # image (N,3,H,W) float in [0,1], H,W multiples of 8 → latent (N,C,H/8,W/8) float32
    refine_latent(model, image, qp, effort, *, steps=None, time_budget_s=None,
                  lr=None, loss=None, latent=None) -> Tensor  # (1,C,h,w) float32
        # image (1,3,H,W) in [0,1]; qp: QuantParams (levels, per-channel lo/hi) the latent will be
        # quantized with. ``latent`` = an already computed encoder output to start from (skips a pass).

``refine_latent`` is what the encoder calls; ``get_encoder`` is exposed so rate control can encode
once and quantize at several settings. For ``fast``/``default`` the quantizer settings do not change
the result (one network serves all of them), so the session may encode once and search ``qp`` freely;
for ``max`` the result depends on ``qp``: run it once, at the final settings.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from codec.errors import UsageError
from codec.imageio import to_uint8
from codec.metrics.losses import RdoLoss
from codec.models import deltas
from codec.models.base import LatentAutoencoder
from codec.models.specs import tuned_encoder_path
from codec.options import check_effort
from codec.quant import QuantParams, quantize_ste
from codec.tiling import encode_image, tile_boxes

MAX_DEFAULT_STEPS = 100
MAX_DEFAULT_LR = 0.02
#: images up to this many pixels are refined in one piece; larger ones in tiles (bounded memory)
REFINE_MAX_WHOLE = 1_200_000
#: images (as coded) with a side below this are not refined: the loss's LPIPS needs 32 px a side
REFINE_MIN_SIDE = 32
REFINE_TILE = 768  # core of a refinement tile (px)
REFINE_MARGIN = 64  # fixed context around it (px)


# --------------------------------------------------------------------------- quantizer bridge


def check_qp(qp: QuantParams, channels: int) -> QuantParams:
    """``qp`` if it fits ``channels`` latent channels, else UsageError."""
    if getattr(qp, "channels", None) != channels:
        raise UsageError(f"quantizer settings do not fit {channels} latent channels: {qp!r}")
    return qp


# --------------------------------------------------------------------------- tuned encoder


class SequentialEncoder:
    """An image→latent callable around a plain sequential TAESD encoder stack (input in [0, 1])."""

    def __init__(self, layers: torch.nn.Module, device: torch.device, dtype: torch.dtype) -> None:
        self.layers, self.device, self.dtype = layers, device, dtype

    def __call__(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            x = x.to(device=self.device, dtype=self.dtype)
            return self.layers(x).float()


def zoo_path(model_name: str) -> Path | None:
    """The zoo weight file for ``model_name`` if one is shipped, else None (`codec.models.specs`)."""
    return tuned_encoder_path(model_name)


def stock_encoder_layers(model: LatentAutoencoder) -> torch.nn.Module:
    """The stock encoder's ``nn.Sequential`` (image in [0,1] → latent) of a TAESD-family model."""
    ae = getattr(model, "ae", None)
    layers = getattr(getattr(ae, "encoder", None), "layers", None)
    if layers is None:
        raise UsageError(f"model {model.name!r} has no sequential TAESD encoder to tune")
    return layers


def load_tuned_layers(model: LatentAutoencoder, path: str | Path) -> torch.nn.Module:
    """A copy of the stock encoder stack with the tensors in ``path`` (sequential keys) loaded on top."""
    layers = copy.deepcopy(stock_encoder_layers(model))
    deltas.load_over(layers, path, model.name, "encoder", UsageError)
    return layers.requires_grad_(False).eval()


_tuned_cache: dict[tuple[int, str], Callable[[Tensor], Tensor]] = {}
_tuned_lock = threading.Lock()


def get_encoder(effort: str, model: LatentAutoencoder) -> Callable[[Tensor], Tensor]:
    """The image→latent callable for ``effort`` (``max`` starts from the ``default`` encoder).

    The tuned encoder is built once per model instance and cached (workers keep it warm).
    """
    effort = check_effort(effort)
    path = zoo_path(model.name) if effort != "fast" else None
    if path is None:
        return model.encode
    key = (id(model), str(path))
    with _tuned_lock:
        enc = _tuned_cache.get(key)
        if enc is None:
            enc = SequentialEncoder(load_tuned_layers(model, path), model.device, model.dtype)
            on_engine = getattr(model, "engine_encoder", None)  # `codec.models.onnx_runtime`
            if on_engine is not None:
                enc = on_engine(enc.layers, path.stem)
            batched = getattr(model, "batch_callable", None)  # `codec.models.batching`
            if batched is not None:
                enc = batched(enc, "tuned-encode")
            _tuned_cache[key] = enc
    return enc


# --------------------------------------------------------------------------- iterative RDO


def ste_refine(
    model: LatentAutoencoder,
    image: Tensor,
    z0: Tensor,
    qp: QuantParams,
    *,
    steps: int,
    lr: float = MAX_DEFAULT_LR,
    loss: RdoLoss | None = None,
    time_budget_s: float | None = None,
    autocast: bool = False,
) -> tuple[Tensor, list[float]]:
    """Adam on the latent through the frozen decoder with straight-through rounding.

    Returns (best latent, loss history). The loss of iterate k is measured at its quantized point,
    so the returned latent is the best *quantized* result seen (never worse than ``z0``).
    ``autocast``: bfloat16 autocast for decoder/LPIPS on CPU (≈ 3× faster on AVX512-BF16 CPUs).
    """
    loss = loss or RdoLoss(device=image.device)
    check_qp(qp, z0.shape[1])
    target = image.float()
    z = z0.detach().clone().float().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    best_z, best_loss, history = z0.detach().clone().float(), float("inf"), []
    t0 = time.perf_counter()
    dev_type = z.device.type
    use_ac = autocast and dev_type == "cpu"
    for _ in range(steps + 1):
        with torch.enable_grad(), torch.autocast(dev_type, dtype=torch.bfloat16, enabled=use_ac):
            zq = quantize_ste(z, qp)
            value = loss(model.decode(zq).float(), target).mean()
        v = float(value.detach())
        history.append(v)
        if v < best_loss:
            best_loss, best_z = v, z.detach().clone()
        if len(history) > steps:
            break
        if time_budget_s is not None and len(history) > 1:
            per_step = (time.perf_counter() - t0) / len(history)
            if time.perf_counter() - t0 + per_step > time_budget_s:
                break
        opt.zero_grad(set_to_none=True)
        value.backward()
        if z.grad is not None and torch.isfinite(z.grad).all():
            opt.step()
    return best_z, history


def refine_latent(
    model: LatentAutoencoder,
    image: Tensor,
    qp: QuantParams,
    effort: str,
    *,
    steps: int | None = None,
    time_budget_s: float | None = None,
    lr: float | None = None,
    loss: RdoLoss | None = None,
    latent: Tensor | None = None,
) -> Tensor:
    """The latent (1,C,h,w) float32 to quantize with ``qp`` for ``image`` (1,3,H,W) in [0, 1].

    ``fast``/``default``: one encoder pass (``steps`` > 0 adds that many straight-through steps,
    bounded by ``time_budget_s``). ``max``: ``steps`` (default 100) Adam steps at ``lr`` from the
    default latent, stopping early when ``time_budget_s`` would be exceeded.
    ``latent``: an encoder output for this effort computed earlier (skips the encoder pass).
    """
    effort = check_effort(effort)
    if image.ndim != 4 or image.shape[0] != 1 or image.shape[1] != 3:
        raise UsageError(f"refine_latent takes one image (1,3,H,W), got {tuple(image.shape)}")
    t0 = time.perf_counter()
    if latent is not None:
        z = latent
    elif image.shape[-2] * image.shape[-1] <= REFINE_MAX_WHOLE:
        z = get_encoder(effort, model)(image)
    else:  # large image: the tiled encoder pass of codec.tiling (bounded memory)
        z = torch.from_numpy(encode_latent(model, to_uint8(image), effort))[None].to(model.device)
    n = steps if steps is not None else (MAX_DEFAULT_STEPS if effort == "max" else 0)
    if n <= 0 or effort == "fast" or min(image.shape[-2:]) < REFINE_MIN_SIDE:
        return z.float()  # (a tiny image: its loss is undefined — LPIPS needs 32 px — and it is cheap)
    check_qp(qp, z.shape[1])
    budget = None if time_budget_s is None else max(0.0, time_budget_s - (time.perf_counter() - t0))
    return _refine_tiled(model, image.to(z.device), z.float(), qp, steps=n, lr=lr or MAX_DEFAULT_LR,
                         loss=loss or RdoLoss(device=z.device), time_budget_s=budget)


def _refine_tiled(
    model: LatentAutoencoder, image: Tensor, z: Tensor, qp: QuantParams, *, steps: int, lr: float,
    loss: RdoLoss, time_budget_s: float | None,
) -> Tensor:
    """`ste_refine` on the whole image when it is small, else on overlapping tiles (bounded memory).

    Each tile refines its core latents with ``REFINE_MARGIN`` px of context whose latents stay fixed;
    the time budget is shared evenly among the remaining tiles.
    """
    autocast = model.device.type == "cpu"
    h, w = image.shape[-2:]
    if h * w <= REFINE_MAX_WHOLE:
        return ste_refine(model, image, z, qp, steps=steps, lr=lr, loss=loss, time_budget_s=time_budget_s,
                          autocast=autocast)[0]
    ds = model.downscale
    lh, lw = z.shape[-2:]
    tiles = tile_boxes(lh, lw, REFINE_TILE // ds, REFINE_MARGIN // ds)
    out = z.clone()
    t0 = time.perf_counter()
    for i, ((y0, y1, x0, x1), (ey0, ey1, ex0, ex1)) in enumerate(tiles):
        budget = None
        if time_budget_s is not None:
            budget = (time_budget_s - (time.perf_counter() - t0)) / (len(tiles) - i)
            if budget <= 0:
                break
        sub = image[..., ey0 * ds : ey1 * ds, ex0 * ds : ex1 * ds]
        r, _ = ste_refine(model, sub, z[..., ey0:ey1, ex0:ex1], qp, steps=steps, lr=lr, loss=loss,
                          time_budget_s=budget, autocast=autocast)
        out[..., y0:y1, x0:x1] = r[..., y0 - ey0 : y1 - ey0, x0 - ex0 : x1 - ex0]
    return out


# --------------------------------------------------------------------------- numpy entry point (session)


def encode_latent(model: LatentAutoencoder, rgb: np.ndarray, effort: str) -> np.ndarray:
    """(H, W, 3) uint8 → latent (C, ceil(H/8), ceil(W/8)) float32 ndarray for ``effort``.

    One encoder pass (tiled for large images, padded by edge replication: `codec.tiling`):
    the stock encoder for ``fast``, the tuned one for ``default`` and ``max``. The iterative part of
    ``max`` needs the final quantizer settings, so the encoder runs it afterwards with `refine_latent`.
    """
    return encode_image(model, rgb, encode=get_encoder(effort, model))
