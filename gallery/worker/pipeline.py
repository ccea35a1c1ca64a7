"""A photo's life on the worker: staged original → latent + previews → READY → comparisons.

Runs inside Celery tasks only (``gallery/worker/tasks.py``); this is the one place that calls
``codec.encode``. Every step is idempotent: the storage names are fixed per photo (a re-run
overwrites its own files) and a photo that is already ready is left alone.

Each thing is done once (issue 13): ``codec.encode_result`` hands back, with the file, the picture
the decoder shows for it (the encoder's own final decode), and the eager previews (thumb, display)
are written from it before READY is committed, so no render task decodes the latent again. The
JPEG/WebP/AVIF comparisons come after READY, in the same task: READY never waits for them. Between
the two, the second look for small faces (`second_look`, issue 12): a probe for faces too small for the
encoder's own detection at this photo size, and when one was redrawn the photo is coded again with the
probe on and the new file replaces the first (`replace_latent`) — the original is still staged then.

Data safety: the latent is committed (READY) first, with the staged original kept; the original is
deleted only in the transaction that stores the comparisons, or when they are given up (bad luck
with memory/time limits, or the task's retries spent: ``mark_failed`` on a READY photo). A task
redelivered after a crash between the two finds the photo READY with its original still staged and
only makes the comparisons (``finish_comparisons``). The sweeper re-queues a READY photo whose
original is still staged when its lease expired or when it has had no lease and no queued message
for ``GALLERY_SWEEP_PENDING_AFTER`` seconds (gallery/sweeper.py); the task then only finishes the
comparisons. The staged original is deleted only once the photo is READY (checked under the row lock).
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .. import previews, sizes, storage
from ..models import Comparison, Photo, StagedUpload
from ..previews.cachefiles import forget
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


def encode(photo_id: str, *, effort: str | None = None) -> str:
    """Encode one photo end to end; returns a short outcome word for logs/tests.

    ``effort``: the codec effort of this attempt (the task passes the photo's own, lowered after an
    attempt over a limit); None = the photo's ``encode_effort``, else ``GALLERY_ENCODE_EFFORT``."""
    if comparisons_pending(photo_id):  # redelivered after READY: only the comparisons are left
        return COMPARE_ELSEWHERE if settings.GALLERY_COMPARISONS_QUEUE else finish_comparisons(photo_id)
    photo = claim(photo_id)
    if photo is None:
        return "noop"
    codec = load_codec()
    started = time.monotonic()
    row = StagedUpload.objects.filter(photo_id=photo.pk).values_list("data", flat=True).first()
    if row is None and not Photo.objects.filter(pk=photo.pk).exists():
        return "deleted"  # by its owner, after the claim
    if row is None:
        raise StagedUpload.DoesNotExist(f"photo {photo.pk} has no staged original")
    staged = bytes(row)
    try:
        rgb = codec.load_image(staged, max_pixels=settings.GALLERY_MAX_PIXELS)
        budget = sizes.encode_budget(photo.size, photo.target_bytes, settings.GALLERY_PRESET_TARGET,
                                     settings.GALLERY_PRESET_TARGET_HEADROOM)
        result = codec.encode_result(
            rgb,
            model=settings.GALLERY_CODEC_MODEL,
            effort=effort or photo.encode_effort or settings.GALLERY_ENCODE_EFFORT,
            check_text=settings.GALLERY_CHECK_TEXT,
            **budget,  # type: ignore[arg-type]
        )
        data, meta = result.data, result.info
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
    del staged
    if not Photo.objects.filter(pk=photo.pk).exists():  # deleted by its owner during the encode
        log.info("photo %s was deleted during its encode; nothing stored", photo.pk)
        return "deleted"
    latent_name = storage.save(storage.latent_name(photo.pk), data, storage.LATENT_CONTENT_TYPE)
    rendered = write_previews(photo, data, result.reconstruction)
    reconstruction = result.reconstruction  # for the second look after READY
    del result
    seconds = time.monotonic() - started
    try:
        if not commit_ready(photo.pk, latent_name, data, meta, seconds, previews_written=rendered):
            return "ready"  # a duplicate delivery was READY first; it makes the comparisons
    except Photo.DoesNotExist:  # deleted between the check and the commit: drop what was stored
        discard_files(photo.pk, [latent_name])
        log.info("photo %s was deleted during its encode; its files were removed", photo.pk)
        return "deleted"
    log.info(
        "photo %s ready: %d bytes (target %d) in %.1f s (codec %.1f s, previews %s)",
        photo.pk, len(data), photo.target_bytes, seconds, codec_seconds, "written" if rendered else "queued",
    )
    data = second_look(photo.pk, rgb, data, meta, reconstruction, budget, effort or photo.encode_effort
                       or settings.GALLERY_ENCODE_EFFORT)
    del reconstruction
    if settings.GALLERY_COMPARISONS_QUEUE:
        return COMPARE_ELSEWHERE  # the task queues gallery.make_comparisons once its lease is free
    compare_and_release(photo.pk, rgb, len(data))
    return "ready"


