"""Fault drills on a real, private stack (tests/reliability/stack.py): real worker processes killed
with SIGKILL mid-encode, the private Redis restarted with tasks queued, the database file taken
away under gunicorn. After each, every accepted upload must end ready, from its staged original.
"""

from __future__ import annotations

import io
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .stack import Client, Stack, alive, wait_until

pytestmark = [pytest.mark.long, pytest.mark.integration]


def big_png(kodak_image, scale: int = 1) -> bytes:
    """A photo large enough that its encode takes a few seconds on CPU (so it can be interrupted)."""
    img = Image.open(kodak_image(23)).convert("RGB")
    img = img.resize((img.width * scale, img.height * scale), Image.Resampling.BICUBIC)
    out = io.BytesIO()
    img.save(out, "PNG", compress_level=1)
    return out.getvalue()


def small_png(seed: int, side: int = 96) -> bytes:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, size=(6, 8, 3), dtype=np.uint8)
    img = Image.fromarray(base).resize((side + 32, side), Image.Resampling.BICUBIC)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "reliability"


@pytest.fixture
def make_stack(tmp_path, kodak_dir, request):
    stacks: list[Stack] = []

    def make(**kw) -> Stack:
        stack = Stack(tmp_path / f"stack{len(stacks)}", **kw)
        stacks.append(stack)
        return stack

    yield make
    for i, stack in enumerate(stacks):
        stack.stop()
        logs = ARTIFACTS / f"{request.node.name}-{i}"  # kept for the post-mortem
        logs.mkdir(parents=True, exist_ok=True)
        for log in stack.base.glob("*.log"):
            shutil.copy(log, logs / log.name)


def upload_one(client: Client, data: bytes, name: str = "photo.png", size: str = "standard") -> str:
    response = client.upload(name, data, size=size)
    assert response.status_code == 201, response.text[:500]
    return response.json()["results"][0]["id"]


def wait_status(stack: Stack, photo_id: str, statuses: set[str], timeout: float, interval: float = 0.05):
    def check():
        row = stack.photo(photo_id)
        return row if row and row["status"] in statuses else None

    return wait_until(check, timeout, f"photo {photo_id} to reach {statuses}", interval=interval)


def test_sigkill_pool_process_mid_encode(make_stack, kodak_image, reliability_record):
    """SIGKILL the worker process running the encode: the task is redelivered, the photo ends ready."""
    stack = make_stack(effort="fast").start()
    stack.wait_worker_ready()
    client = Client(stack)
    client.login()
    pid = upload_one(client, big_png(kodak_image))
    wait_status(stack, pid, {"encoding"}, timeout=120)
    [child] = stack.pool_children()
    assert stack.staged_ids() == {pid.replace("-", "")}
    killed_at = time.monotonic()
    import os

    os.kill(child, signal.SIGKILL)
    assert not (stack.base / "media" / "latents" / f"{pid}.sdl").exists()  # really mid-encode
    row = wait_status(stack, pid, {"ready", "failed"}, timeout=600, interval=0.25)
    recovered = time.monotonic() - killed_at
    assert row["status"] == "ready", row["error"]
    assert row["attempts"] == 2
    # the staged original goes with the ready commit or right after the previews: 0 left, 0 lost
    wait_until(lambda: stack.staged_count() == 0, 120, "the staged originals to be dropped")
    assert stack.worker.running() and not alive(child)
    log = stack.worker.tail(400)
    assert "SIGKILL" in log or "WorkerLostError" in log, log
    reliability_record(seconds_kill_to_ready=round(recovered, 1), attempts=row["attempts"])


