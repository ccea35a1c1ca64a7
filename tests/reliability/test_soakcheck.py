"""The soak drill's verdicts (tests/reliability/soakcheck.py) on synthetic records: no stack needed."""

from __future__ import annotations

import copy

from .soakcheck import clear_message, evaluate, markdown, passed, quartile_medians

A, B, C, D = (f"00000000-0000-0000-0000-00000000000{i}" for i in range(1, 5))


def healthy_record() -> dict:
    flat = [[t * 10.0, 300.0 + (t % 3)] for t in range(40)]
    return {
        "config": {"fault_grace_s": 30, "memory_growth_ratio": 1.25, "memory_growth_mib": 64, "minutes": 1},
        "faults": [{"kind": "redis-kill9", "start": 100.0, "end": 120.0, "note": ""}],
        "uploads": [
            {"t": 1.0, "id": A, "http": 201, "error": ""},
            {"t": 2.0, "id": B, "http": 201, "error": ""},
            {"t": 3.0, "id": C, "http": 201, "error": ""},
            {"t": 4.0, "id": None, "http": 400, "error": "This file is not an image we can read."},
            {"t": 5.0, "id": None, "http": None, "error": ""},  # no answer: not counted as lost
        ],
        "deleted": [C],
        # a 500 inside the window (start 100 .. end 120 + 30 s grace) is allowed
        "http_errors": [{"t": 140.0, "kind": "home", "status": 500, "error": ""}],
        "final": {
            "photos": {
                A: {"status": "ready", "error": "", "latent_ok": True, "staged": False},
                B: {
                    "status": "failed",
                    "error": "This photo needs more time to encode than allowed.",
                    "latent_ok": False,
                    "staged": True,
                },
            },
            "staged_orphans": [],
            "deleted_present": [],
        },
        "memory": {"web": flat, "worker": flat},
    }


def test_a_healthy_record_passes_and_renders():
    record = healthy_record()
    checks = evaluate(record)
    assert passed(checks), {k: c for k, c in checks.items() if not c["ok"]}
    assert checks["lost"]["value"] == 0 and checks["stuck"]["value"] == 0
    assert checks["memory_web"]["value"] == {"first_quartile_mib": 301.0, "last_quartile_mib": 301.0}
    text = markdown(record, checks)
    assert "**PASS**" in text and "| 5xx_outside_faults | ok | 0 |" in text


def test_each_kind_of_failure_is_caught():
    cases = {
        "lost": lambda r: r["final"]["photos"].pop(A),  # accepted, never deleted, gone
        "stuck": lambda r: r["final"]["photos"][A].update(status="encoding"),
        "5xx_outside_faults": lambda r: r["http_errors"].append({"t": 151.0, "kind": "photo", "status": 502}),
        "unanswered_outside_faults": lambda r: r["http_errors"].append(
            {"t": 10.0, "kind": "status", "status": None, "error": "ReadTimeout"}
        ),
        "memory_worker": lambda r: r["memory"].update(worker=[[t, 300.0 + 20 * t] for t in range(40)]),
        "ready_original_dropped": lambda r: r["final"]["photos"][A].update(staged=True),
        "deleted_gone": lambda r: r["final"]["deleted_present"].append(C),
    }
    for name, damage in cases.items():
        record = copy.deepcopy(healthy_record())
        damage(record)
        checks = evaluate(record)
        failing = sorted(k for k, c in checks.items() if not c["ok"])
        assert failing == [name], (name, failing)


def test_lost_counts_missing_latents_unclear_failures_and_orphaned_originals():
    record = healthy_record()
    record["final"]["photos"][A]["latent_ok"] = False  # ready, latent file missing
    record["final"]["photos"][B]["error"] = "[Errno 30] Read-only file system: '/srv/media/latents/x.sdl'"
    record["final"]["staged_orphans"] = ["deadbeef"]
    assert evaluate(record)["lost"]["value"] == 3


def test_helpers():
    assert quartile_medians([[0, 1.0]] * 3) is None
    assert quartile_medians([[t, float(t)] for t in range(1, 9)]) == (1.5, 7.5)
    assert not clear_message("") and not clear_message('Traceback (most recent call last):\n  File "x"')
    assert clear_message("The file is too large (60 MP; the limit is 40 MP).")
