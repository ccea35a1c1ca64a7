"""Run-time resolution of shared files (weights, metric weights, data sets) and sha256 checks.

Search order for every kind of shared file (one function, used by the whole project):

1. an explicit directory passed by the caller (e.g. ``get_model(..., model_path=DIR)``);
2. the environment variable of that kind (``CODEC_MODEL_DIR``, ``CODEC_METRICS_DIR``,
   ``CODEC_KODAK_DIR``, ``CODEC_TRAIN_DIR``);
3. ``<project root>/../shared/<subdir>`` — unless ``CODEC_NO_SHARED_FALLBACK=1`` is set (tests use
   it to prove that the error message for a missing file is helpful);
4. otherwise a :class:`~codec.errors.ModelNotFoundError` naming the missing file, the variable to set
   and where upstream users get the file.

Weights never download at run time. The expected sha256 of each known weight file is kept here as
data; a file is hashed once per process (cached by path, size and mtime) and a mismatch raises
:class:`~codec.errors.WeightsChecksumError`. This module imports neither torch nor Django.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from codec.errors import ModelNotFoundError, WeightsChecksumError

#: Set to "1"/"true"/"yes" to disable the ``../shared`` fallback (explicit settings only).
NO_SHARED_FALLBACK_ENV = "CODEC_NO_SHARED_FALLBACK"

TAESD_UPSTREAM = (
    "upstream: https://github.com/madebyollin/taesd (or the Hugging Face repo 'madebyollin/taesd', "
    "which uses diffusers AutoencoderTiny key names)"
)


@dataclass(frozen=True)
class SharedKind:
    """One kind of shared file location."""

    env: str  # environment variable that overrides the location
    shared_subdir: str  # path below ``../shared``
    what: str  # human description for error messages
    upstream: str  # where people outside this machine get the files


KINDS: dict[str, SharedKind] = {
    "models": SharedKind("CODEC_MODEL_DIR", "models/taesd", "TAESD weight file", TAESD_UPSTREAM),
    "metrics": SharedKind(
        "CODEC_METRICS_DIR",
        "models/metrics",
        "LPIPS metric weight file",
        "upstream: the official LPIPS v0.1 linear layers (https://github.com/richzhang/PerceptualSimilarity) "
        "and the torchvision AlexNet / SqueezeNet 1.1 ImageNet weights",
    ),
    "kodak": SharedKind(
        "CODEC_KODAK_DIR",
        "data/kodak",
        "Kodak test image",
        "upstream: the Kodak Lossless True Color Image Suite (https://r0k.us/graphics/kodak/)",
    ),
    "train": SharedKind(
        "CODEC_TRAIN_DIR",
        "data/train",
        "training photo",
        "upstream: BSDS500, Urban100 and an ImageNet sample (see ../shared/data/train/README.md)",
    ),
}

#: Expected sha256 of the weight files in ``../shared/models/taesd`` (from ../shared/README.md).
SHA256: dict[str, str] = {
    "taesd_encoder.safetensors": "a6b8c0fda4aad50784e543389e0239c72c5e31e9775c9e612ea8333bf3a77dcb",
    "taesd_decoder.safetensors": "d903e7cc3ae58f21d985a3498a841fa8b230edccff7ac5d27607b0c557945c6f",
    "taesdxl_encoder.safetensors": "3d78013286676a1a51074831230f90972e573698fe4b11416d6f28e0cd5bbe7e",
    "taesdxl_decoder.safetensors": "ae5256b046b01d577279ed93a55bbb1fb2689e55aa14cfc0f7f841e0160202a5",
    "taesd3_encoder.safetensors": "e5c96f3476bd26fe73e96d701a694f40d7ab48a290494cbbf70a3697d09cab4a",
    "taesd3_decoder.safetensors": "e940e227e2a41919f0735ec423129724666f8b949c8bbce7a04b78ecfb4667de",
    "taef1_encoder.safetensors": "19f5a854ce575fd0a1c0a52938410cf5fb4dc4b8ae71c8887533646d8fe47030",
    "taef1_decoder.safetensors": "bb41500b646d5b8b592b7f3ca5d20d888c3075e209d178d99af609cd7e02a1d4",
    "taef2_encoder.pth": "10a4e1021e89d7551eaf161352da8dbd0b1aa83872ae28b150c1df1ce2f147b6",
    "taef2_decoder.pth": "0a44a31e1ae59eb9dbf9359d24942fd3ef5928162c1800d97a28c61d51be0ab5",
}

_verified: dict[tuple[str, int, int], str] = {}
_verified_lock = threading.Lock()


def project_root() -> Path:
    """The repository root (the folder that holds ``codec/``)."""
    return Path(__file__).resolve().parent.parent


def shared_root() -> Path:
    """``<project root>/../shared``."""
    return project_root().parent / "shared"


def shared_fallback_enabled() -> bool:
    """False when ``CODEC_NO_SHARED_FALLBACK`` is set to a true value."""
    return os.environ.get(NO_SHARED_FALLBACK_ENV, "").strip().lower() not in {"1", "true", "yes", "on"}


def _kind(kind: str) -> SharedKind:
    try:
        return KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown shared-file kind {kind!r}; known: {', '.join(KINDS)}") from None


def candidate_dirs(kind: str, explicit: str | os.PathLike[str] | None = None) -> list[Path]:
    """The directories searched for ``kind``, in order (explicit, env var, ../shared)."""
    spec = _kind(kind)
    if explicit is not None:
        return [Path(explicit).expanduser()]
    dirs: list[Path] = []
    env = os.environ.get(spec.env, "").strip()
    if env:
        dirs.append(Path(env).expanduser())
    if shared_fallback_enabled():
        dirs.append(shared_root() / spec.shared_subdir)
    return dirs


def _not_found(kind: str, name: str | None, searched: list[Path]) -> ModelNotFoundError:
    spec = _kind(kind)
    target = f"{spec.what} '{name}'" if name else f"directory for {spec.what}s"
    where = ", ".join(str(d) for d in searched) if searched else "(nowhere: no directory configured)"
    hint = f"set {spec.env} to the directory that holds it"
    if not shared_fallback_enabled():
        hint += f" ({NO_SHARED_FALLBACK_ENV} is set, so ../shared/{spec.shared_subdir} is not searched)"
    else:
        hint += f" or place it in ../shared/{spec.shared_subdir}"
    return ModelNotFoundError(f"missing {target}; searched: {where}; {hint}; {spec.upstream}")


def resolve_dir(kind: str, explicit: str | os.PathLike[str] | None = None) -> Path:
    """The first existing directory for ``kind`` ("models", "metrics", "kodak", "train").

    Raises ModelNotFoundError (with the env var and upstream source) when none exists.
    """
    searched = candidate_dirs(kind, explicit)
    for d in searched:
        if d.is_dir():
            return d
    raise _not_found(kind, None, searched)


def resolve_file(kind: str, name: str, explicit: str | os.PathLike[str] | None = None) -> Path:
    """The path of ``name`` in the first directory for ``kind`` that contains it (no checksum)."""
    searched = candidate_dirs(kind, explicit)
    for d in searched:
        p = d / name
        if p.is_file():
            return p
    raise _not_found(kind, name, searched)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_sha256(path: str | os.PathLike[str], expected: str | None = None) -> bool:
    """Check ``path`` against ``expected`` (default: the table above, by file name).

    Returns True when checked (or cached as checked), False when no checksum is known for the file.
    A file is hashed at most once per process while its size and mtime stay the same.
    """
    p = Path(path).resolve()
    expected = expected or SHA256.get(p.name)
    if expected is None:
        return False
    st = p.stat()
    key = (str(p), st.st_size, st.st_mtime_ns)
    with _verified_lock:
        cached = _verified.get(key)
    if cached is None:
        cached = sha256_file(p)
        with _verified_lock:
            _verified[key] = cached
    if cached != expected.lower():
        raise WeightsChecksumError(
            f"sha256 mismatch for {p}: expected {expected}, got {cached}; the file is corrupt or a "
            f"different version — replace it ({TAESD_UPSTREAM})"
        )
    return True


def weight_file(name: str, model_dir: str | os.PathLike[str] | None = None, *, verify: bool = True) -> Path:
    """Resolve a TAESD-family weight file and verify its sha256 (once per process)."""
    path = resolve_file("models", name, model_dir)
    if verify:
        verify_sha256(path)
    return path


def metrics_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Directory with the LPIPS weights (``CODEC_METRICS_DIR`` → ../shared/models/metrics)."""
    return resolve_dir("metrics", explicit)


def kodak_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Directory with kodim01.png … kodim24.png (``CODEC_KODAK_DIR`` → ../shared/data/kodak)."""
    return resolve_dir("kodak", explicit)


def train_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Directory with the training photos (``CODEC_TRAIN_DIR`` → ../shared/data/train)."""
    return resolve_dir("train", explicit)


def _clear_cache() -> None:
    """Forget which files were verified (tests)."""
    with _verified_lock:
        _verified.clear()
