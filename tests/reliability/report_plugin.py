"""pytest plugin used by scripts/reliability.py: one JSON line per test (outcome, time, numbers).

Loaded with ``-p tests.reliability.report_plugin``; writes to ``$RELIABILITY_REPORT``. Numbers are
what tests recorded with ``record_property`` (the ``reliability_record`` fixture).
"""

from __future__ import annotations

import json
import os

import pytest


def _doc(item) -> str:
    doc = getattr(getattr(item, "obj", None), "__doc__", None) or ""
    return " ".join(doc.strip().split("\n\n")[0].split())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    report.reliability_doc = _doc(item)


def pytest_runtest_logreport(report) -> None:
    path = os.environ.get("RELIABILITY_REPORT")
    if not path:
        return
    # One line per test: the call phase, or the phase that failed/skipped before it.
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        outcome = report.outcome
        if hasattr(report, "wasxfail"):
            outcome = "xpassed" if report.outcome == "passed" else "xfailed"
    elif report.when == "teardown" and report.outcome == "failed":
        outcome = "error"
    else:
        return
    line = {
        "nodeid": report.nodeid,
        "when": report.when,
        "outcome": outcome,
        "duration": round(report.duration, 3),
        "doc": getattr(report, "reliability_doc", ""),
        "metrics": dict(report.user_properties),
        "message": "" if outcome == "passed" else _short(report),
    }
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(line, default=str) + "\n")


def _short(report) -> str:
    if hasattr(report, "wasxfail"):
        return f"expected failure: {report.wasxfail}"[:200]
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2])
    text = str(getattr(report, "longreprtext", "") or report.longrepr or "")
    lines = [ln for ln in text.splitlines() if ln.startswith("E ")]
    return (lines[0][2:].strip() if lines else text.strip().splitlines()[-1] if text.strip() else "")[:200]
