#!/usr/bin/env python
"""``make reliability``: run every reliability/security check, long ones included, and print a table
of what was tried and what held (pass/fail, counts, timings).

The checks are pytest tests (tests/reliability, plus the bitstream developer's hypothesis fuzz tests
and the production ``check --deploy`` test of tests/gallery), run in one pytest session with
``RELIABILITY_FULL=1`` so the long ones (10 000-case fuzz run, fault drills, load test) are selected.
Each test reports its numbers through ``record_property``; tests/reliability/report_plugin.py writes
one JSON line per test, and this script turns them into the table (also saved as
test-artifacts/reliability/report.md and report.json).

    python scripts/reliability.py                 # everything (~10-15 min on 2 cores)
    python scripts/reliability.py --only fuzz,security
    python scripts/reliability.py --fuzz-cases 2000 --load-uploads 50
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "test-artifacts" / "reliability"

# area → pytest targets (files that do not exist yet are skipped with a note in the table)
AREAS: dict[str, list[str]] = {
    "1 fuzz": ["tests/reliability/test_fuzz.py", "tests/codec/test_bitstream_fuzz.py"],
    "2 hostile uploads": ["tests/reliability/test_hostile_uploads.py"],
    "3 faults": [
        "tests/reliability/test_faults.py",
        "tests/reliability/test_db_outage.py",
        "tests/reliability/test_sweeper.py",
        # issue 10: kill -9 / broker restart with the shipped defaults (leases), the bomb, time limits,
        # and the lean lease / cost-control checks
        "tests/reliability/test_recovery_drills.py",
        # found by the soak (make soak): a photo deleted mid-encode leaves its latent + previews (open)
        "tests/reliability/test_delete_mid_encode.py",
        "tests/gallery/test_leases.py",
        "tests/gallery/test_cost_control.py",
        # /readyz with Redis paused or on a closed port, read-only media; make run's process groups
        "tests/gallery/test_health.py",
        "tests/gallery/test_run_stack.py::test_run_stack_without_system_redis_kill_worker_leaves_no_orphans",
    ],
    "4 load": ["tests/reliability/test_load.py"],
    "5 security": [
        "tests/reliability/test_security.py",
        "tests/gallery/test_deploy.py::test_production_check_deploy_is_clean",
        # login throttling, CSP (headers, templates, a real browser), no server paths in user messages
        "tests/gallery/test_login_throttle_csp.py",
        "tests/gallery/test_csp_browser.py",
        "tests/gallery/test_redact.py",
    ],
}


OUTCOMES = {
    "passed": "held",
    "failed": "FAILED",
    "error": "ERROR",
    "skipped": "skipped",
    "xfailed": "open (xfail)",
    "xpassed": "FIXED? (xpass)",
}


def area_of(nodeid: str) -> str:
    path = nodeid.split("::", 1)[0]
    for area, targets in AREAS.items():
        if any(t.split("::", 1)[0] == path for t in targets):
            return area
    return "other"


def check_name(line: dict) -> str:
    name = line["nodeid"].split("::", 1)[1] if "::" in line["nodeid"] else line["nodeid"]
    name = name.removeprefix("test_").replace("_", " ")
    return name


def fmt_number(value) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def fmt_metrics(metrics: dict) -> str:
    return ", ".join(f"{k}={fmt_number(v)}" for k, v in metrics.items())


def collapse(lines: list[dict]) -> list[dict]:
    """One row for the variants of a parametrized test when they all held and report no numbers."""
    groups: dict[str, list[dict]] = {}
    for line in lines:
        groups.setdefault(line["nodeid"].split("[", 1)[0], []).append(line)
    out = []
    for base, group in groups.items():
        if len(group) > 1 and all(g["outcome"] == "passed" and not g["metrics"] for g in group):
            ids = ", ".join(g["nodeid"].split("[", 1)[1].rstrip("]") for g in group)
            out.append(
                {
                    **group[0],
                    "nodeid": f"{base}[{ids}]" if len(ids) <= 60 else f"{base}[{len(group)} variants]",
                    "duration": sum(g["duration"] for g in group),
                }
            )
        else:
            out.extend(group)
    return out


def table(lines: list[dict]) -> str:
    rows = []
    for line in sorted(collapse(lines), key=lambda ln: (area_of(ln["nodeid"]), ln["nodeid"])):
        result = OUTCOMES.get(line["outcome"], line["outcome"])
        detail = fmt_metrics(line["metrics"])
        if line["outcome"] != "passed" and line["message"]:
            detail = (detail + "; " if detail else "") + line["message"]
        rows.append((area_of(line["nodeid"]), check_name(line), result, f"{line['duration']:.1f}", detail))
    header = ("area", "check", "result", "time s", "numbers / reason")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    out = []
    sep = "-+-".join("-" * w for w in widths) + "-+-" + "-" * 40
    out.append(" | ".join(h.ljust(w) for h, w in zip(header[:4], widths, strict=True)) + " | " + header[4])
    out.append(sep)
    last_area = None
    for r in rows:
        area = r[0] if r[0] != last_area else ""
        last_area = r[0]
        cells = (area, r[1], r[2], r[3].rjust(widths[3]))
        out.append(" | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " | " + r[4])
    return "\n".join(out)


def summary(lines: list[dict]) -> str:
    by: dict[str, int] = {}
    for line in lines:
        by[line["outcome"]] = by.get(line["outcome"], 0) + 1
    return ", ".join(f"{n} {k}" for k, n in sorted(by.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", help=f"comma-separated area numbers or names: {', '.join(AREAS)}")
    parser.add_argument("--fuzz-cases", type=int, default=10_000, help="cases of our decode/info fuzz run")
    parser.add_argument(
        "--fuzz-examples", type=int, default=10_000, help="FUZZ_EXAMPLES for the hypothesis tests"
    )
    parser.add_argument("--load-uploads", type=int, default=200)
    parser.add_argument("--load-clients", type=int, default=20)
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)

    areas = list(AREAS)
    if args.only:
        wanted = [w.strip().lower() for w in args.only.split(",") if w.strip()]
        areas = [a for a in AREAS if any(a.startswith(w) or w in a for w in wanted)]
    targets, missing = [], []
    for area in areas:
        for t in AREAS[area]:
            (targets if (ROOT / t.split("::", 1)[0]).exists() else missing).append(t)

    OUT.mkdir(parents=True, exist_ok=True)
    report_path = Path(tempfile.mkstemp(prefix="reliability-", suffix=".jsonl")[1])
    env = dict(os.environ)
    env.update(
        RELIABILITY_FULL="1",
        RELIABILITY_REPORT=str(report_path),
        RELIABILITY_FUZZ_CASES=str(args.fuzz_cases),
        FUZZ_EXAMPLES=str(args.fuzz_examples),
        RELIABILITY_LOAD_UPLOADS=str(args.load_uploads),
        RELIABILITY_LOAD_CLIENTS=str(args.load_clients),
    )
    env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
    cmd = [sys.executable, "-m", "pytest", "-p", "tests.reliability.report_plugin", "-q", "-rfE",
           "-p", "no:cacheprovider", *targets, *args.pytest_args]  # fmt: skip
    print(f"[reliability] {' '.join(cmd)}", flush=True)
    started = time.monotonic()
    rc = subprocess.run(cmd, cwd=ROOT, env=env).returncode
    wall = time.monotonic() - started

    lines = [json.loads(x) for x in report_path.read_text().splitlines() if x.strip()]
    report_path.unlink(missing_ok=True)
    text = table(lines)
    foot = f"{len(lines)} checks: {summary(lines)}; pytest exit code {rc}; wall time {wall:.0f} s"
    if missing:
        foot += f"\nnot present (skipped): {', '.join(missing)}"
    print("\n" + "=" * 30 + " reliability report " + "=" * 30)
    print(text)
    print(foot)
    (OUT / "report.md").write_text(f"# make reliability\n\n```\n{text}\n```\n\n{foot}\n")
    (OUT / "report.json").write_text(json.dumps({"checks": lines, "exit_code": rc, "wall_s": wall}, indent=2))
    print(f"(saved to {OUT.relative_to(ROOT)}/report.md and report.json)")
    if not lines:
        return rc or 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
