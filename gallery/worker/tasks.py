"""Celery tasks. Thin wrappers: the work is in ``pipeline`` (encode), ``gallery.previews`` (render)
and ``gallery.sweeper`` (maintenance).

Task names are part of the message format and never change: ``gallery.encode_photo`` and
``gallery.render_previews`` run on queue ``gpu`` (they load the codec), ``gallery.sweep`` on queue
``maintenance`` (routes in settings: ``CELERY_TASK_ROUTES``).

Importing this module does not import torch or the codec's model code; that happens inside the
task bodies, in the worker process, where the codec registry keeps the model loaded.
"""

from __future__ import annotations

import logging
import random

from celery import shared_task
from celery.signals import celeryd_after_setup, worker_process_init, worker_ready
from django.conf import settings

log = logging.getLogger(__name__)

MAX_RETRIES = settings.GALLERY_TASK_MAX_RETRIES  # retries after the first attempt (default 5)


def backoff_seconds(retries: int) -> float:
    """Exponential backoff with jitter: ~5 s, 10 s, 20 s … capped at 10 minutes."""
    return min(600.0, 5.0 * 2**retries) * random.uniform(0.8, 1.2)


@shared_task(
    bind=True,
    name="gallery.encode_photo",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAX_RETRIES,
    # wall-clock limits of one attempt (gallery/admission.py): the soft one raises in the task (retried
    # at a cheaper effort, then failed); the hard one kills the pool process (the lease then expires,
    # and the next attempt sees that the previous one ran over the limit)
    soft_time_limit=settings.GALLERY_TASK_SOFT_TIME_LIMIT,
    time_limit=settings.GALLERY_TASK_TIME_LIMIT,
)
def encode_photo(self, photo_id: str) -> str:
    """Staged original → latent + comparisons → ready. Re-running on a ready photo is a no-op, and so
    is a delivery of a photo another live worker holds the lease of (gallery/leases.py)."""
    from .. import leases

    owner = leases.owner_name(self.request.id)
    claim = leases.acquire(photo_id, owner)
    if not claim.ok:
        log.info("encode of %s skipped: %s", photo_id, claim.reason)
        return "noop"
    try:
        # the previous attempt was killed after running past the soft limit (hard limit, OOM kill)
        overran = claim.taken_over and claim.previous_ran >= settings.GALLERY_TASK_SOFT_TIME_LIMIT
        if overran and not _over_limit(self, photo_id, "time", f"{settings.GALLERY_TASK_SOFT_TIME_LIMIT} s"):
            return "failed"
        with leases.Heartbeat(photo_id, owner):
            outcome = _encode(self, photo_id)
    finally:
        leases.release(photo_id, owner)
        _publish_next()
    from .pipeline import COMPARE_ELSEWHERE

    if outcome == COMPARE_ELSEWHERE:  # after the lease is given back, so that task can take it
        from .. import services

        services.enqueue_comparisons(photo_id)  # lost → the sweeper re-queues (READY, still staged)
        return "ready"
    return outcome


def _publish_next() -> None:
    """An encode slot of this photo's owner is free: publish what the fair share held back (at once,
    not at the next relay beat)."""
    from .. import outbox

    try:
        outbox.relay()
    except Exception:  # the beat relay publishes it a few seconds later
        log.warning("outbox relay after an encode failed", exc_info=True)


def _encode(task, photo_id: str) -> str:
    from celery.exceptions import SoftTimeLimitExceeded

    from . import pipeline

    try:
        return pipeline.encode(photo_id, effort=effort_for(photo_id))
    except pipeline.PermanentFailure:
        return "failed"
    except SoftTimeLimitExceeded:
        limit = f"{settings.GALLERY_TASK_SOFT_TIME_LIMIT} s"
        return _retry_cheaper(task, photo_id, "time", limit)
    except pipeline.SetupProblem as exc:
        if is_memory_limit(exc.__cause__):
            return _retry_cheaper(task, photo_id, "memory", _memory_limit_text())
        # Never a failure: the photo stays pending with its original staged. Retry with backoff;
        # once the retries are spent the sweeper re-queues it (after the deployment is fixed).
        if task.request.retries >= task.max_retries:
            log.error("encode of %s still blocked by a setup problem; left pending: %s", photo_id, exc)
            return "waiting"
        raise _retry_later(task, photo_id, exc) from exc
    except Exception as exc:
        if is_memory_limit(exc):
            return _retry_cheaper(task, photo_id, "memory", _memory_limit_text())
        attempt = task.request.retries + 1
        if task.request.retries >= task.max_retries:
            log.exception("encode of %s failed for good after %d attempts", photo_id, attempt)
            # The staged original stays so an admin (or the sweeper) can re-queue it.
            pipeline.mark_failed(
                photo_id, f"Encoding failed after {attempt} attempts: {exc}", keep_staged=True
            )
            return "failed"
        log.warning("encode of %s failed (attempt %d), retrying: %s", photo_id, attempt, exc)
        pipeline.mark_retrying(photo_id, f"Attempt {attempt} failed ({exc}); retrying.")
        raise _retry_later(task, photo_id, exc) from exc


