"""Preview specs: what a cache file holds (longest side, format, quality), as data.

A spec is registered by name; the views, the namer and the worker find it through ``get``. Add a
spec with ``register(PreviewSpec(...))`` (e.g. a download rendition) — nothing else changes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from django.conf import settings
from PIL import Image

from .. import storage


@dataclass(frozen=True)
class PreviewSpec:
    name: str
    max_side: int
    quality: int
    #: None: the site-wide ``GALLERY_PREVIEW_FORMAT``; else "WEBP" / "JPEG" / "PNG" for this spec only
    fixed_format: str | None = None
    #: part of the signature: bump it when ``render`` changes so every old file is replaced
    version: int = 1
    #: rendered only when asked for (full-resolution renditions), never right after the encode
    on_demand: bool = False

    @property
    def format(self) -> str:
        return (self.fixed_format or settings.GALLERY_PREVIEW_FORMAT).upper()

    @property
    def extension(self) -> str:
        return storage.extension(self.format)

    @property
    def content_type(self) -> str:
        return storage.content_type(self.format)

    def signature(self) -> str:
        """Everything that changes the rendered bytes (the namer hashes it with the latent's sha256)."""
        return f"{self.name}:{self.max_side}:{self.format}:{self.quality}:v{self.version}"

    def render(self, image: Image.Image) -> bytes:
        """Scale down (never up) to fit ``max_side`` and encode."""
        img = image.convert("RGB")
        if max(img.size) > self.max_side:
            img.thumbnail((self.max_side, self.max_side), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        if self.format == "WEBP":
            img.save(out, "WEBP", quality=self.quality, method=4)
        elif self.format == "PNG":
            img.save(out, "PNG", optimize=True)
        else:
            img.save(out, "JPEG", quality=self.quality, optimize=True, progressive=True)
        return out.getvalue()


SPECS: dict[str, PreviewSpec] = {}


def register(spec: PreviewSpec) -> PreviewSpec:
    SPECS[spec.name] = spec
    return spec


def get(name: str) -> PreviewSpec:
    try:
        return SPECS[name]
    except KeyError:
        raise KeyError(f"unknown preview spec {name!r}") from None


THUMB = register(PreviewSpec("thumb", 320, 82))
DISPLAY = register(PreviewSpec("display", 1600, 90))
# Full resolution, on demand: the viewer's zoom past the display preview (WebP's largest side is
# 16,383 px), and the decoded-photo downloads (PNG, JPEG) of the photo page.
FULL = register(PreviewSpec("full", 16383, 90, fixed_format="WEBP", on_demand=True))
DOWNLOAD_PNG = register(PreviewSpec("png", 65535, 0, fixed_format="PNG", on_demand=True))
DOWNLOAD_JPEG = register(PreviewSpec("jpeg", 65535, 92, fixed_format="JPEG", on_demand=True))
