"""Test data builders for gallery rows. Files written here are real images (comparisons, previews);
the latent bytes of ``ready_photo`` are placeholder bytes: tests that need a real latent run the
real encode task instead (test_tasks.py, test_integration.py)."""

from __future__ import annotations

import hashlib
import io

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from PIL import Image

from gallery import storage
from gallery.models import Comparison, Photo, StagedUpload
from tests.conftest import synthetic_rgb


def image_bytes(width: int, height: int, fmt: str, **kw) -> bytes:
    out = io.BytesIO()
    Image.fromarray(synthetic_rgb(width, height)).save(out, fmt, **kw)
    return out.getvalue()


def pending_photo(
    owner, *, title="pic.png", width=64, height=48, staged: bytes | None = None, **fields
) -> Photo:
    data = staged if staged is not None else image_bytes(width, height, "PNG")
    photo = Photo.objects.create(
        owner=owner,
        title=title,
        target_bytes=256,
        target_bpp=0.15,
        original_bytes=len(data),
        original_format="PNG",
        original_width=width,
        original_height=height,
        **fields,
    )
    StagedUpload.objects.create(
        photo=photo, data=data, size=len(data), sha256=hashlib.sha256(data).hexdigest()
    )
    return photo


def ready_photo(
    owner,
    *,
    title="pic.png",
    width=64,
    height=48,
    latent_bytes=300,
    original_bytes=9000,
    comparisons=("jpeg", "webp"),
    when=None,
) -> Photo:
    latent = bytes(range(256)) * (latent_bytes // 256 + 1)
    latent = latent[:latent_bytes]
    photo = Photo.objects.create(
        owner=owner,
        title=title,
        status=Photo.Status.READY,
        target_bytes=latent_bytes,
        target_bpp=None,
        size=Photo.Size.BUDGET,
        original_bytes=original_bytes,
        original_format="PNG",
        original_width=width,
        original_height=height,
        latent_bytes=latent_bytes,
        latent_bpp=latent_bytes * 8 / (width * height),
        latent_sha256=hashlib.sha256(latent).hexdigest(),
        codec_model="taesd",
        ready_at=when or timezone.now(),
        encode_seconds=1.5,
        attempts=1,
    )
    photo.latent.name = default_storage.save(storage.latent_name(photo.pk), ContentFile(latent))
    photo.save()
    for fmt in comparisons:
        pil = {"jpeg": "JPEG", "webp": "WEBP", "avif": "AVIF"}[fmt]
        data = image_bytes(width, height, pil, quality=5)
        name = default_storage.save(storage.comparison_name(photo.pk, fmt), ContentFile(data))
        Comparison.objects.create(
            photo=photo, fmt=fmt, file=name, bytes=len(data), quality=5, width=width, height=height
        )
    return photo


def codec_options_of_encode(photo: Photo, monkeypatch) -> dict:
    """The keyword arguments the worker's pipeline passes to ``codec.encode_result`` for ``photo``
    (the codec is stopped there with an input error, so nothing is encoded)."""
    import pytest

    import codec
    from gallery.worker import pipeline

    seen: list[dict] = []

    def encode_result(rgb, **kw):
        seen.append(kw)
        raise codec.InputError("stop here")

    monkeypatch.setattr(codec, "encode_result", encode_result)
    with pytest.raises(pipeline.PermanentFailure):
        pipeline.encode(str(photo.pk))
    return seen[0]
