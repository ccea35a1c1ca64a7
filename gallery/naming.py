"""Generated storage names (never derived from user file names) and content types."""

from __future__ import annotations

import uuid

LATENT_EXT = "sdl"
LATENT_CONTENT_TYPE = "application/octet-stream"
EXTENSIONS = {"jpeg": "jpg", "webp": "webp", "avif": "avif"}
CONTENT_TYPES = {
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "avif": "image/avif",
    "png": "image/png",
}


def latent_name(photo_id: uuid.UUID | str) -> str:
    return f"latents/{photo_id}.{LATENT_EXT}"


def comparison_name(photo_id: uuid.UUID | str, fmt: str) -> str:
    return f"comparisons/{photo_id}/{fmt}.{EXTENSIONS[fmt]}"


def content_type_for_name(name: str) -> str:
    ext = name.rsplit(".", 1)[-1].lower()
    by_ext = {
        "jpg": "image/jpeg",
        "jpeg": "image/jpeg",
        "webp": "image/webp",
        "avif": "image/avif",
        "png": "image/png",
        LATENT_EXT: LATENT_CONTENT_TYPE,
    }
    return by_ext.get(ext, "application/octet-stream")


def content_file(data: bytes, content_type: str):
    """A ContentFile that tells S3-compatible storages its Content-Type (FileSystemStorage ignores it)."""
    from django.core.files.base import ContentFile

    f = ContentFile(data)
    f.content_type = content_type
    return f