def test_sigkill_whole_worker_then_restart(make_stack, kodak_image, reliability_record):
    """SIGKILL the worker and its pool mid-encode; a new worker gets the unacknowledged task back
    after the broker's visibility timeout and finishes it from the still-staged original."""
    visibility = 15
    stack = make_stack(effort="fast", visibility_timeout=visibility).start()
    stack.wait_worker_ready()
    client = Client(stack)
    client.login()
    pid = upload_one(client, big_png(kodak_image))
    wait_status(stack, pid, {"encoding"}, timeout=120)
    killed_at = time.monotonic()
    children = stack.pool_children()
    stack.worker.kill(signal.SIGKILL)
    wait_until(lambda: not any(alive(c) for c in children), 30, "the pool processes to die")
    time.sleep(1)
    row = stack.photo(pid)
    assert row["status"] == "encoding" and stack.staged_ids() == {pid.replace("-", "")}
    assert stack.queue_length() == 0  # the message is held unacknowledged, not lost

    stack.start_worker()
    row = wait_status(stack, pid, {"ready", "failed"}, timeout=visibility + 600, interval=0.25)
    assert row["status"] == "ready", row["error"]
    # the staged original goes with the ready commit or right after the previews: 0 left, 0 lost
    wait_until(lambda: stack.staged_count() == 0, 120, "the staged originals to be dropped")
    reliability_record(
        seconds_kill_to_ready=round(time.monotonic() - killed_at, 1),
        visibility_timeout_s=visibility,
        attempts=row["attempts"],
    )


def test_redis_restart_with_tasks_queued_then_sweeper(make_stack, reliability_record):
    """Tasks queued in Redis are lost when it restarts empty (and one upload happens while it is
    down); the beat-driven sweeper re-queues them, each exactly once, and all end ready."""
    stack = make_stack(
        beat=True,
        extra_env={
            "GALLERY_SWEEP_INTERVAL": "3",
            "GALLERY_SWEEP_PENDING_AFTER": "6",
            "GALLERY_SWEEP_ENCODING_AFTER": "120",
            # every upload goes to the broker at once (no fair-share hold in the outbox): this drill is
            # about messages the broker forgot
            "GALLERY_USER_MAX_IN_FLIGHT": "0",
        },
    ).start(worker=False)
    client = Client(stack)
    client.login()
    ids = [upload_one(client, small_png(i), f"q{i}.png") for i in range(3)]
    assert stack.queue_length() == 3

    stack.restart_redis()
    assert stack.queue_length() == 0  # the broker forgot every queued task

    stack.redis.stop()
    started = time.monotonic()
    ids.append(upload_one(client, small_png(9), "while-down.png"))  # accepted; queueing failed
    seconds_upload_broker_down = time.monotonic() - started
    stack.start_redis()
    assert stack.queue_length() == 0
    assert set(stack.status_counts()) == {"pending"} and stack.staged_count() == 4

    stack.start_worker()
    for pid in ids:
        row = wait_status(stack, pid, {"ready", "failed"}, timeout=300, interval=0.5)
        assert row["status"] == "ready", row["error"]
        assert row["attempts"] == 1  # re-queued once, never duplicated
    # the staged original goes with the ready commit or right after the previews: 0 left, 0 lost
    wait_until(lambda: stack.staged_count() == 0, 120, "the staged originals to be dropped")
    log = stack.worker.tail(2000)
    requeued = sum(log.count(f"re-queued photo {pid}") for pid in ids)
    # the three the broker forgot are re-queued by the sweeper; the upload made while it was down is
    # published from the outbox by the relay (gallery/outbox.py)
    assert requeued == 3, log
    reliability_record(
        lost_tasks=4,
        requeued_by_sweeper=requeued,
        upload_with_broker_down_s=round(seconds_upload_broker_down, 2),
    )


def test_database_outage_under_gunicorn(make_stack, reliability_record):
    """The SQLite file disappears under gunicorn: clean 503 pages, nothing half-written; back → works."""
    stack = make_stack().start(worker=False)
    client = Client(stack)
    client.login()
    off = stack.db_dir.with_name("db.off")
    stack.db_dir.rename(off)
    try:
        response = client.upload("a.png", small_png(1))
        page = client.http.get(stack.url + "/", timeout=30)
        health = client.http.get(stack.url + "/healthz", timeout=30)
    finally:
        off.rename(stack.db_dir)
    assert response.status_code == 503, response.text[:300]
    assert "temporarily unavailable" in response.json()["error"]
    assert response.headers["Retry-After"].isdigit()
    assert page.status_code == 503 and "temporarily unavailable" in page.text and "Traceback" not in page.text
    assert health.status_code == 503
    assert stack.status_counts() == {} and stack.staged_count() == 0
    assert not any(p.is_file() for p in (stack.base / "media").rglob("*"))

    upload_one(client, small_png(2))
    assert stack.status_counts() == {"pending": 1} and stack.staged_count() == 1
    reliability_record(outage_status=response.status_code, after_recovery="201")
