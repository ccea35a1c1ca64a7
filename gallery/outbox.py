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
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

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


def add(task: str, *args) -> OutboxMessage:
    """Record a message in the current transaction; it is published right after the commit."""
    message = OutboxMessage.objects.create(task=task, args=[str(a) for a in args])
    transaction.on_commit(lambda: relay([message.pk]))
    return message


def relay(ids: Iterable[int] | None = None, *, limit: int = 500) -> RelayReport:
    """Publish unclaimed (or stale-claimed) messages, oldest first; ``ids`` restricts to those rows."""
    from . import queueing

    now = timezone.now()
    stale = now - timedelta(seconds=CLAIM_SECONDS)
    rows = OutboxMessage.objects.filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=stale))
    if ids is not None:
        rows = rows.filter(pk__in=list(ids))
    report = RelayReport()
    for message in rows.order_by("created_at", "id")[:limit]:
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
