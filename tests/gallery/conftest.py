"""Fixtures of the gallery tests: users, isolated media storage, the test broker, a real worker."""

from __future__ import annotations

import os
import socket
from contextlib import contextmanager
from urllib.parse import urlparse

import pytest

TEST_REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
PASSWORD = "a-long-test-password-42"


@pytest.fixture(scope="session", autouse=True)
def _test_broker():
    """Point Celery at the test Redis database (default db 15) before anything connects."""
    from config.celery import app

    app.conf.broker_url = TEST_REDIS_URL
    app.conf.broker_connection_retry_on_startup = False
    yield app


@pytest.fixture(autouse=True)
def _isolated_gallery(settings, tmp_path):
    """Every test gets its own media directory, a clean cache and the fast encoder effort."""
    from django.core.cache import cache

    from gallery import resilience

    resilience.CACHE.reset()  # a breaker tripped by an earlier test must not skip this one's calls
    resilience.BROKER.reset()
    media = tmp_path / "media"
    media.mkdir()
    settings.MEDIA_ROOT = media
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(media), "allow_overwrite": True},
        },
    }
    settings.GALLERY_ENCODE_EFFORT = "fast"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.GALLERY_WARM_MODEL = False
    # The test worker runs in a thread of this process: an address-space cap set for "the pool
    # child" would cap pytest itself, and chromium (which reserves tens of GB of address space)
    # then dies at launch with SIGTRAP.
    settings.GALLERY_TASK_MEMORY_LIMIT = 0
    cache.clear()
    yield media
    try:
        cache.clear()
    except Exception:  # a test pointed CACHES at a closed port; nothing to clear there
        pass


@pytest.fixture
def media_root(_isolated_gallery):
    return _isolated_gallery


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("alice", "alice@example.com", PASSWORD)


@pytest.fixture
def other_user(django_user_model):
    return django_user_model.objects.create_user("bob", "bob@example.com", PASSWORD)


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_user("carol", "carol@example.com", PASSWORD, is_staff=True)


@pytest.fixture
def alice_client(client, user):
    client.force_login(user)
    return client


def redis_reachable(url: str = TEST_REDIS_URL) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def redis_url() -> str:
    if not redis_reachable():
        pytest.fail(f"Redis is not reachable at {TEST_REDIS_URL} (start redis-server or set REDIS_URL)")
    return TEST_REDIS_URL


@pytest.fixture
def purged_queue(redis_url, _test_broker):
    """The ``gpu`` queue of the test broker, emptied before and after the test."""
    app = _test_broker

    def purge() -> None:
        with app.connection_for_write() as conn:
            try:
                conn.default_channel.queue_purge("gpu")
            except Exception:
                pass

    purge()
    yield app
    purge()


@contextmanager
def broker_at(app, url: str):
    """Point the Celery app at another broker URL (e.g. a closed port) for the block."""
    old = app.conf.broker_url

    def switch(to: str) -> None:
        # drop the cached pools without closing them: kombu's global producer pools keep them
        # per URL and hand them out again when the URL comes back
        app._pool = None
        app.amqp._producer_pool = None
        app.conf.broker_url = to

    switch(url)
    try:
        yield app
    finally:
        switch(old)


@contextmanager
def private_broker(app, redis_url: str, db: int):
    """The app's broker on Redis database ``db`` for the block, its queues emptied before and after:
    a test's own worker must not take (or leave) another test process's messages."""
    from urllib.parse import urlparse

    def purge() -> None:
        with app.connection_for_write() as conn:
            for queue in ("gpu", "maintenance"):
                conn.default_channel.queue_purge(queue)

    with broker_at(app, urlparse(redis_url)._replace(path=f"/{db}").geturl()):
        purge()
        try:
            yield app
        finally:
            purge()


@contextmanager
def running_worker(app):
    """A real Celery worker consuming queue ``gpu`` in a thread of this process (solo pool)."""
    from celery.contrib.testing.worker import start_worker

    with start_worker(
        app,
        pool="solo",
        concurrency=1,
        queues=["gpu", "maintenance"],
        perform_ping_check=False,
        loglevel="WARNING",
        shutdown_timeout=30,
    ) as worker:
        yield worker


@pytest.fixture
def gpu_worker(purged_queue):
    with running_worker(purged_queue) as worker:
        yield worker
