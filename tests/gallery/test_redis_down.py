"""Issue 10 items 1+2: the site answers when Redis (cache and broker) is down or paused.

Real faults, no mocks: the cache and the broker point at a closed port (connection refused), or at
a private ``redis-server`` stopped with SIGSTOP (accepts connections, never answers). Pages must
answer 200 within 2 s with placeholders, and an upload must be accepted within 2 s (the photo waits
``pending`` with its original; the sweeper queues it once the broker is back).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from gallery.models import Photo, StagedUpload

from .conftest import broker_at
from .factories import image_bytes, ready_photo

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

LIMIT_S = 2.0
TIMINGS = Path(__file__).resolve().parents[2] / "test-artifacts" / "redis-down-timings.json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port() -> int:
    return free_port()  # bound and released: nothing listens there now


@contextmanager
def paused_redis(tmp_path):
    """A private redis-server on a free port, SIGSTOPped for the block (then resumed and stopped)."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    args += ["--dir", str(tmp_path)]
    proc = subprocess.Popen(
        [exe, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import redis

        deadline = time.monotonic() + 20
        while True:
            try:
                redis.Redis(port=port, socket_connect_timeout=0.5).ping()
                break
            except redis.RedisError:
                assert time.monotonic() < deadline, "private redis-server did not start"
                time.sleep(0.1)
        os.kill(proc.pid, signal.SIGSTOP)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        proc.terminate()
        proc.wait(10)


@contextmanager
def redis_at(settings, app, url: str):
    """Cache and broker at ``url`` for the block, with the shipped timeouts."""
    caches = settings.CACHES
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "OPTIONS": {
                "socket_connect_timeout": settings.REDIS_CONNECT_TIMEOUT,
                "socket_timeout": settings.REDIS_SOCKET_TIMEOUT,
            },
        }
    }
    transport = dict(app.conf.broker_transport_options or {})
    with broker_at(app, url):
        app.conf.broker_transport_options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        try:
            yield
        finally:
            app.conf.broker_transport_options = transport
            settings.CACHES = caches


def timed(fn):
    started = time.monotonic()
    response = fn()
    return response, time.monotonic() - started


def exercise_site(client, user, on_commit) -> dict[str, tuple[int, float]]:
    """Home, photo page, status.json, a preview and an upload; (status, seconds) of each."""
    photo = ready_photo(user)  # no preview file yet: every page hits the preview machinery
    results = {}
    for name, url in [
        ("home", reverse("gallery:list")),
        ("photo", reverse("gallery:detail", args=[photo.pk])),
        ("status.json", reverse("gallery:status", args=[photo.pk])),
        ("preview", reverse("gallery:preview", args=[photo.pk, "thumb"])),
    ]:
        response, seconds = timed(lambda url=url: client.get(url))
        results[name] = (response.status_code, round(seconds, 3))
    upload = ContentFile(image_bytes(64, 48, "PNG"), name="while-redis-is-down.png")
    started = time.monotonic()
    with on_commit(execute=True):  # the publish runs at the commit, inside the request as in production
        response = client.post(
            reverse("gallery:upload"), {"size": "small", "files": upload}, HTTP_ACCEPT="application/json"
        )
    seconds = time.monotonic() - started
    results["upload"] = (response.status_code, round(seconds, 3))
    if response.status_code == 201:
        [result] = response.json()["results"]
        staged = Photo.objects.get(pk=result["id"])
        assert staged.status == Photo.Status.PENDING
        assert StagedUpload.objects.filter(photo=staged).exists()  # kept for the sweeper
        from gallery import resilience

        assert resilience.BROKER.is_open  # the publish was tried and failed (not skipped by a page)
        from gallery.models import OutboxMessage

        # the encode message waits in the database for the relay
        assert OutboxMessage.objects.filter(args=[str(staged.pk)]).exists()
    return results


def record(case: str, results: dict) -> None:
    TIMINGS.parent.mkdir(exist_ok=True)
    data = json.loads(TIMINGS.read_text()) if TIMINGS.exists() else {}
    data[case] = results
    TIMINGS.write_text(json.dumps(data, indent=2))


def check(results: dict) -> None:
    expected = {"home": 200, "photo": 200, "status.json": 200, "preview": 200, "upload": 201}
    assert {k: v[0] for k, v in results.items()} == expected, results
    slow = {k: v[1] for k, v in results.items() if v[1] >= LIMIT_S}
    assert not slow, results


def test_site_answers_with_redis_refusing_connections(
    alice_client, user, settings, _test_broker, django_capture_on_commit_callbacks
):
    with redis_at(settings, _test_broker, f"redis://127.0.0.1:{closed_port()}/0"):
        results = exercise_site(alice_client, user, django_capture_on_commit_callbacks)
    record("connection refused", results)
    check(results)


def test_site_answers_with_redis_paused(
    alice_client, user, settings, _test_broker, tmp_path, django_capture_on_commit_callbacks
):
    with paused_redis(tmp_path) as url, redis_at(settings, _test_broker, url):
        results = exercise_site(alice_client, user, django_capture_on_commit_callbacks)
    record("paused (SIGSTOP)", results)
    check(results)


def test_render_is_queued_once_redis_returns(user, settings, purged_queue):
    """After the outage the next page visit queues the render (the breaker closes by itself)."""
    from gallery import previews, resilience

    photo = ready_photo(user)
    with redis_at(settings, purged_queue, f"redis://127.0.0.1:{closed_port()}/0"):
        assert previews.request(photo, "thumb") is None
    assert resilience.CACHE.is_open  # the page skipped Redis for the next calls
    resilience.CACHE.reset()
    resilience.BROKER.reset()
    assert previews.request(photo, "thumb") is None
    with purged_queue.connection_for_read() as conn:
        assert conn.default_channel.client.llen("gpu") == 1