def second_look(photo_id, rgb, data: bytes, meta: dict, reconstruction, budget: dict, effort: str) -> bytes:
    """After READY: look for faces too small for the encoder's own detection at this photo size
    (``codec.audit_small_faces``, `GALLERY_SMALL_FACE_AUDIT`), and when one of them was redrawn code the
    photo again with the probe on (``probe_faces=True``: the encoder then checks and protects them, or
    the file says it could not) and put that file in place of the first. Returns the photo's file.

    Off the critical path on purpose: the probe costs 0.6 s for a 768×512 photo (READY takes ≈ 1.5 s);
    most photos have no such face, so most pay the probe only. Best effort: any error keeps the first
    file (it is READY and correct; only the extra check is missing, and the photo page says so)."""
    if not settings.GALLERY_SMALL_FACE_AUDIT:
        return data
    codec = load_codec()
    from codec.encoder.faces import probes

    try:
        if "faces_found" not in meta or probes(rgb.shape[0] * rgb.shape[1]):
            return data  # faces were not checked at all, or the encoder's own probe ran
        audit = codec.audit_small_faces(rgb, reconstruction)
        if audit is None:
            return data
        record = {"probed": audit.probed, "smallest_px": audit.smallest_px, "found": audit.found,
                  "worst_detail": audit.worst_detail, "redrawn": audit.redrawn, "re_encoded": False,
                  "seconds": round(audit.seconds, 2)}
        Photo.objects.filter(pk=photo_id).update(small_faces_audit=record)  # kept if the re-encode fails
        if audit.redrawn:
            started = time.monotonic()
            result = codec.encode_result(rgb, model=settings.GALLERY_CODEC_MODEL, effort=effort,
                                         check_text=settings.GALLERY_CHECK_TEXT, probe_faces=True, **budget)
            if replace_latent(photo_id, result.data, result.info, result.reconstruction):
                data = result.data
                spent = time.monotonic() - started
                record.update(re_encoded=True, seconds=round(record["seconds"] + spent, 2))
                Photo.objects.filter(pk=photo_id).update(small_faces_audit=record)
        log.info("photo %s: second look for faces under %d px: %d found, worst detail %s%s", photo_id,
                 audit.smallest_px, audit.found, audit.worst_detail, ", coded again" if record["re_encoded"]
                 else "")
    except Exception:  # incl. the task's soft time limit: the comparisons still get its grace period
        log.warning("photo %s: second look for small faces failed; the first file stays", photo_id,
                    exc_info=True)
    return data


