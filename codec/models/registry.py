"""Model registry: name ↔ stable numeric id ↔ configuration (as data), and the per-process cache.

The numeric ``model_id`` is written into bitstreams, so it must never change for a given name.
``get_model`` loads a model once per (name, device, model_path) and returns the same instance
afterwards (workers keep it warm). torch is imported only when a model is actually loaded.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from codec.errors import UsageError

if TYPE_CHECKING:
    from codec.models.base import LatentAutoencoder


@dataclass(frozen=True)
class ModelSpec:
    """Static description of one backend."""

    name: str
    model_id: int  # stable id stored in the bitstream
    family: str  # "taesd" (diffusers AutoencoderTiny), "taef2" (own module), "sd-vae" (AutoencoderKL)
    latent_channels: int
    downscale: int
    encoder_file: str | None = None  # file names inside CODEC_MODEL_DIR (None: from model_path)
    decoder_file: str | None = None
    description: str = ""


_SPECS: tuple[ModelSpec, ...] = (
    ModelSpec("taesd", 1, "taesd", 4, 8, "taesd_encoder.safetensors", "taesd_decoder.safetensors",
              "TAESD for the SD 1.x/2.x VAE latent space"),
    ModelSpec("taesdxl", 2, "taesd", 4, 8, "taesdxl_encoder.safetensors", "taesdxl_decoder.safetensors",
              "TAESDXL for the SDXL VAE latent space"),
    ModelSpec("taesd3", 3, "taesd", 16, 8, "taesd3_encoder.safetensors", "taesd3_decoder.safetensors",
              "TAESD3 for the SD3 VAE latent space"),
    ModelSpec("taef1", 4, "taesd", 16, 8, "taef1_encoder.safetensors", "taef1_decoder.safetensors",
              "TAEF1 for the FLUX.1 VAE latent space"),
    ModelSpec("taef2", 5, "taef2", 32, 8, "taef2_encoder.pth", "taef2_decoder.pth",
              "TAEF2 for the FLUX.2 VAE latent space (extra pool branches)"),
    ModelSpec("sd-vae", 16, "sd-vae", 4, 8, None, None,
              "full diffusers AutoencoderKL from a local directory (--model-path); "
              "channels/downscale come from its config"),
)

MODELS: dict[str, ModelSpec] = {s.name: s for s in _SPECS}
MODELS_BY_ID: dict[int, ModelSpec] = {s.model_id: s for s in _SPECS}
DEFAULT_MODEL = "taesd"

_cache: dict[tuple[str, str, str | None], LatentAutoencoder] = {}
_cache_lock = threading.Lock()


def list_models() -> list[str]:
    """Names of all registered models, ordered by model_id."""
    return [s.name for s in sorted(_SPECS, key=lambda s: s.model_id)]


def get_spec(name_or_id: str | int) -> ModelSpec:
    """Spec by name (``"taesd"``) or numeric id (``1``); unknown → UsageError."""
    if isinstance(name_or_id, int) and not isinstance(name_or_id, bool):
        spec = MODELS_BY_ID.get(name_or_id)
    elif isinstance(name_or_id, str):
        spec = MODELS.get(name_or_id.strip().lower())
    else:
        spec = None
    if spec is None:
        raise UsageError(f"unknown model {name_or_id!r}; known models: {', '.join(list_models())}")
    return spec


def _build(spec: ModelSpec, device: object, model_path: str | None) -> LatentAutoencoder:
    if spec.family == "taesd":
        from codec.models.taesd import TinyAutoencoder

        return TinyAutoencoder(spec, device=device, model_dir=model_path)
    if spec.family == "taef2":
        from codec.models.taef2 import TAEF2

        return TAEF2(spec, device=device, model_dir=model_path)
    if spec.family == "sd-vae":
        from codec.models.sd_vae import SDVAE

        return SDVAE(spec, device=device, model_path=model_path)
    raise UsageError(f"model {spec.name!r} has unknown family {spec.family!r}")  # pragma: no cover


def get_model(
    name: str = DEFAULT_MODEL, device: str | None = None, model_path: str | os.PathLike[str] | None = None
) -> LatentAutoencoder:
    """The loaded model ``name`` on ``device`` (None → CUDA if available, else CPU), cached per process.

    ``model_path``: for the TAESD family a directory holding the weight files (overrides
    ``CODEC_MODEL_DIR``); for ``sd-vae`` the diffusers directory (required).
    """
    from codec.device import resolve_device

    spec = get_spec(name)
    dev = resolve_device(device)
    path = str(Path(model_path).expanduser().resolve()) if model_path is not None else None
    key = (spec.name, str(dev), path)
    with _cache_lock:
        model = _cache.get(key)
        if model is None:
            # Built under the lock: two threads asking at once must not load twice.
            model = _build(spec, dev, path)
            _cache[key] = model
    return model


def clear_cache() -> None:
    """Drop all cached models (tests, or to free memory)."""
    with _cache_lock:
        _cache.clear()
