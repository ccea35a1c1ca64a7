"""GALLERY_COMPARISONS_QUEUE: the comparisons of a READY photo as a task of their own on a CPU queue
(the compose GPU worker hands them off), with a real Redis and real workers."""

from __future__ import annotations

import io
import json
import time

import numpy as np
import pytest
from django.urls import reverse
from PIL import Image

from gallery import sweeper
from gallery.models import Photo, StagedUpload

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

QUEUE = "cpu-test"


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def test_comparisons_run_as_their_own_task_on_the_comparisons_queue(
    settings, client, user, kodak_dir, media_root, redis_url, _test_broker
):
    import redis
    from celery.contrib.testing.worker import start_worker

    from .conftest import private_broker

    settings.GALLERY_COMPARISONS_QUEUE = QUEUE
    settings.GALLERY_TASK_MEMORY_LIMIT = 0  # in-process workers: no address-space limit on pytest
    rgb = np.asarray(Image.open(kodak_dir / "kodim03.png").convert("RGB"))[:96, :128].copy()
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    buf.seek(0)
    buf.name = "crop.png"
    client.force_login(user)
    with private_broker(_test_broker, redis_url, 11) as app:
        broker = redis.Redis.from_url(app.conf.broker_url)
        broker.delete(QUEUE)
        try:
            # the encoding worker alone: the photo becomes READY, its comparisons wait on the queue
            with start_worker(app, pool="solo", concurrency=1, queues=["gpu"], perform_ping_check=False,
                              loglevel="WARNING", shutdown_timeout=30):
                response = client.post(reverse("gallery:upload"), {"size": "standard", "files": buf},
                                       HTTP_ACCEPT="application/json")
                assert response.status_code == 201, response.content
                photo_id = response.json()["results"][0]["id"]
                _wait(lambda: Photo.objects.filter(pk=photo_id, status=Photo.Status.READY).exists(), 300,
                      "READY")
                waiting = _wait(lambda: broker.lrange(QUEUE, 0, -1), 30, "the comparisons message")
            [message] = [json.loads(m) for m in waiting]
            assert message["headers"]["task"] == "gallery.make_comparisons"
            assert StagedUpload.objects.filter(photo_id=photo_id).exists()  # kept for the comparisons
            assert not Photo.objects.get(pk=photo_id).comparisons.exists()
            assert photo_id in (sweeper.queued_photo_ids() or set())  # the sweeper sees it queued
            # a CPU worker on the comparisons queue makes them and lets the original go
            with start_worker(app, pool="solo", concurrency=1, queues=[QUEUE], perform_ping_check=False,
                              loglevel="WARNING", shutdown_timeout=30):
                _wait(lambda: not StagedUpload.objects.filter(photo_id=photo_id).exists(), 300,
                      "the comparisons (then the staged original is deleted)")
            formats = set(Photo.objects.get(pk=photo_id).comparisons.values_list("fmt", flat=True))
            assert {"jpeg", "webp", "avif"} <= formats
        finally:
            broker.delete(QUEUE)