def replace_latent(photo_id, data: bytes, meta: dict, reconstruction) -> bool:
    """Put a new file in place of a READY photo's latent (second look): new previews first (named by the
    new sha256), then the new latent under a name of its own, then the row under the row lock, and only
    after the commit do the old file and the old previews go. The file the row points at is never
    overwritten: a failed commit leaves the photo as it was (and removes what was written for it).
    False when the photo is gone or no longer READY (nothing changed)."""
    photo = Photo.objects.filter(pk=photo_id, status=Photo.Status.READY).first()
    if photo is None:
        return False
    old = [previews.CacheFile(photo, previews.get_spec(name)).name for name in previews.SPECS]
    old_latent = photo.latent.name
    if not write_previews(photo, data, reconstruction):  # (names them by the new sha256)
        return False
    kept = {previews.CacheFile(photo, previews.get_spec(s)).name for s in previews.SPECS}
    new_previews = [n for n in kept if n not in old]
    name = storage.save(storage.latent_name(photo_id, photo.latent_sha256[:12]), data,  # the new sha256
                        storage.LATENT_CONTENT_TYPE)
    try:
        with transaction.atomic():
            locked = Photo.objects.select_for_update().filter(pk=photo_id, status=Photo.Status.READY).first()
            if locked is not None:
                ready_at = locked.ready_at  # READY is when the photo first showed, not this replacement
                _record_latent(locked, name, data, meta, locked.encode_seconds)
                locked.ready_at = ready_at
                locked.save()
    except BaseException:
        storage.delete_files([name, *new_previews])
        raise
    if locked is None:  # deleted (or reset) meanwhile: what was just written is nobody's
        storage.delete_files([name, *new_previews])
        return False
    stale = [n for n in old if n not in kept]
    for preview in stale:
        forget(preview)
    if old_latent and old_latent != name:
        stale.append(old_latent)
    storage.delete_files(stale)
    return True


#: `encode`'s outcome when the photo is READY and its comparisons belong to the comparisons queue
COMPARE_ELSEWHERE = "ready, comparisons queued"


def write_previews(photo: Photo, data: bytes, reconstruction) -> bool:
    """The eager previews from the encoder's reconstruction (before READY, named by the latent's
    sha256). False when they could not be written: the render task makes them after the commit."""
    photo.latent_sha256 = hashlib.sha256(data).hexdigest()
    try:
        previews.write_from_image(photo, previews.eager_specs(), reconstruction)
    except Exception:  # storage trouble: the render task (from the latent) is the fallback
        log.warning("photo %s: previews not written during the encode; a render task will", photo.pk,
                    exc_info=True)
        return False
    return True


def comparisons_pending(photo_id: str) -> bool:
    """READY with the original still staged: the comparisons were not stored yet."""
    return StagedUpload.objects.filter(photo_id=photo_id, photo__status=Photo.Status.READY).exists()


def finish_comparisons(photo_id: str) -> str:
    """The comparisons of a READY photo whose task stopped before storing them (then the original
    goes)."""
    staged = StagedUpload.objects.filter(photo_id=photo_id).values_list("data", flat=True).first()
    photo = Photo.objects.filter(pk=photo_id).first()
    if staged is None or photo is None:
        return "noop"
    codec = load_codec()
    try:
        rgb = codec.load_image(bytes(staged), max_pixels=settings.GALLERY_MAX_PIXELS)
    except codec.InputError:
        give_up_comparisons(photo_id, "the staged original no longer decodes")
        return "ready"
    compare_and_release(photo_id, rgb, photo.latent_bytes)
    return "ready"


def compare_and_release(photo_id, rgb, budget: int) -> None:
    """Comparisons at the latent's size, stored, then the staged original deleted (one transaction).

    A storage or other transient error propagates: the task retries (redelivery →
    ``finish_comparisons``). Hitting the task's time or memory limit gives the comparisons up.
    """
    started = time.monotonic()
    try:
        comparisons = make_comparisons(rgb, budget)
    except MemoryError:
        give_up_comparisons(photo_id, "out of memory")
        return
    except Exception as exc:
        if type(exc).__name__ == "SoftTimeLimitExceeded":
            give_up_comparisons(photo_id, "the task's time limit")
            return
        raise
    stored = {
        c.fmt: storage.save(storage.comparison_name(photo_id, c.fmt), c.data, storage.content_type(c.fmt))
        for c in comparisons
    }
    if not commit_comparisons(photo_id, comparisons, stored):
        discard_files(photo_id, list(stored.values()))  # the photo was deleted meanwhile
        return
    log.info("photo %s: comparisons %s in %.1f s; original deleted", photo_id, ",".join(stored),
             time.monotonic() - started)


def give_up_comparisons(photo_id, why: str) -> None:
    """A READY photo keeps its latent; without comparisons its original is not needed any more."""
    log.warning("photo %s: comparisons given up (%s); staged original deleted", photo_id, why)
    StagedUpload.objects.filter(photo_id=photo_id, photo__status=Photo.Status.READY).delete()


#: (format, bpp) → the quality the last comparison at that rate needed, in this worker process: the
#: next photo's search starts there (2 trials when the guess is right instead of 4–7; same answer)
_QUALITY_HINTS: dict[tuple[str, float], int] = {}


