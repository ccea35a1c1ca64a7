"""The sweeper: re-queue photos whose encode task was lost, and collect orphaned files.

Tasks get lost when the broker forgets them (Redis restarted without persistence, the broker was
down when the upload was queued) or, for a while, when a worker is killed mid-task (the message
comes back only after the broker's visibility timeout). The staged original is still in the
database in every such case, so re-queueing is always possible and always safe: the encode task
is idempotent.

A photo is re-queued when it still has its staged original and

* its encode lease expired (gallery/leases.py: the worker that held it stopped renewing it, i.e. it
  was killed): at once, whatever the broker still holds for the dead worker (that message comes back
  only after the visibility timeout, and is then a no-op); or
* it is ``pending``, untouched for ``pending_after`` seconds (default 30), without a live lease, not
  held in the outbox (fair share), and no encode message for it is waiting in or held from the
  broker (the Redis queue and its unacked set; when the broker cannot be read the age alone
  decides); or
* it is ``encoding`` without a lease for ``encoding_after`` seconds (a worker of an older release); or
* it is ``ready`` (latent committed) but its original is still staged and nobody holds a lease, for
  ``pending_after`` seconds, with no encode message waiting or held: its comparisons (and with them
  the deletion of the staged original) were left undone — the re-queue message of an earlier sweep
  was lost, or a task gave up between the commit and the comparisons. The re-queued task only makes
  the comparisons and then deletes the original (``pipeline.finish_comparisons``); without this the
  staged original of such a photo would never be deleted.

Re-queueing resets it to ``pending`` (a ``ready`` photo stays ready) with a new ``updated_at`` and the
lease cleared, so the next sweep leaves it alone for another ``pending_after`` seconds. With the
shipped defaults (lease 30 s renewed every 5 s, sweep every 15 s) a killed worker's photo is
re-queued within about 45 s.

Runs as the Celery beat task ``gallery.sweep`` and as ``manage.py sweep``.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import Q
from django.utils import timezone

from . import storage
from .models import Photo

log = logging.getLogger(__name__)

ENCODE_TASK = "gallery.encode_photo"
#: a READY photo's comparisons (``GALLERY_COMPARISONS_QUEUE``): its message counts like an encode's
COMPARISONS_TASK = "gallery.make_comparisons"


@dataclass
class SweepReport:
    requeued: list[str] = field(default_factory=list)
    requeue_failed: list[str] = field(default_factory=list)
    still_queued: int = 0  # stale by age, but the broker still holds a message for them
    broker_checked: bool = False
    orphans_deleted: list[str] = field(default_factory=list)

    def summary(self) -> str:
        broker = "checked" if self.broker_checked else "not readable (age only)"
        return (
            f"re-queued {len(self.requeued)} photo(s), {len(self.requeue_failed)} could not be queued, "
            f"{self.still_queued} stale but still queued (broker {broker}); "
            f"removed {len(self.orphans_deleted)} orphaned file(s)"
        )


def stale_photos(now=None, pending_after: float | None = None, encoding_after: float | None = None):
    """Photos not ready whose encode seems lost (they still have their staged original)."""
    now = now or timezone.now()
    pending_after = settings.GALLERY_SWEEP_PENDING_AFTER if pending_after is None else pending_after
    encoding_after = settings.GALLERY_SWEEP_ENCODING_AFTER if encoding_after is None else encoding_after
    no_lease = Q(lease_expires_at__isnull=True)
    pending, encoding, ready = Photo.Status.PENDING, Photo.Status.ENCODING, Photo.Status.READY
    waited = Q(updated_at__lte=now - timedelta(seconds=pending_after))
    return Photo.objects.filter(staged__isnull=False).filter(
        # a READY photo still staged: its worker died while making the comparisons
        Q(status__in=[pending, encoding, ready], lease_expires_at__lte=now)
        | (no_lease & Q(status=pending) & waited)
        # READY, still staged, no lease: the comparisons' task was lost (not only a dead worker's)
        | (no_lease & Q(status=ready) & waited)
        | (no_lease & Q(status=encoding, encoding_started_at__lte=now - timedelta(seconds=encoding_after)))
        | (no_lease & Q(status=encoding, encoding_started_at__isnull=True))
    )


def lease_expired(photo: Photo, now=None) -> bool:
    now = now or timezone.now()
    return photo.lease_expires_at is not None and photo.lease_expires_at <= now


def _photo_id_of(message: dict) -> str | None:
    """The photo id of a kombu/Celery protocol-2 encode message, else None."""
    headers = message.get("headers") or {}
    if headers.get("task") not in (ENCODE_TASK, COMPARISONS_TASK):
        return None
    try:
        body = message["body"]
        if (message.get("properties") or {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        return str(args[0])
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def queued_photo_ids(timeout: float = 2.0, *, held: bool = True) -> set[str] | None:
    """Ids of photos with an encode message waiting in the ``gpu`` queue (or a comparisons message in
    ``GALLERY_COMPARISONS_QUEUE``) or (``held``) held unacked by a worker.

    None when the broker is not Redis or cannot be read.
    """
    from config.celery import app

    from .queueing import QUEUE

    url = app.conf.broker_url or ""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        # One atomic snapshot, queue first: a message moves from the queue to "unacked" when a
        # worker takes it. kombu keeps unacknowledged messages as JSON [message, exchange, key].
        queues = list(dict.fromkeys([QUEUE, settings.GALLERY_COMPARISONS_QUEUE or QUEUE]))
        pipe = client.pipeline(transaction=True)
        for queue in queues:
            pipe.lrange(queue, 0, -1)
        pipe.hvals("unacked")
        *waiting, held_ = pipe.execute()
        client.close()
        raw = [m for lst in waiting for m in lst]
        raw += [json.dumps(json.loads(v)[0]).encode() for v in held_] if held else []
    except (redis.RedisError, OSError, ValueError, IndexError, TypeError) as exc:
        log.warning("sweeper: cannot read the broker (%s); deciding by age only", exc)
        return None
    ids = set()
    for item in raw:
        try:
            message = json.loads(item)
        except ValueError:
            continue
        if isinstance(message, dict) and (pid := _photo_id_of(message)):
            ids.add(pid)
    return ids


def requeue_stale(
    *, pending_after: float | None = None, encoding_after: float | None = None, dry_run: bool = False
) -> SweepReport:
    from . import services
    from .models import OutboxMessage
    from .outbox import ENCODE_TASK as OUTBOX_ENCODE

    report = SweepReport()
    queued = queued_photo_ids()
    waiting = queued_photo_ids(held=False) if queued is not None else None
    report.broker_checked = queued is not None
    # photos whose message is still in the outbox (held for fair share, or the broker was down)
    in_outbox = set(OutboxMessage.objects.filter(task=OUTBOX_ENCODE).values_list("photo_key", flat=True))
    for photo in stale_photos(pending_after=pending_after, encoding_after=encoding_after):
        pid = str(photo.pk)
        if pid in in_outbox:
            continue
        # a dead worker's lease: only a message waiting in the queue counts (the one it held is lost
        # until the visibility timeout); otherwise any waiting or held message does
        seen = waiting if lease_expired(photo) else queued
        if seen is not None and pid in seen:
            report.still_queued += 1
            continue
        if dry_run:
            report.requeued.append(pid)
            continue
        # Only if nobody changed it meanwhile (a worker may have just claimed or finished it).
        unchanged = Photo.objects.filter(
            pk=photo.pk, status=photo.status, updated_at=photo.updated_at
        ).filter(lease_expires_at=photo.lease_expires_at)
        if photo.status == Photo.Status.READY:  # stays ready; the task only finishes the comparisons
            # a new updated_at: should this message be lost too, the photo is picked again later
            changed = unchanged.update(updated_at=timezone.now(), lease_owner="", lease_expires_at=None)
        else:
            changed = unchanged.update(
                status=Photo.Status.PENDING, updated_at=timezone.now(), lease_owner="", lease_expires_at=None
            )
        if not changed:
            continue
        if services.enqueue_encode(photo.pk):
            report.requeued.append(pid)
            log.info("sweeper: re-queued photo %s (was %s)", pid, photo.status)
        else:
            report.requeue_failed.append(pid)
    return report


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def orphaned_files(older_than: float | None = None) -> list[str]:
    """Stored files of photos that no longer exist (e.g. a delete whose file removal failed).

    Files younger than ``older_than`` seconds are left alone: a worker may be writing them for a
    photo whose row is about to be committed.
    """
    older_than = settings.GALLERY_SWEEP_ORPHAN_AFTER if older_than is None else older_than
    if not storage.is_local():
        return []  # remote storage: listing a bucket is not the sweeper's job
    cutoff = time.time() - older_than
    candidates: list[tuple[str, str]] = []  # (photo id, name)
    try:
        _dirs, files = default_storage.listdir(storage.LATENTS)
    except FileNotFoundError:
        files = []
    candidates += [(f.split(".", 1)[0], f"{storage.LATENTS}/{f}") for f in files]
    for path, pid in storage.photo_dirs():
        try:
            _sub, names = default_storage.listdir(path)
        except FileNotFoundError:
            continue
        candidates += [(pid, f"{path}/{n}") for n in names]
    ids = {pid for pid, _ in candidates if is_uuid(pid)}
    existing = {str(pk) for pk in Photo.objects.filter(pk__in=ids).values_list("pk", flat=True)}
    out = []
    for pid, name in candidates:
        if not is_uuid(pid) or pid in existing:
            continue
        try:
            if default_storage.get_modified_time(name).timestamp() <= cutoff:
                out.append(name)
        except FileNotFoundError:
            continue
    return out


def collect_orphans(older_than: float | None = None, dry_run: bool = False) -> list[str]:
    names = orphaned_files(older_than)
    if not dry_run:
        storage.delete_files(names)
        remove_empty_folders()
    return names


def remove_empty_folders() -> list[str]:
    """Remove the empty per-photo folders (``comparisons/<id>/``, ``previews/<id>/``) of a local
    storage, e.g. left by a delete whose folder removal raced a worker; returns those removed."""
    if not storage.is_local():
        return []
    dirs = [path for path, pid in storage.photo_dirs() if is_uuid(pid)]
    return [path for path in dirs if storage.remove_folder_if_empty(path)]


def sweep(
    *,
    pending_after: float | None = None,
    encoding_after: float | None = None,
    orphans_after: float | None = None,
    dry_run: bool = False,
    orphans: bool = True,
) -> SweepReport:
    """Relay the outbox, re-queue lost encodes and (``orphans``) collect orphaned files."""
    if not dry_run:  # outbox messages first: their photos are then queued, not stale
        from . import outbox

        outbox.relay()
    report = requeue_stale(pending_after=pending_after, encoding_after=encoding_after, dry_run=dry_run)
    if orphans:
        report.orphans_deleted = collect_orphans(orphans_after, dry_run=dry_run)
    if report.requeued or report.requeue_failed or report.orphans_deleted:
        log.info("sweeper: %s", report.summary())
    return report
