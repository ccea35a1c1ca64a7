"""The per-task memory limit on a REAL worker (issue 10): a pool process capped by
``GALLERY_TASK_MEMORY_LIMIT`` (``RLIMIT_AS``, gallery/worker/runtime.py) gets a photo whose encode
needs more. Whatever the allocator does (a MemoryError → the step down to effort ``fast``; a crash of
the pool process → redelivery / the sweeper's lease expiry and the attempt count), the photo must end
READY or FAILED with a message that names memory, its staged original kept until then, and the worker
must still encode a small photo afterwards. Shipped defaults otherwise (no shortened timeouts)."""

from __future__ import annotations

import time

import pytest

from .stack import Client
from .test_faults import big_png, make_stack, small_png, upload_one, wait_status  # noqa: F401

pytestmark = [pytest.mark.long, pytest.mark.integration]

#: a warm codec process maps ≈ 1.3 GB of address space (measured: VmSize after one encode); a 6 MP
#: photo at effort default needs well over 1 GB more
LIMIT_BYTES = int(2.5 * 2**30)


def test_memory_limit_on_a_real_worker(make_stack, kodak_image, reliability_record):  # noqa: F811
    stack = make_stack(effort="default", beat=True,
                       extra_env={"GALLERY_TASK_MEMORY_LIMIT": str(LIMIT_BYTES)}).start()
    stack.wait_worker_ready()
    client = Client(stack)
    client.login()
    started = time.monotonic()
    big = upload_one(client, big_png(kodak_image, scale=4), name="big.png")  # 3072×2048
    row = wait_status(stack, big, {"ready", "failed"}, timeout=1500, interval=1.0)
    seconds = time.monotonic() - started
    staged = stack.query("SELECT COUNT(*) FROM gallery_stagedupload WHERE photo_id = ?",
                         (big.replace("-", ""),))[0][0]
    reliability_record(outcome=row["status"], attempts=row["attempts"], seconds=round(seconds, 1))
    if row["status"] == "failed":
        assert "memory" in (row["error"] or "").lower(), row
        assert staged == 1  # the original is kept for an admin (or a bigger worker)
    # the worker survived (or was replaced by Celery's pool) and still encodes
    small = upload_one(client, small_png(1), name="small.png")
    assert wait_status(stack, small, {"ready"}, timeout=600, interval=1.0)["status"] == "ready"
