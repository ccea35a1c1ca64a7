"""A photo's life on the worker: staged original → latent + comparison files → ready.

Runs inside Celery tasks only (``gallery/worker/tasks.py``); this is the one place that calls
``codec.encode``. Every step is idempotent: the storage names are fixed per photo (a re-run
overwrites its own files) and a photo that is already ready is left alone.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .. import previews, storage
from ..models import Comparison, Photo, StagedUpload
from .runtime import is_setup_problem, load_codec

log = logging.getLogger(__name__)


class PermanentFailure(Exception):
    """The photo can never be encoded (bad input); it has been marked failed."""


class SetupProblem(Exception):
    """This worker cannot encode right now (weights, settings, memory): the photo waits, original kept.

    Raised instead of a failure so that a broken deployment never costs a user's photo: the task is
    retried later (and the sweeper re-queues it), and the attempt is not counted against the photo.
    """


WAITING_PREFIX = "Waiting for a working worker: "


@dataclass
class ComparisonFile:
    fmt: str
    data: bytes
    quality: int | None
    width: int
    height: int
    scale: float
    fits: bool
    note: str


def claim(photo_id: str) -> Photo | None:
    """Move the photo to ``encoding``; None when there is nothing to do (gone or already ready)."""
    with transaction.atomic():
        photo = Photo.objects.select_for_update().filter(pk=photo_id).first()
        if photo is None:
            log.info("photo %s no longer exists; nothing to encode", photo_id)
            return None
        if photo.status == Photo.Status.READY:
            log.info("photo %s is already ready; nothing to do", photo_id)
            return None
        if not StagedUpload.objects.filter(photo=photo).exists():
            _fail(photo, "The uploaded original is no longer staged; please upload the photo again.")
            return None
        if photo.attempts >= settings.GALLERY_MAX_ATTEMPTS:
            _fail(
                photo,
                f"Encoding was interrupted or failed {photo.attempts} times; giving up on this photo.",
                keep_staged=True,
            )
            return None
        photo.status = Photo.Status.ENCODING
        photo.error = ""
        photo.attempts += 1
        photo.encoding_started_at = timezone.now()
        photo.save(update_fields=["status", "error", "attempts", "encoding_started_at", "updated_at"])
        return photo


def encode(photo_id: str) -> str:
    """Encode one photo end to end; returns a short outcome word for logs/tests."""
    photo = claim(photo_id)
    if photo is None:
        return "noop"
    codec = load_codec()
    started = time.monotonic()
    staged = bytes(StagedUpload.objects.values_list("data", flat=True).get(photo_id=photo.pk))
    try:
        rgb = codec.load_image(staged, max_pixels=settings.GALLERY_MAX_PIXELS)
        data = codec.encode(
            rgb,
            max_bytes=photo.target_bytes,
            model=settings.GALLERY_CODEC_MODEL,
            effort=settings.GALLERY_ENCODE_EFFORT,
        )
        meta = codec.info(data)
        codec_seconds = time.monotonic() - started
    except codec.InputError as exc:
        # only an error about the photo's own bytes may drop its original
        mark_failed(photo.pk, f"The codec could not encode this image: {exc}", keep_staged=False)
        raise PermanentFailure(str(exc)) from exc
    except Exception as exc:
        if is_setup_problem(exc):
            log.error("worker cannot encode photo %s (setup problem, original kept): %s", photo.pk, exc)
            mark_waiting(photo.pk, f"{WAITING_PREFIX}{exc}")
            raise SetupProblem(str(exc)) from exc
        raise  # any other error: the task retries with the staged original kept
    comparisons = make_comparisons(rgb, len(data))
    latent_name = storage.save(storage.latent_name(photo.pk), data, storage.LATENT_CONTENT_TYPE)
    stored = {
        c.fmt: storage.save(storage.comparison_name(photo.pk, c.fmt), c.data, storage.content_type(c.fmt))
        for c in comparisons
    }
    seconds = time.monotonic() - started
    commit(photo.pk, latent_name, data, meta, comparisons, stored, seconds)
    log.info(
        "photo %s ready: %d bytes (target %d) in %.1f s (codec %.1f s, comparisons %.1f s)",
        photo.pk, len(data), photo.target_bytes, seconds, codec_seconds, seconds - codec_seconds,
    )
    return "ready"


def make_comparisons(rgb, budget: int) -> list[ComparisonFile]:
    """JPEG/WebP/AVIF at ≤ ``budget`` bytes from the original pixels (downscaled when needed)."""
    from codec import baselines

    out = []
    for fmt in settings.GALLERY_COMPARISON_FORMATS:
        floor = settings.GALLERY_COMPARISON_MIN_QUALITY
        if floor is None:  # the rule: downscale only when even the lowest quality is too big
            floor = baselines.FORMATS[fmt].q_min
        try:
            res = baselines.encode_at_budget(rgb, fmt, budget, mode="downscale", min_quality=floor)
        except Exception:  # one missing comparison must not cost the photo
            log.warning("no %s comparison at %d bytes", fmt, budget, exc_info=True)
            continue
        if not res.data:
            log.warning("no %s comparison at %d bytes: %s", fmt, budget, res.note)
            continue
        out.append(
            ComparisonFile(
                fmt=fmt,
                data=bytes(res.data),
                quality=res.quality,
                width=res.width,
                height=res.height,
                scale=float(res.scale),
                fits=bool(res.fits),
                note=res.note or "",
            )
        )
    return out


def commit(photo_id, latent_name, data, meta, comparisons, stored, seconds) -> None:
    """Record the latent and comparisons and delete the staged original, atomically."""
    with transaction.atomic():
        photo = Photo.objects.select_for_update().get(pk=photo_id)
        if photo.status == Photo.Status.READY:  # a duplicate delivery won the race; keep its result
            return
        photo.latent.name = latent_name
        photo.latent_bytes = len(data)
        photo.latent_bpp = len(data) * 8 / photo.pixels
        photo.latent_sha256 = hashlib.sha256(data).hexdigest()
        photo.codec_model = str(meta.get("model") or "")  # None for a file the guard stored as AVIF
        photo.codec_info = {k: v for k, v in meta.items() if _jsonable(v)}
        photo.fidelity_min = meta.get("fidelity_min")
        photo.fidelity_mean = meta.get("fidelity_mean")
        photo.fidelity_floor_met = meta.get("fidelity_floor_met")
        photo.fidelity_floor = meta.get("fidelity_floor")
        photo.fidelity_guard = str(meta.get("guard") or "")
        photo.guard_bytes = meta.get("guard_bytes")
        photo.status = Photo.Status.READY
        photo.error = ""
        photo.encode_seconds = seconds
        photo.ready_at = timezone.now()
        photo.save()
        photo.comparisons.exclude(fmt__in=list(stored)).delete()
        for c in comparisons:
            Comparison.objects.update_or_create(
                photo=photo,
                fmt=c.fmt,
                defaults=dict(
                    file=stored[c.fmt],
                    bytes=len(c.data),
                    quality=c.quality,
                    width=c.width,
                    height=c.height,
                    scale=c.scale,
                    fits=c.fits,
                    note=c.note[:255],
                ),
            )
        StagedUpload.objects.filter(photo=photo).delete()
        transaction.on_commit(lambda: previews.source_ready(photo))


def mark_failed(photo_id, message: str, *, keep_staged: bool) -> None:
    with transaction.atomic():
        photo = Photo.objects.select_for_update().filter(pk=photo_id).first()
        if photo is not None and photo.status != Photo.Status.READY:
            _fail(photo, message, keep_staged=keep_staged)


def mark_waiting(photo_id, message: str) -> None:
    """Back to ``pending`` with the reason shown, without counting the attempt against the photo."""
    with transaction.atomic():
        photo = Photo.objects.select_for_update().filter(pk=photo_id).first()
        if photo is None or photo.status == Photo.Status.READY:
            return
        photo.status = Photo.Status.PENDING
        photo.error = message[:2000]
        photo.attempts = max(0, photo.attempts - 1)
        photo.save(update_fields=["status", "error", "attempts", "updated_at"])


def mark_retrying(photo_id, message: str) -> None:
    Photo.objects.filter(pk=photo_id).exclude(status=Photo.Status.READY).update(
        status=Photo.Status.PENDING, error=message[:2000], updated_at=timezone.now()
    )


def _fail(photo: Photo, message: str, *, keep_staged: bool = False) -> None:
    photo.status = Photo.Status.FAILED
    photo.error = message[:2000]
    photo.save(update_fields=["status", "error", "updated_at"])
    if not keep_staged:
        StagedUpload.objects.filter(photo=photo).delete()


def _jsonable(value) -> bool:
    return isinstance(value, str | int | float | bool | type(None) | list | dict)