def make_comparisons(rgb, budget: int) -> list[ComparisonFile]:
    """JPEG/WebP/AVIF at ≤ ``budget`` bytes from the original pixels (downscaled when needed)."""
    from codec import baselines

    out = []
    for fmt in settings.GALLERY_COMPARISON_FORMATS:
        floor = settings.GALLERY_COMPARISON_MIN_QUALITY
        if floor is None:  # the rule: downscale only when even the lowest quality is too big
            floor = baselines.FORMATS[fmt].q_min
        hint_key = (fmt, round(budget * 8 / (rgb.shape[0] * rgb.shape[1]), 2))
        try:
            res = baselines.encode_at_budget(rgb, fmt, budget, mode="downscale", min_quality=floor,
                                             first_quality=_QUALITY_HINTS.get(hint_key))
        except Exception:  # one missing comparison must not cost the photo
            log.warning("no %s comparison at %d bytes", fmt, budget, exc_info=True)
            continue
        if not res.data:
            log.warning("no %s comparison at %d bytes: %s", fmt, budget, res.note)
            continue
        if res.fits and res.scale == 1.0 and res.quality is not None:
            _QUALITY_HINTS[hint_key] = int(res.quality)
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


def commit_ready(photo_id, latent_name, data, meta, seconds, *, previews_written: bool) -> bool:
    """Record the latent: the photo is READY (the staged original stays for the comparisons).

    False when a duplicate delivery was READY first (its result is kept)."""
    with transaction.atomic():
        photo = Photo.objects.select_for_update().get(pk=photo_id)
        if photo.status == Photo.Status.READY:
            return False
        _record_latent(photo, latent_name, data, meta, seconds)
        photo.save()
        if not previews_written:
            transaction.on_commit(lambda: previews.source_ready(photo))
    return True


def commit_comparisons(photo_id, comparisons: list[ComparisonFile], stored: dict[str, str]) -> bool:
    """Store the comparison rows of a READY photo and delete its staged original, atomically.
    False when the photo no longer exists (its owner deleted it meanwhile)."""
    with transaction.atomic():
        photo = Photo.objects.select_for_update().filter(pk=photo_id).first()
        if photo is None:
            return False
        _store_comparisons(photo, comparisons, stored)
        if photo.status == Photo.Status.READY and photo.latent.name:  # never before the latent is in
            StagedUpload.objects.filter(photo=photo).delete()
    return True


def discard_files(photo_id, names: list[str]) -> None:
    """Remove what a task stored for a photo deleted while the task ran (latent, previews,
    comparisons, the photo's folders), instead of leaving them to the orphan sweep (1 h; never on
    remote storage). The photo's delete already removed what existed at that moment."""
    previews.purge(photo_id)
    storage.delete_photo_files(photo_id, names)


def _record_latent(photo: Photo, latent_name, data, meta, seconds) -> None:
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


def _store_comparisons(photo: Photo, comparisons: list[ComparisonFile], stored: dict[str, str]) -> None:
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


def commit(photo_id, latent_name, data, meta, comparisons, stored, seconds) -> None:
    """Record the latent and comparisons and delete the staged original, atomically (all in one
    step; the worker itself uses ``commit_ready`` then ``commit_comparisons``)."""
    with transaction.atomic():
        photo = Photo.objects.select_for_update().get(pk=photo_id)
        if photo.status == Photo.Status.READY:  # a duplicate delivery won the race; keep its result
            return
        _record_latent(photo, latent_name, data, meta, seconds)
        photo.save()
        _store_comparisons(photo, comparisons, stored)
        StagedUpload.objects.filter(photo=photo).delete()
        transaction.on_commit(lambda: previews.source_ready(photo))


def mark_failed(photo_id, message: str, *, keep_staged: bool) -> None:
    """Failed, unless READY: then only the comparisons failed (for good: the task's retries are
    spent), and the original, kept only for them, goes."""
    with transaction.atomic():
        photo = Photo.objects.select_for_update().filter(pk=photo_id).first()
        if photo is not None and photo.status != Photo.Status.READY:
            _fail(photo, message, keep_staged=keep_staged)
            return
    if photo is not None:
        give_up_comparisons(photo_id, message)


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