def _retry_later(task, photo_id: str, exc: BaseException):
    """``task.retry`` with backoff, the photo's lease kept over the countdown (gallery/leases.py)."""
    from .. import leases

    countdown = backoff_seconds(task.request.retries)
    leases.hold_for_retry(photo_id, leases.owner_name(task.request.id), countdown)
    return task.retry(exc=exc, countdown=countdown)


def is_memory_limit(exc: BaseException | None) -> bool:
    """An allocation refused under the pool process's memory limit (MemoryError, torch's allocator)."""
    if exc is None:
        return False
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return bool(settings.GALLERY_TASK_MEMORY_LIMIT)
    return bool(settings.GALLERY_TASK_MEMORY_LIMIT) and "can't allocate memory" in str(exc)


def _memory_limit_text() -> str:
    return f"{settings.GALLERY_TASK_MEMORY_LIMIT / 2**30:.1f} GiB"


def _over_limit(task, photo_id: str, what: str, limit: str) -> bool:
    """Lower the photo's effort after an attempt over a limit: True when a cheaper one is left to try,
    else the photo is failed with a clear message (its staged original kept for an admin)."""
    from ..admission import cheaper_effort
    from ..models import Photo
    from . import pipeline

    photo = Photo.objects.filter(pk=photo_id).first()
    if photo is None:
        return False
    effort = photo.encode_effort or settings.GALLERY_ENCODE_EFFORT
    lower = cheaper_effort(effort)
    if lower is None:
        log.error("photo %s over the %s limit (%s) at effort %s: failed", photo_id, what, limit, effort)
        pipeline.mark_failed(
            photo_id,
            f"This image needs more {what} to encode than one photo may use ({limit}, even at effort "
            f"'{effort}'). Try a smaller or simpler image.",
            keep_staged=True,
        )
        return False
    log.warning(
        "photo %s over the %s limit (%s) at effort %s: trying %s", photo_id, what, limit, effort, lower
    )
    Photo.objects.filter(pk=photo_id).exclude(status=Photo.Status.READY).update(
        encode_effort=lower,
        status=Photo.Status.PENDING,
        error=f"The encode ran over its {what} limit ({limit}) at effort '{effort}'; retrying at '{lower}'.",
    )
    return True


def _retry_cheaper(task, photo_id: str, what: str, limit: str) -> str:
    if not _over_limit(task, photo_id, what, limit):
        return "failed"
    # a fresh message (not a Celery retry: the limit is the photo's, not a transient error), sent after
    # our lease is given back so that any worker may take it at once
    from .. import leases, services

    leases.release(photo_id, leases.owner_name(task.request.id))
    services.enqueue_encode(photo_id)
    return "retrying"


def effort_for(photo_id: str) -> str:
    """The effort this photo is encoded at: its own (lowered after an attempt over a limit, or by
    admission at upload), else ``GALLERY_ENCODE_EFFORT``. Passed to the pipeline explicitly."""
    from ..models import Photo

    own = Photo.objects.filter(pk=photo_id).values_list("encode_effort", flat=True).first()
    return own or settings.GALLERY_ENCODE_EFFORT


@shared_task(
    bind=True,
    name="gallery.render_previews",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=3,
)
def render_previews(self, photo_id: str, spec_names: list[str] | None = None) -> list[str]:
    """Decode the latent once and write the missing preview cache files."""
    from .. import previews
    from ..models import Photo
    from .runtime import decode_limits, load_codec

    photo = Photo.objects.filter(pk=photo_id, status=Photo.Status.READY).first()
    if photo is None:
        return []
    codec = load_codec()
    limits = decode_limits()

    def decode(data: bytes):
        # the stored latent is bounded like an upload (pixels) and by its header's decode work: a
        # corrupted row cannot ask for a 100 MP decode or a decode bomb
        return codec.decode(data, limits=limits)

    # without names: the eager specs (on-demand ones, e.g. full-size downloads, only when asked for)
    eager = [name for name, spec in previews.SPECS.items() if not spec.on_demand]
    return previews.render(photo, spec_names or eager, decode)


