"""Cached latents of the training pack: the ``default`` (tuned) encoder's output for every crop.

The denoiser (`train_denoiser`) learns on what the codec really quantizes, i.e. the latents of the
encoder that effort ``default`` uses (`codec.encoder.rdo.get_encoder`). The encoder is frozen, so it
runs once per crop; the result is cached as float32 in ``training-cache/`` next to the crops.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch

from codec.encoder import rdo
from codec.models.base import LatentAutoencoder
from codec.tools.training.data import PackSpec, cache_dir


def build_latents(spec: PackSpec, crops: np.ndarray, model: LatentAutoencoder, effort: str = "default",
                  batch: int = 8, variant: str = "") -> torch.Tensor:
    """(N, C, crop/8, crop/8) float32 latents of ``crops`` (cached as ``<pack>_lat_<model>_<effort>.pt``;
    ``variant`` names crops derived from the pack, e.g. down-scaled ones, in the cache file name)."""
    path = cache_dir() / f"{spec.name()}{variant}_lat_{model.name}_{effort}.pt"
    if path.is_file():
        return torch.load(path, weights_only=True)
    encoder = rdo.get_encoder(effort, model)
    out: list[torch.Tensor] = []
    t0 = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(crops), batch):
            x = torch.from_numpy(np.array(crops[i : i + batch])).permute(0, 3, 1, 2).float() / 255.0
            out.append(encoder(x.contiguous(memory_format=torch.channels_last)).float().contiguous().cpu())
            if (i // batch) % 25 == 0:
                print(f"[data] latents {i + len(x)}/{len(crops)} ({time.perf_counter() - t0:.0f} s)",
                      file=sys.stderr)
    lat = torch.cat(out)
    torch.save(lat, path)
    return lat
