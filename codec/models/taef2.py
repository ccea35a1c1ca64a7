"""TAEF2: the tiny autoencoder for the FLUX.2 latent space (32 channels), as a small module of our own.

Same plain sequential layout as TAESD (3×3 convs, residual blocks, stride-2 convs down, nearest
upsampling up), with two differences diffusers' AutoencoderTiny cannot express:

- 32 latent channels;
- the deepest three blocks of each side (encoder indices 11–13, decoder 3–5) carry an extra branch
  ``pool = 1×1 conv (64→256) → GroupNorm(4) → ReLU → 1×1 conv (256→64)`` that is added to the block's
  input before the block's convolutions (state-dict keys ``N.pool.0/1/3``).

Layer indices match the upstream state dict, so it loads with ``strict=True``. Images are in [0, 1]
on both sides (no [-1, 1] shift), the decoder starts with the soft clamp ``tanh(z/3)*3``.
The weight files are torch pickles loaded with ``weights_only=True`` (float16 inside), cast to float32.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from codec.device import make_deterministic
from codec.models.base import check_image_batch, check_latent_batch, set_spec_attributes
from codec.models.taesd import load_state_file
from codec.weights import weight_file

if TYPE_CHECKING:
    from codec.models.registry import ModelSpec

WIDTH = 64


def _conv(n_in: int, n_out: int, **kwargs: object) -> nn.Conv2d:
    return nn.Conv2d(n_in, n_out, 3, padding=1, **kwargs)  # type: ignore[arg-type]


class SoftClamp(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x / 3) * 3


class Block(nn.Module):
    """Residual block; ``with_pool`` adds the 1×1-conv/GroupNorm branch to the input first."""

    def __init__(self, n: int = WIDTH, with_pool: bool = False) -> None:
        super().__init__()
        self.conv = nn.Sequential(_conv(n, n), nn.ReLU(), _conv(n, n), nn.ReLU(), _conv(n, n))
        self.skip = nn.Identity()
        self.fuse = nn.ReLU()
        self.pool: nn.Module | None = None
        if with_pool:
            wide = 4 * n
            self.pool = nn.Sequential(
                nn.Conv2d(n, wide, 1, bias=False),
                nn.GroupNorm(4, wide),
                nn.ReLU(),
                nn.Conv2d(wide, n, 1, bias=False),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            x = x + self.pool(x)
        return self.fuse(self.conv(x) + self.skip(x))


def build_encoder(latent_channels: int = 32) -> nn.Sequential:
    layers: list[nn.Module] = [_conv(3, WIDTH), Block()]
    for stage in range(3):
        deepest = stage == 2
        layers += [_conv(WIDTH, WIDTH, stride=2, bias=False)]
        layers += [Block(with_pool=deepest) for _ in range(3)]
    layers.append(_conv(WIDTH, latent_channels))
    return nn.Sequential(*layers)


def build_decoder(latent_channels: int = 32) -> nn.Sequential:
    layers: list[nn.Module] = [SoftClamp(), _conv(latent_channels, WIDTH), nn.ReLU()]
    for stage in range(3):
        layers += [Block(with_pool=stage == 0) for _ in range(3)]
        layers += [nn.Upsample(scale_factor=2), _conv(WIDTH, WIDTH, bias=False)]
    layers += [Block(), _conv(WIDTH, 3)]
    return nn.Sequential(*layers)


class TAEF2:
    """TAEF2 behind the LatentAutoencoder interface."""

    def __init__(self, spec: ModelSpec, device: object = None, model_dir: str | None = None) -> None:
        set_spec_attributes(self, spec, device)
        assert spec.encoder_file and spec.decoder_file
        encoder = build_encoder(spec.latent_channels)
        decoder = build_decoder(spec.latent_channels)
        encoder.load_state_dict(load_state_file(weight_file(spec.encoder_file, model_dir)), strict=True)
        decoder.load_state_dict(load_state_file(weight_file(spec.decoder_file, model_dir)), strict=True)
        make_deterministic(self.device)
        cl = torch.channels_last  # fewer CPU-seconds with oneDNN convolutions
        self.encoder = encoder.requires_grad_(False).eval().to(self.device, self.dtype).to(memory_format=cl)
        self.decoder = decoder.requires_grad_(False).eval().to(self.device, self.dtype).to(memory_format=cl)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x, self.downscale)
        x = x.to(device=self.device, dtype=self.dtype, memory_format=torch.channels_last)
        return self.encoder(x).float().contiguous()

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        check_latent_batch(z, self.latent_channels)
        z = z.to(device=self.device, dtype=self.dtype, memory_format=torch.channels_last)
        return self.decoder(z).float().contiguous()

    def __repr__(self) -> str:
        return f"TAEF2(device={self.device}, dtype={self.dtype})"