@shared_task(
    bind=True,
    name="gallery.make_comparisons",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=MAX_RETRIES,
)
def make_comparisons(self, photo_id: str) -> str:
    """JPEG/WebP/AVIF comparisons of a READY photo from its staged original, then the original goes
    (``GALLERY_COMPARISONS_QUEUE``: a CPU worker's job, not the GPU worker's). Holds the photo's lease
    like an encode, so the sweeper leaves it alone and a duplicate delivery is a no-op."""
    from .. import leases
    from . import pipeline

    owner = leases.owner_name(self.request.id)
    claim = leases.acquire(photo_id, owner)
    if not claim.ok:
        log.info("comparisons of %s skipped: %s", photo_id, claim.reason)
        return "noop"
    try:
        with leases.Heartbeat(photo_id, owner):
            return pipeline.finish_comparisons(photo_id)
    finally:
        leases.release(photo_id, owner)


@shared_task(name="gallery.sweep", ignore_result=True)
def sweep() -> str:
    """Beat task (queue ``maintenance``, every ``GALLERY_SWEEP_INTERVAL`` = 15 s): re-queue lost
    encodes; every ``GALLERY_SWEEP_ORPHAN_INTERVAL`` seconds also delete orphaned files and empty
    folders (listing the media storage is not worth doing every 15 s) (gallery/sweeper.py)."""
    import time

    from .. import sweeper

    global _last_orphan_pass
    now = time.monotonic()
    orphans = _last_orphan_pass is None or now - _last_orphan_pass >= settings.GALLERY_SWEEP_ORPHAN_INTERVAL
    if orphans:
        _last_orphan_pass = now
    return sweeper.sweep(orphans=orphans).summary()


_last_orphan_pass: float | None = None


@shared_task(name="gallery.relay_outbox", ignore_result=True)
def relay_outbox() -> int:
    """Beat task (queue ``maintenance``): publish outbox messages the request path could not."""
    from .. import outbox

    return len(outbox.relay().published)


def _consumed_queues(app) -> list[str]:
    return list(app.amqp.queues.consume_from) if app.amqp.queues else []


@celeryd_after_setup.connect
def _add_maintenance_queue(sender, instance, **_kwargs) -> None:
    """A worker started with ``-Q gpu`` also consumes ``maintenance`` (GALLERY_WORKER_QUEUES), so the
    sweeper runs wherever encodes run; a worker started with ``-Q maintenance`` stays model-free."""
    from .runtime import consumes_encodes

    app = instance.app
    if consumes_encodes(_consumed_queues(app)):
        for name in settings.GALLERY_WORKER_QUEUES:
            if name not in _consumed_queues(app):
                app.amqp.queues.select_add(name)


@worker_process_init.connect
def _limit_memory(**_kwargs) -> None:
    """Each prefork child of an encoding worker gets an address-space limit
    (``GALLERY_TASK_MEMORY_LIMIT``): an allocation over it fails in the task (MemoryError or torch's
    allocator error), which retries the photo at a cheaper effort, then fails it, instead of the
    machine's OOM killer taking the worker."""
    from config.celery import app

    from .runtime import codec_on_cuda, consumes_encodes, limit_memory

    if settings.GALLERY_TASK_MEMORY_LIMIT and consumes_encodes(_consumed_queues(app) or ["gpu"]):
        if codec_on_cuda():
            # the CUDA driver reserves far more virtual address space than any sensible RLIMIT_AS
            log.info("codec on CUDA: no address-space limit for this process")
            return
        limit_memory(settings.GALLERY_TASK_MEMORY_LIMIT)


@worker_process_init.connect
def _warm_model(**_kwargs) -> None:
    """Each prefork child loads the model once at start, so the first upload does not wait for it."""
    from config.celery import app

    from .runtime import consumes_encodes, warm_up

    if not settings.GALLERY_WARM_MODEL or not consumes_encodes(_consumed_queues(app) or ["gpu"]):
        return
    try:
        warm_up()
    except Exception:  # the start-up check passed, so this is rarer (OOM, broken torch): the task says
        log.exception("could not warm up the codec")


@worker_ready.connect
def _warm_model_in_threads(sender=None, **_kwargs) -> None:
    """A worker whose pool runs tasks in its own process (``--pool threads``, the GPU worker with
    dynamic batching; ``solo``) has no pool children to warm: warm the model here, once, before the
    first photo. Prefork workers warm each child instead (above) and never load torch in the parent."""
    pool = getattr(sender, "pool", None)
    if pool is None or "prefork" in type(pool).__module__:
        return
    _warm_model()
