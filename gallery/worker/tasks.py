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
from celery.signals import celeryd_after_setup, worker_process_init
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
)
def encode_photo(self, photo_id: str) -> str:
    """Staged original → latent + comparisons → ready. Re-running on a ready photo is a no-op."""
    from . import pipeline

    try:
        return pipeline.encode(photo_id)
    except pipeline.PermanentFailure:
        return "failed"
    except pipeline.SetupProblem as exc:
        # Never a failure: the photo stays pending with its original staged. Retry with backoff;
        # once the retries are spent the sweeper re-queues it (after the deployment is fixed).
        if self.request.retries >= self.max_retries:
            log.error("encode of %s still blocked by a setup problem; left pending: %s", photo_id, exc)
            return "waiting"
        raise self.retry(exc=exc, countdown=backoff_seconds(self.request.retries)) from exc
    except Exception as exc:
        attempt = self.request.retries + 1
        if self.request.retries >= self.max_retries:
            log.exception("encode of %s failed for good after %d attempts", photo_id, attempt)
            # The staged original stays so an admin (or the sweeper) can re-queue it.
            pipeline.mark_failed(
                photo_id, f"Encoding failed after {attempt} attempts: {exc}", keep_staged=True
            )
            return "failed"
        log.warning("encode of %s failed (attempt %d), retrying: %s", photo_id, attempt, exc)
        pipeline.mark_retrying(photo_id, f"Attempt {attempt} failed ({exc}); retrying.")
        raise self.retry(exc=exc, countdown=backoff_seconds(self.request.retries)) from exc


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
    from .runtime import load_codec

    photo = Photo.objects.filter(pk=photo_id, status=Photo.Status.READY).first()
    if photo is None:
        return []
    codec = load_codec()

    def decode(data: bytes):
        # the stored latent is bounded like an upload: a corrupted row cannot ask for a 100 MP decode
        return codec.decode(data, max_pixels=settings.GALLERY_MAX_PIXELS)

    # without names: the eager specs (on-demand ones, e.g. full-size downloads, only when asked for)
    eager = [name for name, spec in previews.SPECS.items() if not spec.on_demand]
    return previews.render(photo, spec_names or eager, decode)


@shared_task(name="gallery.sweep", ignore_result=True)
def sweep() -> str:
    """Beat task (queue ``maintenance``): re-queue lost encodes, delete orphaned files and empty
    folders (gallery/sweeper.py)."""
    from .. import sweeper

    return sweeper.sweep().summary()


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
