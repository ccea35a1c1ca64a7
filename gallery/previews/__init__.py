"""Preview cache files, in the shape of django-imagekit.

* ``specs``: what to render (``PreviewSpec``: longest side, format, quality), registered by name.
* ``namers``: the storage name from the photo, the latent's sha256 and the spec's signature.
* ``cachefiles``: ``CacheFile`` with its existence state remembered in the cache (no storage call
  per tile per poll once a file exists).
* ``backends``: who renders a missing file (``CeleryBackend``: the ``gallery.render_previews`` task).
* ``strategies``: when files are made (``Optimistic``: after the encode and on a miss;
  ``JustInTime``: on a miss only).

The public functions below are what the rest of the gallery uses. ``lookup`` only reads;
``request`` is what a page calls (a miss is handed to the strategy); ``render`` runs in the worker.
The latent stays the only source of truth: deleting every cache file (``manage.py
purge_previews``) loses nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.core.files.storage import default_storage

from .. import storage
from .backends import MARKER_SECONDS, Backend, CeleryBackend
from .cachefiles import CacheFile, forget
from .namers import source_hash as cache_name
from .specs import SPECS, PreviewSpec, register
from .specs import get as get_spec
from .strategies import JustInTime, Optimistic, get_strategy

__all__ = [
    "MARKER_SECONDS",
    "SPECS",
    "Backend",
    "CacheFile",
    "CeleryBackend",
    "JustInTime",
    "Optimistic",
    "PreviewSpec",
    "cache_name",
    "disk_usage",
    "eager_specs",
    "get_spec",
    "get_strategy",
    "lookup",
    "purge",
    "register",
    "render",
    "request",
    "source_ready",
    "strategy",
    "write_from_image",
]


def strategy() -> JustInTime:
    """The configured strategy (``GALLERY_PREVIEW_STRATEGY``) with the Celery backend."""
    return get_strategy()


def lookup(photo, spec_name: str) -> CacheFile | None:
    """The cache file when it exists, else None. A pure read: it never schedules anything."""
    if not photo.is_ready or not photo.latent_sha256:
        return None
    cache_file = CacheFile(photo, get_spec(spec_name))
    return cache_file if cache_file.exists() else None


def request(photo, spec_name: str, *, strategy_: JustInTime | None = None) -> CacheFile | None:
    """What a page calls: ``lookup``, and on a miss of a ready photo tell the strategy (which may
    queue a render). Never raises on cache/broker trouble; the page shows its placeholder."""
    found = lookup(photo, spec_name)
    if found is None and photo.is_ready and photo.latent_sha256:
        (strategy_ or strategy()).on_missing(CacheFile(photo, get_spec(spec_name)))
    return found


def source_ready(photo) -> None:
    """Called once the latent is committed (worker side, on commit)."""
    strategy().on_source_ready(photo)


def render(photo, spec_names: Iterable[str], decode: Callable[[bytes], object]) -> list[str]:
    """Worker side: write the missing cache files of ``photo``; ``decode(bytes) -> PIL.Image``.

    The latent is decoded at most once, and only when some file is missing.
    """
    # smallest first: grid tiles appear before the large renditions
    wanted = sorted((CacheFile(photo, get_spec(n)) for n in spec_names), key=lambda cf: cf.spec.max_side)
    missing = [cf for cf in wanted if not cf.exists()]
    if not missing:
        return []
    with default_storage.open(photo.latent.name, "rb") as fh:
        image = decode(fh.read())
    return [cf.save(cf.spec.render(image)) for cf in missing]


def write_from_image(photo, spec_names: Iterable[str], image) -> list[str]:
    """Worker side, during the encode: write the cache files of ``photo`` from ``image``, the picture
    the decoder shows for its latent (``codec.encode_result``'s reconstruction: a PIL image or an
    HxWx3 uint8 array), so no render task decodes the latent again. ``photo.latent_sha256`` must be
    the final latent's (it names the files); smallest first, existing files are left alone."""
    from PIL import Image

    if not isinstance(image, Image.Image):
        image = Image.fromarray(image)
    wanted = sorted((CacheFile(photo, get_spec(n)) for n in spec_names), key=lambda cf: cf.spec.max_side)
    return [cf.save(cf.spec.render(image)) for cf in wanted if not cf.exists()]


def eager_specs() -> list[str]:
    """The specs made right after the encode (the on-demand ones only when asked for)."""
    return sorted(name for name, spec in SPECS.items() if not spec.on_demand)


def purge(photo_id=None) -> tuple[int, int]:
    """Delete cache files (of one photo id, or all); returns (files, bytes) removed."""
    root = storage.preview_folder(photo_id)
    count = total = 0
    for name in list(storage.walk(root)):
        forget(name)
        try:
            size = default_storage.size(name)
            default_storage.delete(name)
        except FileNotFoundError:
            continue
        count, total = count + 1, total + size
    if photo_id is not None:
        storage.remove_folder_if_empty(root)
    return count, total


def disk_usage() -> tuple[int, int]:
    """(files, bytes) of all preview cache files in storage."""
    count = total = 0
    for name in storage.walk(storage.preview_folder()):
        try:
            total += default_storage.size(name)
        except FileNotFoundError:
            continue
        count += 1
    return count, total
