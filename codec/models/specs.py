"""One table of the models: name, stable bitstream id, family, latent geometry, weight files, the
tuned encoder file (``codec/zoo``) and the factory that builds the backend (config as data).

Pure Python: the container reads the id → model table from here without importing torch. The
sha256 and download source of each weight file are kept with the other fetchable files in
`codec.resources.catalog` (keyed by the file names below).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from codec.errors import UsageError

#: the factory of each family, as data: "module:class" and the name of its weights-location argument
#: (`codec.models.registry` imports the module when a model is first loaded)
FACTORIES: dict[str, tuple[str, str]] = {
    "taesd": ("codec.models.taesd:TinyAutoencoder", "model_dir"),  # diffusers AutoencoderTiny
    "taef2": ("codec.models.taef2:TAEF2", "model_dir"),  # own module: extra pool branches
    "sd-vae": ("codec.models.sd_vae:SDVAE", "model_path"),  # diffusers AutoencoderKL directory
}

#: the fine-tuned encoders shipped with the code (``ModelSpec.tuned_encoder`` files live here)
ZOO_DIR = Path(__file__).resolve().parent.parent / "zoo"


@dataclass(frozen=True)
class ModelSpec:
    """Static description of one backend."""

    name: str
    model_id: int  # stable id stored in the bitstream
    family: str  # key of `FACTORIES`: "taesd", "taef2", "sd-vae"
    latent_channels: int
    downscale: int
    encoder_file: str | None = None  # file names inside CODEC_MODEL_DIR (None: from model_path)
    decoder_file: str | None = None
    description: str = ""
    #: file in `ZOO_DIR` with the fine-tuned encoder tensors (effort default/max), None: stock encoder
    tuned_encoder: str | None = None


_SPECS: tuple[ModelSpec, ...] = (
    ModelSpec("taesd", 1, "taesd", 4, 8, "taesd_encoder.safetensors", "taesd_decoder.safetensors",
              "TAESD for the SD 1.x/2.x VAE latent space", "taesd_encoder_rdo.safetensors"),
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


@dataclass(frozen=True)
class LatentFilterSpec:
    """A learned latent denoiser (`codec.models.denoiser`) applied between dequantization and the stock
    decoder when a file's metadata tag ``latent_filter`` (FORMAT.md tag 15) names its id."""

    filter_id: int  # stable id stored in the bitstream (≥ 1)
    name: str
    model: str  # the model whose latents it was trained on
    file: str  # weight file in `ZOO_DIR`
    #: file in `ZOO_DIR` with a fine-tuned copy of the model's decoder that decodes this filter's latents
    #: (`codec.models.tuned_decoder`); None: the stock decoder
    decoder: str | None = None

    def files(self) -> tuple[str, ...]:
        return (self.file,) if self.decoder is None else (self.file, self.decoder)

    def installed(self) -> bool:
        """Whether every weight file of this filter is in `ZOO_DIR`."""
        return all((ZOO_DIR / f).is_file() for f in self.files())


LATENT_FILTERS: dict[int, LatentFilterSpec] = {
    1: LatentFilterSpec(1, "dq1", "taesd", "taesd_latent_denoiser.safetensors"),
    # the same denoiser, then the decoder fine-tuned on its output (issue 14 item 2, codec/zoo/README.md)
    2: LatentFilterSpec(2, "dq1+dd1", "taesd", "taesd_latent_denoiser.safetensors",
                        "taesd_decoder_tuned.safetensors"),
}


def latent_filter_for(model: str) -> LatentFilterSpec | None:
    """The newest shipped latent denoiser of ``model`` (its weight file present), else None."""
    found = [s for s in LATENT_FILTERS.values() if s.model == model and s.installed()]
    return max(found, key=lambda s: s.filter_id) if found else None
MODELS_BY_ID: dict[int, ModelSpec] = {s.model_id: s for s in _SPECS}
DEFAULT_MODEL = "taesd"

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


def tuned_encoder_path(name: str) -> Path | None:
    """The shipped fine-tuned encoder file of model ``name``, or None (no file: the stock encoder)."""
    spec = MODELS.get(name)
    if spec is None or spec.tuned_encoder is None:
        return None
    path = ZOO_DIR / spec.tuned_encoder
    return path if path.is_file() else None
