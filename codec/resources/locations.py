"""Where shared files are looked for: kinds, their environment variables, ``../shared`` and the user cache.

Search order for every kind (first hit wins):

1. an explicit directory passed by the caller (``get_model(..., model_path=DIR)``);
2. the kind's environment variable (``CODEC_MODEL_DIR``, ``CODEC_METRICS_DIR``, ``CODEC_KODAK_DIR``,
   ``CODEC_TRAIN_DIR``);
3. ``<project root>/../shared/<subdir>`` — unless ``CODEC_NO_SHARED_FALLBACK=1``;
4. the user cache ``<cache root>/<subdir>``, where the cache root is ``$CODEC_CACHE_DIR``, else
   ``$XDG_CACHE_HOME/latent-gallery``, else ``~/.cache/latent-gallery``;

and, for catalogued weight files only, a download into the user cache (``codec.resources.download``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

NO_SHARED_FALLBACK_ENV = "CODEC_NO_SHARED_FALLBACK"
CACHE_DIR_ENV = "CODEC_CACHE_DIR"
CACHE_APP_NAME = "latent-gallery"

_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class SharedKind:
    """One kind of shared file location."""

    env: str  # environment variable that overrides the location
    subdir: str  # path below ``../shared`` and below the user cache
    what: str  # human description for error messages
    upstream: str  # where people outside this machine get the files


KINDS: dict[str, SharedKind] = {
    "models": SharedKind(
        "CODEC_MODEL_DIR", "models/taesd", "TAESD weight file",
        "upstream: https://github.com/madebyollin/taesd (MIT); note that it and its Hugging Face repos "
        "hold float32 .pth / diffusers files with other bytes, while this project needs the bfloat16 "
        ".safetensors (taef2: the upstream .pth) that `python -m codec fetch-weights` downloads and verifies",
    ),
    "metrics": SharedKind(
        "CODEC_METRICS_DIR", "models/metrics", "LPIPS metric weight file",
        "upstream: the official LPIPS v0.1 linear layers (https://github.com/richzhang/PerceptualSimilarity) "
        "and the torchvision AlexNet / SqueezeNet 1.1 ImageNet weights "
        "(see ../shared/models/metrics/README.md)",
    ),
    "kodak": SharedKind(
        "CODEC_KODAK_DIR", "data/kodak", "Kodak test image",
        "upstream: the Kodak Lossless True Color Image Suite (https://r0k.us/graphics/kodak/)",
    ),
    "train": SharedKind(
        "CODEC_TRAIN_DIR", "data/train", "training photo",
        "upstream: BSDS500, Urban100 and an ImageNet sample (see ../shared/data/train/README.md)",
    ),
}


def env_flag(name: str) -> bool:
    """True when the environment variable ``name`` is set to 1/true/yes/on."""
    return os.environ.get(name, "").strip().lower() in _TRUE


def project_root() -> Path:
    """The repository root (the folder that holds ``codec/``)."""
    return Path(__file__).resolve().parents[2]


def shared_root() -> Path:
    """``<project root>/../shared``."""
    return project_root().parent / "shared"


def shared_fallback_enabled() -> bool:
    """False when ``CODEC_NO_SHARED_FALLBACK`` is set to a true value."""
    return not env_flag(NO_SHARED_FALLBACK_ENV)


def cache_root() -> Path:
    """``$CODEC_CACHE_DIR``, else ``$XDG_CACHE_HOME/latent-gallery``, else ``~/.cache/latent-gallery``."""
    explicit = os.environ.get(CACHE_DIR_ENV, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    # The XDG spec says a relative $XDG_CACHE_HOME is invalid and must be ignored.
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / CACHE_APP_NAME


def kind(name: str) -> SharedKind:
    """The :class:`SharedKind` called ``name``; ValueError for an unknown one."""
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown shared-file kind {name!r}; known: {', '.join(KINDS)}") from None


def cache_dir(kind_name: str) -> Path:
    """The user-cache folder of ``kind_name`` (may not exist yet)."""
    return cache_root() / kind(kind_name).subdir


def candidate_dirs(kind_name: str, explicit: str | os.PathLike[str] | None = None) -> list[Path]:
    """The directories searched for ``kind_name``, in order (explicit, env var, ../shared, cache)."""
    spec = kind(kind_name)
    dirs: list[Path] = []
    if explicit is not None:
        dirs.append(Path(explicit).expanduser())
    env = os.environ.get(spec.env, "").strip()
    if env:
        dirs.append(Path(env).expanduser())
    if shared_fallback_enabled():
        dirs.append(shared_root() / spec.subdir)
    dirs.append(cache_dir(kind_name))
    seen: set[Path] = set()
    unique = []
    for d in dirs:
        if d not in seen:
            seen.add(d)
            unique.append(d)
    return unique
