"""The transactional outbox (gallery/outbox.py) with a real broker: an upload commits its encode
message with the photo; with the broker down the message waits in the database and the relay (or
the sweeper) publishes it once the broker is back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone

from gallery import outbox, resilience, sweeper
from gallery.models import OutboxMessage, Photo

from .conftest import broker_at
from .factories import image_bytes

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

CLOSED = "redis://127.0.0.1:1/0"


def queued_photo_ids(app) -> list[str]:
    import json

    with app.connection_for_read() as conn:
        raw = conn.default_channel.client.lrange("gpu", 0, -1)
    return [sweeper._photo_id_of(json.loads(m)) for m in raw]


def upload(client, on_commit) -> str:
    data = ContentFile(image_bytes(64, 48, "PNG"), name="outbox.png")
    with on_commit(execute=True):
        response = client.post(
            reverse("gallery:upload"), {"size": "small", "files": data}, HTTP_ACCEPT="application/json"
        )
    assert response.status_code == 201, response.content
    return response.json()["results"][0]["id"]


def test_upload_publishes_right_after_the_commit(
    alice_client, purged_queue, django_capture_on_commit_callbacks
):
    photo_id = upload(alice_client, django_capture_on_commit_callbacks)
    assert queued_photo_ids(purged_queue) == [photo_id]
    assert not OutboxMessage.objects.exists()  # published rows are deleted


def test_broker_down_upload_waits_in_the_outbox_then_relays(
    alice_client, purged_queue, django_capture_on_commit_callbacks
):
    with broker_at(purged_queue, CLOSED):
        photo_id = upload(alice_client, django_capture_on_commit_callbacks)
    [message] = OutboxMessage.objects.all()
    assert (message.task, message.args, message.attempts) == ("gallery.encode_photo", [photo_id], 1)
    assert message.claimed_at is None and "111" in message.last_error  # connection refused
    assert Photo.objects.get(pk=photo_id).status == Photo.Status.PENDING
    assert queued_photo_ids(purged_queue) == []

    resilience.BROKER.reset()  # the broker is back (the breaker would also close by itself)
    report = outbox.relay()
    assert report.published == [message.pk] and not OutboxMessage.objects.exists()
    assert queued_photo_ids(purged_queue) == [photo_id]
    assert outbox.relay().published == []  # nothing twice


def test_sweep_relays_first_so_the_photo_is_not_queued_twice(
    alice_client, purged_queue, django_capture_on_commit_callbacks
):
    with broker_at(purged_queue, CLOSED):
        photo_id = upload(alice_client, django_capture_on_commit_callbacks)
    resilience.BROKER.reset()
    Photo.objects.filter(pk=photo_id).update(updated_at=timezone.now() - timedelta(hours=1))
    report = sweeper.sweep(pending_after=60)
    assert report.requeued == [] and report.still_queued == 1
    assert queued_photo_ids(purged_queue) == [photo_id]


def test_a_dead_relays_claim_expires(purged_queue):
    message = OutboxMessage.objects.create(
        task="gallery.encode_photo", args=["00000000-0000-0000-0000-000000000001"]
    )
    OutboxMessage.objects.filter(pk=message.pk).update(claimed_at=timezone.now())
    assert outbox.relay().published == []  # someone is publishing it right now
    OutboxMessage.objects.filter(pk=message.pk).update(
        claimed_at=timezone.now() - timedelta(seconds=outbox.CLAIM_SECONDS + 1)
    )
    assert outbox.relay().published == [message.pk]


def test_relay_runs_on_the_maintenance_queue_by_beat():
    from django.conf import settings

    from config.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["gallery-relay-outbox"]
    assert entry["task"] == "gallery.relay_outbox"
    assert app.amqp.router.route({}, "gallery.relay_outbox")["queue"].name == "maintenance"
