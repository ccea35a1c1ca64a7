"""Publishing tasks from the web process, and reading the queue's state for the statistics page.

Publishing never raises into a request and never hangs it: the broker's socket timeouts
(``REDIS_CONNECT_TIMEOUT``/``REDIS_SOCKET_TIMEOUT`` in ``CELERY_BROKER_TRANSPORT_OPTIONS``), one quick
publish retry (``CELERY_TASK_PUBLISH_RETRY_POLICY``) and a breaker (``gallery.resilience.BROKER``:
after a failure, publishes are skipped for a few seconds) bound it to about two seconds once, then
to nothing. When the broker is down the photo stays ``pending`` with its original staged, and is
queued later (the sweeper, or ``services.enqueue_encode``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.conf import settings
from kombu.exceptions import ChannelError

from .resilience import BROKER

log = logging.getLogger(__name__)

QUEUE = settings.GALLERY_GPU_QUEUE


def publish(task, *args, queue: str | None = None) -> bool:
    """``task.apply_async(args)`` (on ``queue`` when given, else the task's route); False (logged)
    when the broker cannot be reached or is skipped."""
    options = {"queue": queue} if queue else {}
    return _send(task.name, args, lambda: task.apply_async(args=list(args), **options))


def publish_by_name(name: str, *args) -> bool:
    """Like ``publish`` for a task known by name (outbox rows); routed like the task itself."""
    from config.celery import app

    return _send(name, args, lambda: app.send_task(name, args=list(args)))


def last_error() -> str:
    """Why the last publish failed (for the outbox row and the statistics page)."""
    return BROKER.last_error


def _send(name: str, args, send) -> bool:
    if BROKER.is_open:
        log.warning("not queueing %s%r: the broker failed moments ago (%s)", name, args, BROKER.last_error)
        return False
    try:
        send()
    except Exception as exc:  # kombu OperationalError, redis errors, socket timeouts …
        BROKER.trip(exc)
        log.error("could not queue %s%r: %s", name, args, exc)
        return False
    return True


@dataclass
class QueueSnapshot:
    available: bool
    queue: str = QUEUE
    length: int | None = None
    workers: list[str] = field(default_factory=list)
    active: int | None = None
    reserved: int | None = None
    error: str = ""


def snapshot(timeout: float = 0.5) -> QueueSnapshot:
    """Messages waiting on the ``gpu`` queue and what the workers are doing (best effort)."""
    from config.celery import app

    if BROKER.is_open:
        return QueueSnapshot(available=False, error=f"broker unreachable: {BROKER.last_error}")

    try:
        with app.connection_for_read(
            transport_options={"socket_connect_timeout": timeout, "socket_timeout": timeout * 4}
        ) as conn:
            conn.ensure_connection(max_retries=1)
            try:
                length = conn.default_channel.queue_declare(queue=QUEUE, passive=True).message_count
            except ChannelError:  # the queue does not exist yet: nothing was ever queued
                length = 0
    except Exception as exc:
        return QueueSnapshot(available=False, error=f"broker unreachable: {exc}")
    snap = QueueSnapshot(available=True, length=length)
    try:
        inspect = app.control.inspect(timeout=timeout)
        active = inspect.active() or {}
        reserved = inspect.reserved() or {}
    except Exception as exc:
        snap.error = f"workers did not answer: {exc}"
        return snap
    snap.workers = sorted(set(active) | set(reserved))
    snap.active = sum(len(v) for v in active.values())
    snap.reserved = sum(len(v) for v in reserved.values())
    return snap
