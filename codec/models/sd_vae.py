"""The full Stable Diffusion VAE (diffusers ``AutoencoderKL``) loaded from a local directory.

``model_path`` must be a directory written by ``AutoencoderKL.save_pretrained`` (``config.json`` +
weights); nothing is downloaded. The VAE speaks images in [-1, 1]; this wrapper speaks [0, 1].
Latents are the posterior *mode* (deterministic, no sampling), shifted and scaled the way diffusion
models see them: ``z = (mode - shift_factor) * scaling_factor`` (shift 0 for SD 1.x/2.x/XL).
Channels and downscale come from the config (``2 ** (len(block_out_channels) - 1)``, 8 for real VAEs).
On CUDA the model runs in fp16 unless its config says ``force_upcast`` (the SD/SDXL VAEs overflow in
fp16), in which case it stays float32.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from codec.device import default_dtype, make_deterministic, resolve_device
from codec.errors import ModelNotFoundError, UsageError
from codec.models.base import check_image_batch, check_latent_batch

if TYPE_CHECKING:
    from codec.models.registry import ModelSpec


class SDVAE:
    """AutoencoderKL behind the LatentAutoencoder interface."""

    def __init__(self, spec: ModelSpec, device: object = None, model_path: str | None = None) -> None:
        from diffusers import AutoencoderKL

        if model_path is None:
            raise UsageError(
                "model 'sd-vae' needs a local diffusers AutoencoderKL directory: pass --model-path DIR "
                "(e.g. the 'vae' folder of a Stable Diffusion checkout, written by save_pretrained)"
            )
        path = Path(model_path)
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(
                f"no diffusers AutoencoderKL at {path} (missing config.json); the full SD VAE is not "
                "bundled — upstream: the 'vae' subfolder of a Stable Diffusion model on Hugging Face, "
                "e.g. 'stabilityai/sd-vae-ft-mse', saved locally"
            )
        try:
            vae = AutoencoderKL.from_pretrained(str(path), local_files_only=True, torch_dtype=torch.float32)
        except Exception as exc:  # diffusers/safetensors raise many types for a broken folder
            raise ModelNotFoundError(f"cannot load AutoencoderKL from {path}: {exc}") from exc
        cfg = vae.config
        self.spec = spec
        self.name = spec.name
        self.model_id = spec.model_id
        self.latent_channels = int(cfg.latent_channels)
        self.downscale = 2 ** (len(cfg.block_out_channels) - 1)
        self.scaling_factor = float(cfg.scaling_factor)
        self.shift_factor = float(cfg.shift_factor or 0.0)
        self.device = resolve_device(device)  # type: ignore[arg-type]
        self.dtype = default_dtype(self.device)
        if getattr(cfg, "force_upcast", False):
            self.dtype = torch.float32
        make_deterministic(self.device)
        vae.requires_grad_(False).eval()
        self.vae = torch.nn.Module.to(vae, device=self.device, dtype=self.dtype)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x, self.downscale)
        x = x.to(device=self.device, dtype=self.dtype)
        mode = self.vae.encode(x * 2 - 1).latent_dist.mode()
        return ((mode - self.shift_factor) * self.scaling_factor).float()

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        check_latent_batch(z, self.latent_channels)
        z = z.to(device=self.device, dtype=self.dtype)
        y = self.vae.decode(z / self.scaling_factor + self.shift_factor).sample
        return (y.float() + 1) / 2

    def __repr__(self) -> str:
        return f"SDVAE(latent_channels={self.latent_channels}, device={self.device}, dtype={self.dtype})"
