"""Bounded-memory encode/decode: whole image when small, overlapping tiles when large.

The TAESD convolutions keep 64 channels at full resolution, so an untiled pass costs about
0.8 KB of activations per pixel (float32, channels_last, CPU; measured peak RSS slope; ~1.0 KB/px
with contiguous tensors) — a 6000×4000 photo would need ~20 GB. Above
:attr:`TilingConfig.max_whole_pixels` the image is processed in tiles (measured: 6000×4000 tiled with
the defaults peaks at 2.3 GB RSS including the model and the 72 MB image):

- **encode**: the latent grid is split into near-equal cores of about ``tile`` pixels (a multiple of
  the model's downscale, so every tile sits on the global latent grid). Each core is encoded with
  ``margin`` pixels of real image context on every side (clipped at the image border) and only the
  latents of the core are kept. Convolutions are local, so cores see the same context as in a whole
  image pass up to the margin; what is left is a tiny difference far out in the receptive field.
- **decode**: the same in latent space: each latent core plus ``margin / downscale`` latents of
  context is decoded, and only the core's pixels are kept.

No blending is needed: with these margins the tile/whole difference is far below the codec's own
error (see the tests and the numbers in the report); there is no visible seam. Peak memory is then
bounded by the tile area ``(tile + 2·margin)²`` instead of the image area.

The tile geometry (`TilingConfig`, `tile_boxes`) is torch-free and lives in `codec.container.cost`,
which prices a decode from the header with exactly these tiles; it is re-exported here.

Caveat: models with GroupNorm (the ``pool`` branches of ``taef2``, the full ``sd-vae``) normalise
with per-tile statistics, so for them tiling is an approximation (like diffusers' tiled VAE).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch

from codec.container.cost import DEFAULT_TILING, TilingConfig, _spans, tile_boxes
from codec.container.cost import round_to as _round_to
from codec.imageio import pad_to_multiple, to_tensor, to_uint8

if TYPE_CHECKING:
    from codec.models.base import LatentAutoencoder

__all__ = ["DEFAULT_TILING", "TilingConfig", "_spans", "decode_latent", "encode_image", "tile_boxes"]


def _use_tiles(pixels: int, cfg: TilingConfig, tiled: bool | None) -> bool:
    return pixels > cfg.max_whole_pixels if tiled is None else tiled


def _inference() -> torch.autograd.grad_mode.inference_mode:
    return torch.inference_mode()


#: after a pass over more than this many pixels the model may hand its inference buffers back
RELEASE_PIXELS = 1_000_000


def _release(model: object, pixels: int) -> None:
    """After a large pass, ``model.release_memory()`` where the backend keeps buffers (OpenVINO keeps
    those of its largest input; `codec.models.onnx_runtime.OvRunner`). Once per image, not per tile."""
    release = getattr(model, "release_memory", None)
    if pixels > RELEASE_PIXELS and callable(release):
        release()


def encode_image(
    model: LatentAutoencoder,
    rgb: np.ndarray,
    *,
    config: TilingConfig = DEFAULT_TILING,
    tiled: bool | None = None,
    encode: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> np.ndarray:
    """(H, W, 3) uint8 → latent (C, ceil(H/ds), ceil(W/ds)) float32; tiles when the image is large.

    The image is padded to a multiple of the model's downscale by edge replication; decode with
    :func:`decode_latent` and crop the result back to (H, W). ``tiled``: None = automatic.
    ``encode``: the image→latent network to run (default ``model.encode``; e.g. the tuned encoder).
    """

    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 array, got {rgb.shape} {rgb.dtype}")
    ds = model.downscale
    encode = encode or model.encode
    x = pad_to_multiple(rgb, ds)
    ph, pw = x.shape[:2]
    try:
        return _encode_padded(model, x, config, tiled, encode)
    finally:
        _release(model, ph * pw)


def _encode_padded(model: LatentAutoencoder, x: np.ndarray, config: TilingConfig, tiled: bool | None,
                   encode: Callable[[torch.Tensor], torch.Tensor]) -> np.ndarray:
    ds = model.downscale
    ph, pw = x.shape[:2]
    lh, lw = ph // ds, pw // ds
    with _inference():
        if not _use_tiles(ph * pw, config, tiled):
            return encode(to_tensor(x))[0].cpu().numpy()
        core = _round_to(config.tile, ds) // ds
        m = _round_to(config.margin, ds) // ds if config.margin > 0 else 0
        out = np.empty((model.latent_channels, lh, lw), dtype=np.float32)
        for (y0, y1, x0, x1), (ey0, ey1, ex0, ex1) in tile_boxes(lh, lw, core, m):
            tile = x[ey0 * ds : ey1 * ds, ex0 * ds : ex1 * ds]
            z = encode(to_tensor(tile))[0]
            out[:, y0:y1, x0:x1] = z[:, y0 - ey0 : y1 - ey0, x0 - ex0 : x1 - ex0].cpu().numpy()
        return out


def decode_latent(
    model: LatentAutoencoder,
    latent: np.ndarray,
    *,
    config: TilingConfig | None = None,
    tiled: bool | None = None,
) -> np.ndarray:
    """Latent (C, h, w) → (h·ds, w·ds, 3) uint8 RGB (clamped); tiles when the output is large.

    Crop the result to the original (H, W) yourself (``rgb[:H, :W]``). ``config`` None: the model's own
    ``decode_tiling`` where it has one (the OpenVINO engine: smaller tiles, see
    `codec.models.onnx_runtime.ENGINE_DECODE_TILING`), else `DEFAULT_TILING`.
    """
    if config is None:
        config = getattr(model, "decode_tiling", None) or DEFAULT_TILING

    if latent.ndim != 3 or latent.shape[0] != model.latent_channels:
        raise ValueError(f"expected a latent ({model.latent_channels}, h, w), got {latent.shape}")
    ds = model.downscale
    _, lh, lw = latent.shape
    try:
        return _decode(model, latent, config, tiled)
    finally:
        _release(model, lh * lw * ds * ds)


def _decode(
    model: LatentAutoencoder, latent: np.ndarray, config: TilingConfig, tiled: bool | None
) -> np.ndarray:
    ds = model.downscale
    _, lh, lw = latent.shape
    z_all = torch.from_numpy(np.ascontiguousarray(latent, dtype=np.float32))
    with _inference():
        if not _use_tiles(lh * lw * ds * ds, config, tiled):
            return to_uint8(model.decode(z_all[None]))
        core = max(1, _round_to(config.tile, ds) // ds)
        m = _round_to(config.margin, ds) // ds if config.margin > 0 else 0
        out = np.empty((lh * ds, lw * ds, 3), dtype=np.uint8)
        for (y0, y1, x0, x1), (ey0, ey1, ex0, ex1) in tile_boxes(lh, lw, core, m):
            y = model.decode(z_all[None, :, ey0:ey1, ex0:ex1])
            oy, ox = (y0 - ey0) * ds, (x0 - ex0) * ds
            core_px = y[:, :, oy : oy + (y1 - y0) * ds, ox : ox + (x1 - x0) * ds]
            out[y0 * ds : y1 * ds, x0 * ds : x1 * ds] = to_uint8(core_px)
        return out
