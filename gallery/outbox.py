"""The transactional outbox: task messages written with the data, published by a relay.

``add()`` is called inside the caller's transaction (an upload: photo + staged original + message
commit together, or not at all), and schedules ``relay([id])`` for right after the commit: the fast
path, bounded by the broker's short timeouts and the breaker (``gallery.resilience.BROKER``), never
raising into the request. When the broker is down or paused the row simply stays; the relay
(``gallery.relay_outbox`` beat task every ``GALLERY_OUTBOX_RELAY_INTERVAL`` seconds on the
``maintenance`` queue, and every sweep) publishes it once the broker is back, so the upload
completes without waiting for the sweeper's stale-photo threshold.

Delivery is at least once: a row is claimed (``claimed_at``) before it is published and deleted
after; a relay that died in between leaves a claim that expires after ``CLAIM_SECONDS``. Every
gallery task is idempotent, so a rare duplicate costs a no-op.

Fair share: an encode message names its user and photo. The relay publishes at most
``GALLERY_USER_MAX_IN_FLIGHT`` encodes per user into the broker (photos pending or encoding whose
message left the outbox); the rest of a batch waits here, and each relay run publishes in round-robin
order across users (each user's oldest first), so one user's 500-photo batch cannot starve another
user's single photo. A finished encode runs the relay (gallery/worker/tasks.py), so the next photo
of a batch follows at once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .models import OutboxMessage

log = logging.getLogger(__name__)

CLAIM_SECONDS = 60


@dataclass
class RelayReport:
    published: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


ENCODE_TASK = "gallery.encode_photo"


def add(task: str, *args, user=None, photo_key: str = "") -> OutboxMessage:
    """Record a message in the current transaction; it is published right after the commit (unless
    ``user`` already has its share of encodes in flight: then by a later relay run)."""
    message = OutboxMessage.objects.create(
        task=task, args=[str(a) for a in args], user=user, photo_key=str(photo_key or "")
    )
    transaction.on_commit(lambda: relay([message.pk]))
    return message


def in_flight(user_ids) -> dict:
    """Encodes per user that left the outbox and are not finished (pending or encoding photos)."""
    from django.db.models import Count

    from .models import Photo

    user_ids = [u for u in set(user_ids) if u is not None]
    if not user_ids:
        return {}
    active = dict(
        Photo.objects.filter(owner_id__in=user_ids, status__in=[Photo.Status.PENDING, Photo.Status.ENCODING])
        .values_list("owner_id")
        .annotate(n=Count("id"))
    )
    held = dict(
        OutboxMessage.objects.filter(user_id__in=user_ids, task=ENCODE_TASK)
        .values_list("user_id")
        .annotate(n=Count("id"))
    )
    return {u: max(0, active.get(u, 0) - held.get(u, 0)) for u in user_ids}


def fair_order(messages: list[OutboxMessage], in_flight_by_user: dict, cap: int) -> list[OutboxMessage]:
    """The messages to publish now, in publishing order: encodes round-robin across users (oldest
    first within a user), at most ``cap`` minus what each user has in flight; other tasks first."""
    out = [m for m in messages if m.task != ENCODE_TASK or m.user_id is None]
    position: dict = {}
    ranked = []
    for m in messages:
        if m.task != ENCODE_TASK or m.user_id is None:
            continue
        k = position.get(m.user_id, 0)
        position[m.user_id] = k + 1
        if cap <= 0 or k < cap - in_flight_by_user.get(m.user_id, 0):
            ranked.append((k, m.created_at, m.pk, m))
    ranked.sort(key=lambda r: r[:3])
    return out + [r[3] for r in ranked]


def relay(ids: Iterable[int] | None = None, *, limit: int = 500) -> RelayReport:
    """Publish unclaimed (or stale-claimed) messages, oldest first; ``ids`` restricts to those rows."""
    from . import queueing

    now = timezone.now()
    stale = now - timedelta(seconds=CLAIM_SECONDS)
    rows = OutboxMessage.objects.filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=stale))
    if ids is not None:
        rows = rows.filter(pk__in=list(ids))
    report = RelayReport()
    candidates = list(rows.order_by("created_at", "id")[: limit * 4])
    cap = settings.GALLERY_USER_MAX_IN_FLIGHT
    busy = in_flight(m.user_id for m in candidates if m.task == ENCODE_TASK)
    for message in fair_order(candidates, busy, cap)[:limit]:
        claimed = OutboxMessage.objects.filter(pk=message.pk, claimed_at=message.claimed_at).update(
            claimed_at=timezone.now()
        )
        if not claimed:  # another relay took it
            continue
        if queueing.publish_by_name(message.task, *message.args):
            OutboxMessage.objects.filter(pk=message.pk).delete()
            report.published.append(message.pk)
        else:
            OutboxMessage.objects.filter(pk=message.pk).update(
                claimed_at=None, attempts=message.attempts + 1, last_error=queueing.last_error()[:500]
            )
            report.failed.append(message.pk)
            break  # the broker is unreachable: the rest waits for the next relay run
    if report.published:
        log.info("outbox: published %d message(s)", len(report.published))
    return report


def pending_count() -> int:
    return OutboxMessage.objects.count()
