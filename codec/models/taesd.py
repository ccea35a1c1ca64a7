"""TAESD family (taesd, taesdxl, taesd3, taef1) on diffusers' ``AutoencoderTiny``.

The shared weight files are the upstream *sequential* state dicts (``0.weight``, ``1.conv.0.weight``,
…). diffusers' AutoencoderTiny holds the same layers under ``encoder.layers.N`` and
``decoder.layers.M``; its decoder applies the soft clamp ``tanh(x/3)*3`` itself, so upstream decoder
index N (index 0 is that clamp, which has no weights) becomes ``decoder.layers.(N-1)``. The mapped
state dict is loaded with ``strict=True``, so a wrong file or layout fails loudly.

AutoencoderTiny speaks images in ``[-1, 1]``; this wrapper speaks ``[0, 1]`` like every backend here.
Weights are stored as bfloat16 and loaded as float32 (then cast to the device's dtype).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from codec.device import make_deterministic
from codec.errors import ModelNotFoundError
from codec.models.base import check_image_batch, check_latent_batch, set_spec_attributes
from codec.weights import weight_file

if TYPE_CHECKING:
    from codec.models.registry import ModelSpec

_KEY = re.compile(r"^(\d+)\.(.+)$")


def load_state_file(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Load a ``.safetensors`` or ``.pth`` state dict (``weights_only=True``) as float32 CPU tensors."""
    p = Path(path)
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(p), device="cpu")
        else:
            sd = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file that slipped past the checksum (unknown file, no sha)
        raise ModelNotFoundError(f"cannot read weight file {p}: {exc}") from exc
    if not isinstance(sd, dict):
        raise ModelNotFoundError(f"weight file {p} does not hold a state dict")
    return {k: (v.float() if v.is_floating_point() else v) for k, v in sd.items()}


def map_sequential_keys(
    sd: dict[str, torch.Tensor], prefix: str, index_offset: int
) -> dict[str, torch.Tensor]:
    """``"N.rest"`` → ``f"{prefix}.{N + index_offset}.rest"``."""
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        m = _KEY.match(k)
        if m is None:
            raise ModelNotFoundError(f"unexpected key {k!r} in a sequential TAESD state dict")
        out[f"{prefix}.{int(m.group(1)) + index_offset}.{m.group(2)}"] = v
    return out


class TinyAutoencoder:
    """A TAESD-family model behind the LatentAutoencoder interface."""

    def __init__(self, spec: ModelSpec, device: object = None, model_dir: str | None = None) -> None:
        from diffusers import AutoencoderTiny

        set_spec_attributes(self, spec, device)
        assert spec.encoder_file and spec.decoder_file
        enc_path = weight_file(spec.encoder_file, model_dir)
        dec_path = weight_file(spec.decoder_file, model_dir)

        ae = AutoencoderTiny(latent_channels=spec.latent_channels)
        state = map_sequential_keys(load_state_file(enc_path), "encoder.layers", 0)
        state.update(map_sequential_keys(load_state_file(dec_path), "decoder.layers", -1))
        ae.load_state_dict(state, strict=True)
        ae.requires_grad_(False).eval()
        make_deterministic(self.device)
        # nn.Module.to, not ModelMixin.to: the latter warns about casting (nothing here needs fp32).
        # channels_last: ~30% fewer CPU-seconds per encode/decode with oneDNN convolutions (measured).
        ae = torch.nn.Module.to(ae, device=self.device, dtype=self.dtype)
        self.ae = ae.to(memory_format=torch.channels_last)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x, self.downscale)
        x = x.to(device=self.device, dtype=self.dtype, memory_format=torch.channels_last)
        z = self.ae.encode(x * 2 - 1).latents
        return z.float().contiguous()

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        check_latent_batch(z, self.latent_channels)
        z = z.to(device=self.device, dtype=self.dtype, memory_format=torch.channels_last)
        y = self.ae.decode(z).sample
        return ((y.float() + 1) / 2).contiguous()

    def __repr__(self) -> str:
        return f"TinyAutoencoder(name={self.name!r}, device={self.device}, dtype={self.dtype})"
