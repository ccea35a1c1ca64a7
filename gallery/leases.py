"""Encode leases: which worker is encoding a photo, and until when it has proved it is alive.

A worker takes the lease under ``select_for_update`` before it encodes (``acquire``), renews it from a
heartbeat thread every ``GALLERY_HEARTBEAT_SECONDS`` while it works (``Heartbeat``) and gives it back
when the task ends (``release``). A lease that is not renewed expires after ``GALLERY_LEASE_SECONDS``:
its worker was killed (kill -9, OOM, hard time limit, machine lost), and the sweeper re-queues the
photo at its next run, independently of the broker's visibility timeout.

A second delivery of the same photo (a duplicate message, the dead worker's message coming back
after the visibility timeout) finds a live lease of another worker, or a ready photo, and is a no-op:
a photo is never encoded twice at the same time.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from .models import Photo, StagedUpload

log = logging.getLogger(__name__)


def owner_name(task_id: str | None = None) -> str:
    """``host:pid:task``: unique per attempt, readable in the admin."""
    return f"{socket.gethostname()}:{os.getpid()}:{task_id or '-'}"[:200]


@dataclass
class Claim:
    """The outcome of ``acquire``. ``ok``: this worker holds the lease now. ``taken_over``: it took an
    expired lease (the previous worker died), with ``previous_ran`` seconds of work behind it."""

    ok: bool
    reason: str = ""
    taken_over: bool = False
    previous_ran: float = 0.0


def acquire(photo_id, owner: str, *, seconds: float | None = None) -> Claim:
    seconds = settings.GALLERY_LEASE_SECONDS if seconds is None else seconds
    with transaction.atomic():
        photo = Photo.objects.select_for_update().filter(pk=photo_id).first()
        if photo is None:
            return Claim(False, "gone")
        # a READY photo whose original is still staged has its comparisons left to make (pipeline)
        if photo.status == Photo.Status.READY and not StagedUpload.objects.filter(photo_id=photo.pk).exists():
            return Claim(False, "ready")
        now = timezone.now()
        live = photo.lease_expires_at is not None and photo.lease_expires_at > now
        if live and photo.lease_owner != owner and not _same_task(photo.lease_owner, owner):
            return Claim(False, f"leased by {photo.lease_owner}")
        taken_over = photo.lease_expires_at is not None and not live
        ran = 0.0
        if taken_over and photo.encoding_started_at is not None:
            ran = max(0.0, (photo.lease_expires_at - photo.encoding_started_at).total_seconds() - seconds)
        until = now + timedelta(seconds=seconds)
        Photo.objects.filter(pk=photo.pk).update(lease_owner=owner, lease_expires_at=until)
    return Claim(True, taken_over=taken_over, previous_ran=ran)


def _same_task(held_by: str, owner: str) -> bool:
    """A lease kept over a retry's countdown (``hold_for_retry``) belongs to the same Celery task id,
    which the retry keeps, whichever worker runs it."""
    task = owner.rsplit(":", 1)[-1]
    return task not in ("", "-") and held_by == f"retry:{task}"


def hold_for_retry(photo_id, owner: str, countdown: float) -> None:
    """Keep the photo leased while its retry message waits ``countdown`` seconds in a worker (the
    broker holds it unacked): the sweeper leaves it alone meanwhile, and if that worker dies the lease
    expires ``GALLERY_LEASE_SECONDS`` after the countdown and the sweeper re-queues the photo."""
    task = owner.rsplit(":", 1)[-1]
    if task in ("", "-"):  # not a Celery delivery (a direct call): nothing to keep
        return release(photo_id, owner)
    until = timezone.now() + timedelta(seconds=countdown + settings.GALLERY_LEASE_SECONDS)
    mine = Photo.objects.filter(pk=photo_id, lease_owner=owner)
    mine.update(lease_owner=f"retry:{task}", lease_expires_at=until)


def renew(photo_id, owner: str, *, seconds: float | None = None) -> bool:
    """Extend our lease; False when it is no longer ours (the sweeper declared us dead)."""
    seconds = settings.GALLERY_LEASE_SECONDS if seconds is None else seconds
    until = timezone.now() + timedelta(seconds=seconds)
    return bool(Photo.objects.filter(pk=photo_id, lease_owner=owner).update(lease_expires_at=until))


def release(photo_id, owner: str) -> None:
    Photo.objects.filter(pk=photo_id, lease_owner=owner).update(lease_owner="", lease_expires_at=None)


class Heartbeat:
    """Context manager: renew ``owner``'s lease of a photo from a daemon thread until exit.

    The thread has its own database connection (closed when it stops). torch releases the GIL in its
    kernels, so the heartbeat keeps beating during a long encode; a process that is frozen or killed
    stops beating, and its lease expires.
    """

    def __init__(self, photo_id, owner: str, interval: float | None = None,
                 max_seconds: float | None = None) -> None:
        self.photo_id = photo_id
        self.owner = owner
        self.interval = settings.GALLERY_HEARTBEAT_SECONDS if interval is None else interval
        #: no renewal after this long: a task past its hard time limit is over for the gallery even
        #: where the pool cannot kill it (Celery's threads pool, the GPU worker): its lease runs out
        #: and the sweeper hands the photo to another worker
        self.max_seconds = settings.GALLERY_TASK_TIME_LIMIT if max_seconds is None else max_seconds
        self.expired = False
        self.lost = False
        self.beats = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{photo_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)

    def _run(self) -> None:
        started = time.monotonic()
        try:
            while not self._stop.wait(self.interval):
                if self.max_seconds and time.monotonic() - started > self.max_seconds:
                    log.error("photo %s: its task has run %.0f s, past the hard time limit; the lease is "
                              "not renewed any more (the sweeper re-queues it)", self.photo_id,
                              time.monotonic() - started)
                    self.expired = True
                    return
                try:
                    close_old_connections()
                    if not renew(self.photo_id, self.owner):
                        if not self.lost:
                            log.warning("lost the lease of photo %s (declared dead?)", self.photo_id)
                        self.lost = True
                    else:
                        self.beats += 1
                except Exception:  # a database hiccup: try again at the next beat
                    log.warning("lease heartbeat of photo %s failed", self.photo_id, exc_info=True)
        finally:
            connection.close()
