"""Supervisor of the fuzz child process (tests/reliability/fuzzing.py).

Starts the child, watches its progress file, and when the child dies (segfault, OOM kill, any
non-zero exit) or stops making progress (a hang inside C code that the per-case alarm cannot
interrupt), records the case it was on as a failure and restarts it after that case.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class FuzzReport:
    cases: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)  # CodecError subclass → count
    info_ok: int = 0
    failures: list[dict] = field(default_factory=list)
    crashes: list[dict] = field(default_factory=list)  # process died / hung (recorded by the parent)
    wall_seconds: float = 0.0
    case_seconds_total: float = 0.0
    case_seconds_max: float = 0.0
    case_seconds_p99: float = 0.0
    rss_growth_max_mib: float = 0.0
    child_max_rss_mib: float = 0.0
    restarts: int = 0

    @property
    def all_failures(self) -> list[dict]:
        return self.failures + self.crashes

    def metrics(self) -> dict:
        return {
            "cases": self.cases,
            "decoded": self.outcomes.get("decoded", 0),
            "rejected_codec_error": self.outcomes.get("rejected", 0),
            "passed_parser": self.info_ok,
            "failures": len(self.all_failures),
            "cases_per_s": round(self.cases / self.wall_seconds, 1) if self.wall_seconds else 0,
            "case_time_max_s": round(self.case_seconds_max, 3),
            "case_time_p99_s": round(self.case_seconds_p99, 4),
            "rss_growth_max_mib": round(self.rss_growth_max_mib, 1),
            "child_max_rss_mib": round(self.child_max_rss_mib),
            "wall_s": round(self.wall_seconds, 1),
        }


def _current(out: Path) -> dict:
    try:
        return json.loads((out / "current.json").read_text())
    except (OSError, ValueError):
        return {"index": -1}


def run_fuzz(
    out: Path,
    *,
    seed: int = 0,
    cases: int = 1000,
    corpus: Path | None = None,
    time_limit: float = 10.0,
    mem_limit_mb: float = 1024.0,
    stall_seconds: float = 120.0,
    startup_seconds: float = 600.0,
    max_restarts: int = 50,
) -> FuzzReport:
    out.mkdir(parents=True, exist_ok=True)
    report = FuzzReport()
    start = 0
    started = time.monotonic()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    while True:
        cmd = [sys.executable, "-m", "tests.reliability.fuzzing", "--seed", str(seed), "--start", str(start),
               "--cases", str(cases), "--out", str(out), "--time-limit", str(time_limit),
               "--mem-limit-mb", str(mem_limit_mb)]  # fmt: skip
        if corpus is not None:
            cmd += ["--corpus", str(corpus)]
        (out / "current.json").unlink(missing_ok=True)
        log = open(out / f"child-{start}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        last_index, last_change = -2, time.monotonic()
        hung = False
        while proc.poll() is None:
            time.sleep(0.5)
            cur = _current(out).get("index", -1)
            if cur != last_index:
                last_index, last_change = cur, time.monotonic()
            limit = startup_seconds if cur < 0 else stall_seconds
            if time.monotonic() - last_change > limit:
                hung = True
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        cur = _current(out)
        if proc.returncode == 0 and cur.get("what") == "done":
            break
        index = cur.get("index", -1)
        reason = (
            f"hang: no progress for {stall_seconds:.0f} s"
            if hung
            else f"process died: {_describe_rc(proc.returncode)}"
        )
        case_file = out / "failures" / f"{max(index, 0):06d}-crash.bin"
        if (out / "current.bin").exists() and index >= 0:
            case_file.parent.mkdir(exist_ok=True)
            case_file.write_bytes((out / "current.bin").read_bytes())
        report.crashes.append(
            {"index": index, "what": cur.get("what", "?"), "failure": reason, "file": str(case_file)}
        )
        report.restarts += 1
        if index < 0 or report.restarts > max_restarts:
            tail = (out / f"child-{start}.log").read_text(errors="replace")[-2000:]
            report.crashes[-1]["failure"] += f" (before the first case; log tail: {tail})"
            break
        start = index + 1
    report.wall_seconds = time.monotonic() - started
    _aggregate(out, report)
    return report


def _describe_rc(rc: int | None) -> str:
    if rc is None:
        return "still running"
    if rc < 0:
        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exit code {rc}"


def _aggregate(out: Path, report: FuzzReport) -> None:
    seconds = []
    for path in sorted(out.glob("stats-*.jsonl")):
        for raw in path.read_text().splitlines():
            line = json.loads(raw)
            if line.get("index", 0) < 0:
                report.failures.append(line)
                continue
            report.cases += 1
            outcome = line["outcome"]
            report.outcomes[outcome] = report.outcomes.get(outcome, 0) + 1
            if line.get("info") == "ok":
                report.info_ok += 1
            if line.get("error"):
                report.errors[line["error"]] = report.errors.get(line["error"], 0) + 1
            if outcome == "failure":
                report.failures.append(line)
            seconds.append(line.get("seconds", 0.0))
            report.rss_growth_max_mib = max(report.rss_growth_max_mib, line.get("rss_growth_mib", 0.0))
    report.cases += len(report.crashes)
    for path in out.glob("maxrss-*.json"):
        report.child_max_rss_mib = max(report.child_max_rss_mib, json.loads(path.read_text())["maxrss_mib"])
    if seconds:
        report.case_seconds_total = float(np.sum(seconds))
        report.case_seconds_max = float(np.max(seconds))
        report.case_seconds_p99 = float(np.percentile(seconds, 99))
