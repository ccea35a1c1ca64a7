"""The GPU worker's shape (docker-compose.yml): a real Celery worker with the threads pool coding
several photos at once against one model whose passes are batched (codec/models/batching.py).

Run on the CPU here: it checks the wiring (threads pool warm-up, per-thread decoder memos, shared
passes, every photo READY with its thumbnail), not the speed, which only a GPU shows
(codec.tools.bench.throughput, `make bench-gpu`)."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from django.urls import reverse
from PIL import Image

from gallery import previews
from gallery.models import Photo, StagedUpload

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PHOTOS = 3


@pytest.fixture
def batched_threads_worker(settings, monkeypatch, redis_url, _test_broker):
    from celery.contrib.testing.worker import start_worker

    from codec.models import batching
    from codec.models.registry import clear_cache

    from .conftest import private_broker

    # the in-process worker shares this process: no address-space limit (it would cap pytest too)
    settings.GALLERY_TASK_MEMORY_LIMIT = 0
    settings.GALLERY_USER_MAX_IN_FLIGHT = 0  # all photos of the one user in the broker at once
    monkeypatch.setenv(batching.BATCH_MAX_ENV, str(PHOTOS))
    monkeypatch.setenv(batching.BATCH_WAIT_ENV, "300")  # a loaded CI box: give the threads time to meet
    clear_cache()
    try:
        with private_broker(_test_broker, redis_url, 10) as app, start_worker(
            app, pool="threads", concurrency=PHOTOS, queues=["gpu", "maintenance"],
            perform_ping_check=False, loglevel="WARNING", shutdown_timeout=60,
        ) as worker:
            yield worker
    finally:
        clear_cache()


def _png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    return buf.getvalue()


def test_photos_coded_at_once_share_passes_and_all_become_ready(
    batched_threads_worker, client, user, kodak_dir, media_root
):
    from codec.models.registry import get_model

    client.force_login(user)
    ids = []
    for n in range(PHOTOS):
        rgb = np.asarray(Image.open(kodak_dir / f"kodim{n + 1:02d}.png").convert("RGB"))[:128, :192].copy()
        fh = io.BytesIO(_png(rgb))
        fh.name = f"crop-{n}.png"
        response = client.post(reverse("gallery:upload"), {"size": "standard", "files": fh},
                                HTTP_ACCEPT="application/json")
        assert response.status_code == 201, response.content
        ids.append(response.json()["results"][0]["id"])

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        statuses = dict(Photo.objects.filter(pk__in=ids).values_list("id", "status"))
        assert Photo.Status.FAILED not in statuses.values(), Photo.objects.filter(pk__in=ids).values("error")
        if all(statuses[pk] == Photo.Status.READY for pk in statuses) and len(statuses) == PHOTOS:
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"not all READY after 300 s: {statuses}")

    for photo in Photo.objects.filter(pk__in=ids):
        assert photo.latent_bytes and previews.lookup(photo, "thumb") is not None
    # the comparisons come after READY in the same task: let them finish before the test's database goes
    while StagedUpload.objects.filter(photo_id__in=ids).exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not StagedUpload.objects.filter(photo_id__in=ids).exists(), "comparisons never finished"
    model = get_model("taesd")
    stats = model.stats()  # the batched model this process's worker threads used
    shared = {name: dict(s.sizes) for name, s in stats.items() if any(size > 1 for size in s.sizes)}
    assert shared, f"no pass was shared between the photos: {stats}"
    assert "decode" not in vars(model)  # every thread's decoder memo is gone
