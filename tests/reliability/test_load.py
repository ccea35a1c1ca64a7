"""Load: 200 uploads from 20 concurrent clients on loopback against gunicorn + a real worker.

Bounded and self-stopping (a deadline for the upload and drain phases). Effort "fast" and small
images keep it to a few minutes on 2 CPU cores. Reported: throughput, p50/p95 upload latency,
time-to-ready (the stack's own created_at → ready_at); required: 0 lost, 0 stuck, 0 failed.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from .loadgen import run_load
from .stack import Stack

pytestmark = [pytest.mark.long, pytest.mark.integration]

TOTAL = int(os.environ.get("RELIABILITY_LOAD_UPLOADS", "200"))
CLIENTS = int(os.environ.get("RELIABILITY_LOAD_CLIENTS", "20"))
WORKER_PROCESSES = int(os.environ.get("RELIABILITY_LOAD_WORKERS", "2"))
DEADLINE_S = float(os.environ.get("RELIABILITY_LOAD_DEADLINE", "1200"))
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "reliability"


def test_200_uploads_from_20_clients(tmp_path, reliability_record):
    stack = Stack(
        tmp_path / "stack",
        effort="fast",
        worker_concurrency=WORKER_PROCESSES,
        torch_threads=max(1, 2 // WORKER_PROCESSES),
    )
    try:
        stack.start()
        stack.wait_worker_ready()
        result = run_load(stack, total=TOTAL, clients=CLIENTS, deadline_s=DEADLINE_S)
    finally:
        stack.stop()
        logs = ARTIFACTS / "load-stack"
        logs.mkdir(parents=True, exist_ok=True)
        for log in stack.base.glob("*.log"):
            shutil.copy(log, logs / log.name)
    summary = result.summary()
    summary.update(clients=CLIENTS, worker_processes=WORKER_PROCESSES, effort="fast")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "load.json").write_text(json.dumps(summary, indent=2))
    reliability_record(**summary)

    assert result.errors == [] and result.rejected == [], (result.errors[:5], result.rejected[:5])
    assert result.sent == TOTAL and len(result.accepted) == TOTAL
    assert result.lost == [] and result.stuck == [] and result.failed == [], result.failed[:5]
    assert result.staged_left == 0
    assert result.photos_in_db == TOTAL  # no duplicate from a retried request
    assert result.final_status == {"ready": TOTAL}
