"""Preview cache files, in the manner of django-imagekit: specs, a namer, a cache-file strategy
and an asynchronous generator backend.

* A ``PreviewSpec`` says what to render (longest side, format, quality).
* The namer derives a storage name from the photo, the latent's sha256 and the spec's signature,
  so a changed spec or latent never serves a stale file.
* The backend checks whether a cache file exists and, if not, queues the ``render_previews``
  worker task (at most once per ``MARKER_SECONDS`` thanks to a cache marker).
* The strategy says when files are made: ``optimistic`` (right after the encode, and again on a
  miss) or ``just_in_time`` (only on a miss).

The latent stays the only source of truth: deleting every cache file (``manage.py
purge_previews``) loses nothing.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.core.files.storage import default_storage
from PIL import Image

from . import naming

log = logging.getLogger(__name__)

ROOT = "previews"
MARKER_SECONDS = 60


@dataclass(frozen=True)
class PreviewSpec:
    name: str
    max_side: int
    quality: int

    @property
    def format(self) -> str:
        return settings.GALLERY_PREVIEW_FORMAT.upper()

    @property
    def extension(self) -> str:
        return {"WEBP": "webp", "JPEG": "jpg"}[self.format]

    @property
    def content_type(self) -> str:
        return {"WEBP": "image/webp", "JPEG": "image/jpeg"}[self.format]

    def signature(self) -> str:
        return f"{self.name}:{self.max_side}:{self.format}:{self.quality}:v1"

    def render(self, image: Image.Image) -> bytes:
        """Scale down (never up) to fit ``max_side`` and encode."""
        img = image.convert("RGB")
        if max(img.size) > self.max_side:
            img.thumbnail((self.max_side, self.max_side), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        if self.format == "WEBP":
            img.save(out, "WEBP", quality=self.quality, method=4)
        else:
            img.save(out, "JPEG", quality=self.quality, optimize=True, progressive=True)
        return out.getvalue()


SPECS: dict[str, PreviewSpec] = {
    "thumb": PreviewSpec("thumb", 320, 82),
    "display": PreviewSpec("display", 1600, 90),
}


def get_spec(name: str) -> PreviewSpec:
    try:
        return SPECS[name]
    except KeyError:
        raise KeyError(f"unknown preview spec {name!r}") from None


# --- namer ------------------------------------------------------------------------------------
def cache_name(photo, spec: PreviewSpec) -> str:
    digest = hashlib.sha1(f"{photo.latent_sha256}|{spec.signature()}".encode()).hexdigest()[:12]
    return f"{ROOT}/{photo.pk}/{spec.name}-{digest}.{spec.extension}"


@dataclass(frozen=True)
class CacheFile:
    photo: object
    spec: PreviewSpec

    @property
    def name(self) -> str:
        return cache_name(self.photo, self.spec)

    @property
    def version(self) -> str:
        """Changes whenever the file would change (used as a cache-busting query string)."""
        return self.name.rsplit("-", 1)[-1].split(".")[0]

    def exists(self) -> bool:
        return default_storage.exists(self.name)


# --- async backend ----------------------------------------------------------------------------
class CeleryBackend:
    """Queues ``render_previews`` on the ``gpu`` queue; a short-lived cache marker avoids flooding."""

    def schedule(self, photo, spec_names: Iterable[str]) -> bool:
        names = sorted(spec_names)
        marker = f"gallery:preview-queued:{photo.pk}:{photo.latent_sha256[:12]}:{','.join(names)}"
        if not cache.add(marker, 1, timeout=MARKER_SECONDS):
            return False
        from .queueing import publish
        from .tasks import render_previews

        if not publish(render_previews, str(photo.pk), names):
            cache.delete(marker)  # try again on the next request
            return False
        return True


# --- strategies -------------------------------------------------------------------------------
class JustInTime:
    def __init__(self, backend: CeleryBackend) -> None:
        self.backend = backend

    def on_source_ready(self, photo) -> None:
        return None

    def on_access(self, cache_file: CacheFile) -> None:
        self.backend.schedule(cache_file.photo, [cache_file.spec.name])


class Optimistic(JustInTime):
    def on_source_ready(self, photo) -> None:
        self.backend.schedule(photo, SPECS)


def strategy() -> JustInTime:
    kind = settings.GALLERY_PREVIEW_STRATEGY
    if kind == "optimistic":
        return Optimistic(CeleryBackend())
    if kind == "just_in_time":
        return JustInTime(CeleryBackend())
    raise ValueError(f"GALLERY_PREVIEW_STRATEGY must be 'optimistic' or 'just_in_time', not {kind!r}")


# --- public helpers ---------------------------------------------------------------------------
def lookup(photo, spec_name: str) -> CacheFile | None:
    """The cache file if it exists; otherwise queue its generation and return None (placeholder)."""
    if not photo.is_ready or not photo.latent_sha256:
        return None
    cache_file = CacheFile(photo, get_spec(spec_name))
    if cache_file.exists():
        return cache_file
    strategy().on_access(cache_file)
    return None


def source_ready(photo) -> None:
    """Called once the latent is committed."""
    strategy().on_source_ready(photo)


def render(photo, spec_names: Iterable[str], decode) -> list[str]:
    """Worker side: write the missing cache files of ``photo``; ``decode(bytes) -> PIL.Image``.

    The latent is decoded at most once, and only when some file is missing.
    """
    missing = [CacheFile(photo, get_spec(n)) for n in spec_names]
    missing = [cf for cf in missing if not cf.exists()]
    if not missing:
        return []
    with default_storage.open(photo.latent.name, "rb") as fh:
        image = decode(fh.read())
    written = []
    for cf in missing:
        default_storage.save(cf.name, naming.content_file(cf.spec.render(image), cf.spec.content_type))
        written.append(cf.name)
    return written


def _walk(path: str) -> Iterable[str]:
    try:
        dirs, files = default_storage.listdir(path)
    except FileNotFoundError:
        return
    for f in files:
        yield f"{path}/{f}"
    for d in dirs:
        yield from _walk(f"{path}/{d}")


def purge(photo_id=None) -> tuple[int, int]:
    """Delete cache files (of one photo id, or all); returns (files, bytes) removed."""
    root = f"{ROOT}/{photo_id}" if photo_id is not None else ROOT
    count = total = 0
    for name in list(_walk(root)):
        try:
            total += default_storage.size(name)
            default_storage.delete(name)
            count += 1
        except FileNotFoundError:
            continue
    return count, total


def disk_usage() -> tuple[int, int]:
    """(files, bytes) of all preview cache files in storage."""
    count = total = 0
    for name in _walk(ROOT):
        try:
            total += default_storage.size(name)
        except FileNotFoundError:
            continue
        count += 1
    return count, total
