"""Recovery and cost-control drills with the SHIPPED defaults (issue 10): no shortened lease, sweep
interval or visibility timeout (the broker's stays 3600 s).

* kill -9 a real encoding worker (its whole process group) mid-encode: the photo's lease expires and
  the sweeper (a separate maintenance worker with beat, as in docker-compose) re-queues it within
  60 s; a new worker then finishes it from the staged original.
* a restarted broker (no persistence) loses its queued messages: the sweeper re-publishes the
  pending photos and every one ends ready.
* the issue's bomb (115 KB PNG of zeros, 6300×6300) is refused at upload by the work estimate while
  a second user's photo still goes ready in ≤ 2× its idle time.
* the time limit: an attempt over the soft limit is retried at effort fast, then failed with a clear
  message, the original kept (this one shortens the limit itself: it tests the limit, not defaults).
"""

from __future__ import annotations

import io
import signal
import time

import pytest
from PIL import Image

from .stack import PY, Client, Proc, Stack, alive, wait_until

# make_stack is the fault drills' fixture (a private stack per test, logs kept in test-artifacts/)
from .test_faults import big_png, make_stack, small_png, upload_one, wait_status  # noqa: F401

pytestmark = [pytest.mark.long, pytest.mark.integration]


def start_maintenance(stack: Stack) -> Proc:
    """The model-free maintenance worker with the only beat scheduler (sweeper, outbox relay)."""
    cmd = [PY, "-m", "celery", "-A", "config", "worker", "-Q", "maintenance", "-n", "maint@reliability",
           "-c", "1", "--pool", "prefork", "--loglevel", "INFO",
           "-B", "-s", str(stack.base / "celerybeat-schedule")]  # fmt: skip
    return Proc("maintenance", cmd, stack.env(), stack.base / "maintenance.log").start()


def test_kill9_worker_mid_encode_requeued_within_60s(make_stack, kodak_image, reliability_record):  # noqa: F811
    stack = make_stack(effort="fast").start()
    maint = start_maintenance(stack)
    try:
        stack.wait_worker_ready()
        client = Client(stack)
        client.login()
        pid = upload_one(client, big_png(kodak_image))
        wait_status(stack, pid, {"encoding"}, timeout=180)
        time.sleep(2)  # well inside the encode (≥ 10 s at effort fast on this box)
        children = stack.pool_children()
        killed_at = time.monotonic()
        stack.worker.kill(signal.SIGKILL)  # the whole process group: main process and pool
        wait_until(lambda: not any(alive(c) for c in children), 30, "the pool processes to die")
        assert stack.photo(pid)["status"] == "encoding"
        assert stack.staged_ids() == {pid.replace("-", "")}

        wait_status(stack, pid, {"pending"}, timeout=90, interval=0.25)
        requeued = time.monotonic() - killed_at
        assert requeued <= 60, f"re-queued only after {requeued:.1f} s"
        # a fresh message (published right after the status change), while the dead one is still unacked
        wait_until(lambda: stack.queue_length() == 1, 15, "the re-queued message")

        stack.start_worker()
        row = wait_status(stack, pid, {"ready", "failed"}, timeout=600, interval=0.25)
        assert row["status"] == "ready", row["error"]
        # the staged original goes with the ready commit or right after the previews: 0 left, 0 lost
        wait_until(lambda: stack.staged_count() == 0, 120, "the staged originals to be dropped")
        reliability_record(
            seconds_kill_to_requeue=round(requeued, 1),
            seconds_kill_to_ready=round(time.monotonic() - killed_at, 1),
            attempts=row["attempts"],
        )
    finally:
        maint.stop()


