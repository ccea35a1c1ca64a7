"""Namers: a cache file's storage name from the photo and the spec (django-imagekit's namers).

The name holds a digest of the latent's sha256 and the spec's signature, so a changed spec or a
re-encoded latent never serves a stale file, and the digest doubles as the URL's cache-buster.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from .. import storage
from .specs import PreviewSpec

Namer = Callable[[object, PreviewSpec], str]


def digest(photo, spec: PreviewSpec) -> str:
    return hashlib.sha1(f"{photo.latent_sha256}|{spec.signature()}".encode()).hexdigest()[:12]


def source_hash(photo, spec: PreviewSpec) -> str:
    """``previews/<photo id>/<spec>-<digest>.<ext>`` (the default namer)."""
    return storage.preview_name(photo.pk, spec.name, digest(photo, spec), spec.format)
