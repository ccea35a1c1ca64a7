"""One resolver for every shared file (weights, metric weights, data sets), with sha256 checks and download.

Lookup order (``codec.resources.locations``): explicit folder → environment variable → ``../shared``
(unless ``CODEC_NO_SHARED_FALLBACK=1``) → user cache (``$CODEC_CACHE_DIR``, else
``$XDG_CACHE_HOME/latent-gallery``, else ``~/.cache/latent-gallery``) → for catalogued weight files, a
download into the user cache from the pinned upstream URL or ``$CODEC_WEIGHTS_MIRROR``
(``codec.resources.download``; off with ``CODEC_OFFLINE=1``).

A catalogued file found anywhere is checked against its sha256 (hashed once per process while its
size and mtime stay the same); a mismatch raises WeightsChecksumError instead of trying the next
place, so a damaged file is fixed, never silently shadowed. Imports neither torch nor Django.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import TextIO

from codec.errors import ModelNotFoundError, WeightsChecksumError
from codec.resources import download
from codec.resources.catalog import FILES, SHA256, RemoteFile, files_of_kind
from codec.resources.locations import (
    KINDS,
    NO_SHARED_FALLBACK_ENV,
    cache_dir,
    cache_root,
    candidate_dirs,
    kind,
    project_root,
    shared_fallback_enabled,
    shared_root,
)

__all__ = [
    "FILES",
    "KINDS",
    "NO_SHARED_FALLBACK_ENV",
    "SHA256",
    "RemoteFile",
    "cache_root",
    "candidate_dirs",
    "ensure_file",
    "files_of_kind",
    "kodak_dir",
    "metrics_dir",
    "metrics_file",
    "project_root",
    "resolve_dir",
    "resolve_file",
    "sha256_file",
    "shared_fallback_enabled",
    "shared_root",
    "train_dir",
    "verify_sha256",
    "weight_file",
]

_verified: dict[tuple[str, int, int], str] = {}
_verified_lock = threading.Lock()


def _not_found(kind_name: str, name: str | None, searched: list[Path], extra: str = "") -> ModelNotFoundError:
    spec = kind(kind_name)
    target = f"{spec.what} '{name}'" if name else f"directory for {spec.what}s"
    where = ", ".join(str(d) for d in searched)
    hint = f"set {spec.env} to the directory that holds it"
    if not shared_fallback_enabled():
        hint += f" ({NO_SHARED_FALLBACK_ENV} is set, so ../shared/{spec.subdir} is not searched)"
    else:
        hint += f" or place it in ../shared/{spec.subdir}"
    head = f"; {extra}" if extra else ""
    return ModelNotFoundError(f"missing {target}{head}; searched: {where}; {hint}; {spec.upstream}")


def resolve_dir(kind_name: str, explicit: str | os.PathLike[str] | None = None) -> Path:
    """The first existing directory for ``kind_name`` ("models", "metrics", "kodak", "train").

    Raises ModelNotFoundError (with the env var and upstream source) when none exists.
    """
    searched = candidate_dirs(kind_name, explicit)
    for d in searched:
        if d.is_dir():
            return d
    raise _not_found(kind_name, None, searched)


def _find(
    kind_name: str, name: str, explicit: str | os.PathLike[str] | None
) -> tuple[Path | None, list[Path]]:
    searched = candidate_dirs(kind_name, explicit)
    for d in searched:
        p = d / name
        if p.is_file():
            return p, searched
    return None, searched


def resolve_file(
    kind_name: str,
    name: str,
    explicit: str | os.PathLike[str] | None = None,
    *,
    verify: bool = True,
    fetch: bool = True,
    progress: TextIO | None = None,
) -> Path:
    """The path of ``name`` for ``kind_name``: found (and sha256-checked) or downloaded into the cache.

    ``fetch=False`` (or ``CODEC_OFFLINE=1``) never downloads; files outside the catalogue are never
    downloaded nor checked.
    """
    path, searched = _find(kind_name, name, explicit)
    if path is not None:
        if verify:
            verify_sha256(path)
        return path
    remote = FILES.get(name)
    if remote is None or remote.kind != kind_name or not fetch:
        raise _not_found(kind_name, name, searched)
    try:
        return download.fetch(remote, cache_dir(kind_name), progress=progress)
    except ModelNotFoundError as exc:
        raise _not_found(kind_name, name, searched, str(exc)) from exc


def ensure_file(
    name: str, dest: str | os.PathLike[str] | None = None, *, progress: TextIO | None = None
) -> tuple[Path, bool]:
    """Make the catalogued file ``name`` available; return ``(path, downloaded)``.

    Without ``dest``: the normal lookup (downloading into the user cache if nowhere else). With
    ``dest``: the file must end up in that folder (kept if already there and intact, else fetched).
    """
    remote = FILES.get(name)
    if remote is None:
        raise ModelNotFoundError(f"unknown weight file {name!r}; known: {', '.join(FILES)}")
    if dest is None:
        found, _ = _find(remote.kind, name, None)
        return resolve_file(remote.kind, name, progress=progress), found is None
    target = Path(dest).expanduser() / name
    if target.is_file():
        try:
            verify_sha256(target)
            return target, False
        except WeightsChecksumError:
            pass  # replaced below by a verified download (atomic rename over it)
    return download.fetch(remote, target.parent, progress=progress), True


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_sha256(path: str | os.PathLike[str], expected: str | None = None) -> bool:
    """Check ``path`` against ``expected`` (default: the catalogue, by file name).

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
        remote = FILES.get(p.name)
        fix = download.manual_step(remote, p.parent) if remote else "replace it"
        raise WeightsChecksumError(
            f"sha256 mismatch for {p}: expected {expected}, got {cached}; the file is corrupt or a "
            f"different version — delete it and run `python -m codec fetch-weights`, or {fix}"
        )
    return True


def weight_file(name: str, model_dir: str | os.PathLike[str] | None = None, *, verify: bool = True) -> Path:
    """Resolve a TAESD-family weight file (downloading it if needed) and verify its sha256."""
    return resolve_file("models", name, model_dir, verify=verify)


def metrics_file(name: str, explicit: str | os.PathLike[str] | None = None) -> Path:
    """Resolve one LPIPS metric weight file (downloading it if it has a source) and verify it."""
    return resolve_file("metrics", name, explicit)


def metrics_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Directory with the LPIPS weights (``CODEC_METRICS_DIR`` → ../shared/models/metrics → cache)."""
    return resolve_dir("metrics", explicit)


def kodak_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Directory with kodim01.png … kodim24.png (``CODEC_KODAK_DIR`` → ../shared/data/kodak → cache)."""
    return resolve_dir("kodak", explicit)


def train_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Directory with the training photos (``CODEC_TRAIN_DIR`` → ../shared/data/train → cache)."""
    return resolve_dir("train", explicit)


def _clear_cache() -> None:
    """Forget which files were verified (tests)."""
    with _verified_lock:
        _verified.clear()
