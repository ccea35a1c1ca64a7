"""The one interface every autoencoder backend implements (see docs/ARCHITECTURE.md).

Conventions shared by all backends, whatever their native range:

- ``encode(x)``: ``x`` is ``(N, 3, H, W)`` float in ``[0, 1]``, ``H`` and ``W`` multiples of
  ``downscale``; returns latents ``(N, latent_channels, H/downscale, W/downscale)`` as float32.
- ``decode(z)``: returns ``(N, 3, H, W)`` float32 roughly in ``[0, 1]``; clamping is the caller's job.
- Inputs are moved to the model's device/dtype; outputs are float32 on the model's device.
- Neither method wraps itself in ``torch.no_grad()``: encoder-side RDO differentiates through
  ``decode``. Parameters are frozen (``requires_grad=False``), so gradients flow only to inputs.
- Instances returned by ``get_model`` are shared per process: never modify their weights in place;
  ``copy.deepcopy(model)`` first (e.g. to fine-tune an encoder).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch


@runtime_checkable
class LatentAutoencoder(Protocol):
    name: str
    model_id: int
    latent_channels: int
    downscale: int
    device: torch.device
    dtype: torch.dtype

    def encode(self, x: torch.Tensor) -> torch.Tensor: ...

    def decode(self, z: torch.Tensor) -> torch.Tensor: ...


def set_spec_attributes(model: object, spec: object, device: object) -> None:
    """Copy the interface attributes from a registry ``spec`` and pick the device and dtype."""
    from codec.device import default_dtype, resolve_device

    model.spec = spec  # type: ignore[attr-defined]
    for name in ("name", "model_id", "latent_channels", "downscale"):
        setattr(model, name, getattr(spec, name))
    model.device = resolve_device(device)  # type: ignore[attr-defined, arg-type]
    model.dtype = default_dtype(model.device)  # type: ignore[attr-defined]


def check_image_batch(x: torch.Tensor, downscale: int) -> None:
    """Raise ValueError unless ``x`` is ``(N, 3, H, W)`` with H, W multiples of ``downscale``."""
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected an image batch (N, 3, H, W), got shape {tuple(x.shape)}")
    if x.shape[2] % downscale or x.shape[3] % downscale:
        raise ValueError(
            f"image size {x.shape[3]}x{x.shape[2]} is not a multiple of {downscale}: pad first "
            "(codec.imageio.pad_to_multiple)"
        )


def check_latent_batch(z: torch.Tensor, channels: int) -> None:
    """Raise ValueError unless ``z`` is ``(N, channels, h, w)``."""
    if z.ndim != 4 or z.shape[1] != channels:
        raise ValueError(f"expected latents (N, {channels}, h, w), got shape {tuple(z.shape)}")
