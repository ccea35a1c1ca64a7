"""The worker package: stable task names and routes, autodiscovery, the maintenance queue, and a
real ``celery worker`` process that refuses to consume when its model cannot load."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from .conftest import TEST_REDIS_URL, broker_at

# The worker subprocesses below use their own Redis database: workers of other test runs on this
# machine consume the shared test database's queues and would take these tests' messages.
OWN_DB_URL = TEST_REDIS_URL.rsplit("/", 1)[0] + "/13"


def test_task_names_and_queues_are_stable():
    from config.celery import app
    from gallery.worker import tasks

    assert (tasks.encode_photo.name, tasks.render_previews.name, tasks.sweep.name) == (
        "gallery.encode_photo",
        "gallery.render_previews",
        "gallery.sweep",
    )
    route = app.amqp.router.route
    assert route({}, "gallery.encode_photo")["queue"].name == "gpu"
    assert route({}, "gallery.render_previews")["queue"].name == "gpu"
    assert route({}, "gallery.sweep")["queue"].name == "maintenance"
    # a worker started without -Q consumes both
    assert set(app.amqp.queues.consume_from) >= {"gpu", "maintenance"}


def _python(project_root, code: str, **env) -> subprocess.CompletedProcess:
    full = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **env}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=project_root, env=full, capture_output=True, text=True, timeout=120
    )


def test_celery_autodiscovers_the_worker_module(project_root):
    """Only what a worker does at start (Django setup + Celery's import of task modules)."""
    code = (
        "import django; django.setup(); from config.celery import app;"
        "app.loader.import_default_modules();"
        "print(app.tasks['gallery.encode_photo'].__module__, app.tasks['gallery.sweep'].__module__)"
    )
    out = _python(project_root, code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-2:] == ["gallery.worker.tasks", "gallery.worker.tasks"]


def _llen(queue: str) -> int:
    import redis

    client = redis.Redis.from_url(OWN_DB_URL)
    try:
        return int(client.llen(queue))
    finally:
        client.close()


def _worker(project_root, tmp_path, *args: str, **env) -> subprocess.Popen:
    full = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "GALLERY_VAR_DIR": str(tmp_path / "var"),
        "REDIS_URL": OWN_DB_URL,
        "GALLERY_WARM_MODEL": "0",
        "LOG_LEVEL": "INFO",
        **env,
    }
    full.pop("CELERY_BROKER_URL", None)
    cmd = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "-c", "1",
           "-n", f"test-{os.getpid()}@%h", "--without-gossip", "--without-mingle", *args]  # fmt: skip
    return subprocess.Popen(
        cmd, cwd=project_root, env=full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


@pytest.mark.integration
def test_worker_without_weights_refuses_to_consume(project_root, tmp_path, purged_queue):
    from gallery.worker.runtime import EX_CONFIG
    from gallery.worker.tasks import encode_photo

    with broker_at(purged_queue, OWN_DB_URL):
        with purged_queue.connection_for_write() as conn:
            conn.default_channel.queue_purge("gpu")
        encode_photo.apply_async(args=["00000000-0000-0000-0000-000000000000"])
    assert _llen("gpu") == 1
    empty = tmp_path / "no-weights"
    empty.mkdir()
    started = time.monotonic()
    proc = _worker(
        project_root,
        tmp_path,
        "-Q",
        "gpu",
        CODEC_MODEL_DIR=str(empty),
        CODEC_NO_SHARED_FALLBACK="1",
        CODEC_CACHE_DIR=str(empty / "cache"),
        CODEC_OFFLINE="1",
    )
    try:
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == EX_CONFIG, out[-3000:]
    assert "worker refuses to consume" in out and "taesd_" in out
    assert "Traceback" not in out
    assert _llen("gpu") == 1  # the message is still there for a working worker
    assert time.monotonic() - started < 120


@pytest.mark.integration
def test_gpu_worker_also_runs_maintenance(project_root, tmp_path, purged_queue):
    """A worker started with ``-Q gpu`` (as run_stack and compose do) consumes ``maintenance`` too,
    so the sweeper never waits behind the encode backlog."""
    from gallery.worker.tasks import sweep

    with broker_at(purged_queue, OWN_DB_URL):
        with purged_queue.connection_for_write() as conn:
            conn.default_channel.queue_purge("maintenance")
        sweep.apply_async()
    assert _llen("maintenance") == 1
    proc = _worker(project_root, tmp_path, "-Q", "gpu", GALLERY_WORKER_CHECK_MODEL="0")
    try:
        deadline = time.monotonic() + 90
        while _llen("maintenance") and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read()[-3000:]
            time.sleep(0.5)
        assert _llen("maintenance") == 0
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