def test_broker_restart_loses_nothing_queued(make_stack, reliability_record):  # noqa: F811
    """Uploads queued while no encoding worker runs; Redis restarts without persistence (the queue is
    gone); with the shipped defaults the sweeper re-publishes them and all end ready."""
    stack = make_stack(effort="fast").start(worker=False)
    maint = start_maintenance(stack)
    try:
        client = Client(stack)
        client.login()
        ids = [upload_one(client, small_png(i)) for i in range(3)]
        wait_until(lambda: stack.queue_length() >= 2, 60, "the uploads to be queued")
        stack.restart_redis()
        restarted = time.monotonic()
        assert stack.queue_length() == 0
        stack.start_worker()
        for pid in ids:
            row = wait_status(stack, pid, {"ready", "failed"}, timeout=600, interval=0.5)
            assert row["status"] == "ready", row["error"]
        # the staged original goes with the ready commit or right after the previews: 0 left, 0 lost
        wait_until(lambda: stack.staged_count() == 0, 120, "the staged originals to be dropped")
        elapsed = round(time.monotonic() - restarted, 1)
        reliability_record(seconds_restart_to_all_ready=elapsed, photos=len(ids))
    finally:
        maint.stop()


def zeros_png(side: int) -> bytes:
    out = io.BytesIO()
    Image.new("L", (side, side), 0).save(out, "PNG", optimize=True)
    return out.getvalue()


def test_bomb_refused_while_second_user_goes_ready(make_stack, reliability_record):  # noqa: F811
    stack = make_stack(effort="fast").start()
    stack.manage(
        "shell", "-c",
        "from django.contrib.auth import get_user_model; "
        "get_user_model().objects.create_user('bomber', 'b@example.com', 'a-long-bomber-password-42')",
    )  # fmt: skip
    stack.wait_worker_ready()
    user = Client(stack)
    user.login()
    started = time.monotonic()
    idle_id = upload_one(user, small_png(1, side=256))
    wait_status(stack, idle_id, {"ready"}, timeout=600, interval=0.2)
    idle = time.monotonic() - started

    bomber = Client(stack)
    bomber.http.get(f"{stack.url}/accounts/login/", timeout=60)
    r = bomber.http.post(
        f"{stack.url}/accounts/login/",
        {"username": "bomber", "password": "a-long-bomber-password-42", "csrfmiddlewaretoken": bomber.csrf},
        allow_redirects=False,
        timeout=60,
    )
    assert r.status_code == 302
    bomb = zeros_png(6300)
    assert len(bomb) < 200_000  # the file: ~115 KB
    t0 = time.monotonic()
    answer = bomber.upload("bomb.png", bomb)
    bomb_seconds = time.monotonic() - t0
    [result] = answer.json()["results"]
    assert not result.get("id") and "would take about" in result["error"], answer.text[:500]

    started = time.monotonic()
    second_id = upload_one(user, small_png(2, side=256))
    wait_status(stack, second_id, {"ready"}, timeout=600, interval=0.2)
    second = time.monotonic() - started
    assert second <= 2 * idle + 5, (second, idle)
    reliability_record(
        bomb_answer_s=round(bomb_seconds, 1),
        idle_ready_s=round(idle, 1),
        second_user_ready_s=round(second, 1),
    )


def test_time_limit_steps_down_then_fails_keeping_the_original(make_stack, kodak_image, reliability_record):  # noqa: F811
    stack = make_stack(
        effort="default",
        extra_env={"GALLERY_TASK_SOFT_TIME_LIMIT": "3", "GALLERY_TASK_TIME_LIMIT": "120"},
    ).start()
    stack.wait_worker_ready()
    client = Client(stack)
    client.login()
    pid = upload_one(client, big_png(kodak_image))
    started = time.monotonic()
    row = wait_status(stack, pid, {"ready", "failed"}, timeout=300, interval=0.25)
    assert row["status"] == "failed", row
    assert "more time to encode" in row["error"] and "'fast'" in row["error"], row["error"]
    assert stack.staged_ids() == {pid.replace("-", "")}  # the original is kept for an admin
    log = stack.worker.tail(400)
    assert "trying fast" in log, log
    reliability_record(seconds_to_clean_failure=round(time.monotonic() - started, 1))
