"""The verdicts of the soak drill (``scripts/soak.py``), computed from its record alone.

The soak writes everything it saw into one JSON-able record; ``evaluate(record)`` turns it into the
checks the issue asks for (0 lost, 0 stuck, 0 5xx outside the injected faults, memory flat) and
``markdown(record, checks)`` into the report. Pure functions on plain data, so a synthetic record
tests them (tests/reliability/test_soakcheck.py) without running a stack.

Record keys used here (times ``t`` are seconds since the load started):

- ``config``: ``fault_grace_s`` (seconds after a fault's end still counted as its window),
  ``memory_growth_ratio`` / ``memory_growth_mib`` (allowed last- vs first-quartile growth), ...
- ``faults``: ``[{"kind", "start", "end"}]``
- ``uploads``: ``[{"t", "id" (None when refused or unanswered), "http", "error"}]``
- ``deleted``: ids the load deleted (their rows must be gone)
- ``http_errors``: ``[{"t", "kind", "status" (None: no answer), "error"}]`` — every 5xx and
  transport error the load saw
- ``final``: ``photos`` {id: {"status", "error", "latent_ok", "latent_detail", "staged"}},
  ``staged_orphans`` (staged originals whose photo row is gone), ``deleted_present`` (deleted ids
  still in the database)
- ``memory``: {process name: [[t, MiB], ...]}
"""

from __future__ import annotations

import re
import statistics

FINISHED = {"ready", "failed"}
# a message users may see must not be a traceback or name a server path
_UNCLEAR = re.compile(r"Traceback|File \"|/tmp/|/home/|/work/|/srv/|/data/|Errno")


def in_window(t: float, faults: list[dict], grace: float) -> bool:
    return any(f["start"] <= t <= f["end"] + grace for f in faults)


def clear_message(text: str | None) -> bool:
    """A per-file reason a user can read: not empty, no traceback, no server path."""
    return bool(text and text.strip()) and not _UNCLEAR.search(text)


def quartile_medians(samples: list[list[float]]) -> tuple[float, float] | None:
    """Medians of the first and the last quarter of a time series of [t, value] (by time)."""
    values = [v for _, v in sorted(samples) if v > 0]
    if len(values) < 4:
        return None
    q = len(values) // 4
    return statistics.median(values[:q]), statistics.median(values[-q:])


def _check(ok: bool, value, detail: str = "") -> dict:
    return {"ok": bool(ok), "value": value, "detail": detail}


def evaluate(record: dict) -> dict[str, dict]:
    cfg = record.get("config", {})
    faults = record.get("faults", [])
    grace = float(cfg.get("fault_grace_s", 30))
    final = record["final"]
    photos: dict[str, dict] = final["photos"]
    deleted = set(record.get("deleted", []))
    accepted = [u["id"] for u in record.get("uploads", []) if u.get("id")]
    checks: dict[str, dict] = {}

    # --- lost ----------------------------------------------------------------------------------
    missing = sorted(i for i in accepted if i not in deleted and i not in photos)
    no_latent = sorted(i for i, p in photos.items() if p["status"] == "ready" and not p.get("latent_ok"))
    orphans = list(final.get("staged_orphans", []))
    resurrected = list(final.get("deleted_present", []))
    unclear_failed = sorted(
        i for i, p in photos.items() if p["status"] == "failed" and not clear_message(p.get("error"))
    )
    refused = [u for u in record.get("uploads", []) if not u.get("id") and u.get("http") is not None]
    unclear_refused = [u for u in refused if not clear_message(u.get("error"))]
    lost = len(missing) + len(no_latent) + len(orphans) + len(unclear_failed) + len(unclear_refused)
    checks["lost"] = _check(
        lost == 0,
        lost,
        f"accepted and missing: {missing[:5]}; ready without a readable latent: {no_latent[:5]}; "
        f"staged originals without a photo: {orphans[:5]}; failed without a clear message: "
        f"{unclear_failed[:5]}; refused without a clear message: {len(unclear_refused)}",
    )
    checks["deleted_gone"] = _check(
        not resurrected, len(resurrected), f"deleted but still present: {resurrected[:5]}"
    )

    # --- stuck ---------------------------------------------------------------------------------
    stuck = sorted(i for i, p in photos.items() if p["status"] not in FINISHED)
    ready_staged = sorted(i for i, p in photos.items() if p["status"] == "ready" and p.get("staged"))
    checks["stuck"] = _check(not stuck, len(stuck), f"not finished after the drain: {stuck[:5]}")
    checks["ready_original_dropped"] = _check(
        not ready_staged,
        len(ready_staged),
        f"ready photos still holding a staged original: {ready_staged[:5]}",
    )

    # --- 5xx / no answer outside the fault windows ------------------------------------------------
    errors = record.get("http_errors", [])
    outside_5xx = [e for e in errors if e.get("status") is not None and not in_window(e["t"], faults, grace)]
    outside_none = [e for e in errors if e.get("status") is None and not in_window(e["t"], faults, grace)]
    inside = [e for e in errors if in_window(e["t"], faults, grace)]
    checks["5xx_outside_faults"] = _check(
        not outside_5xx,
        len(outside_5xx),
        "; ".join(f"t={e['t']:.0f} {e['kind']} {e['status']}" for e in outside_5xx[:5])
        + f" (inside fault windows: {len(inside)})",
    )
    checks["unanswered_outside_faults"] = _check(
        not outside_none,
        len(outside_none),
        "; ".join(f"t={e['t']:.0f} {e['kind']}: {e.get('error', '')[:80]}" for e in outside_none[:5]),
    )

    # --- memory flat ---------------------------------------------------------------------------
    ratio = float(cfg.get("memory_growth_ratio", 1.25))
    slack = float(cfg.get("memory_growth_mib", 64))
    for name, samples in record.get("memory", {}).items():
        medians = quartile_medians(samples)
        if medians is None:
            checks[f"memory_{name}"] = _check(False, None, "fewer than 4 samples")
            continue
        first, last = medians
        checks[f"memory_{name}"] = _check(
            last <= first * ratio + slack,
            {"first_quartile_mib": round(first, 1), "last_quartile_mib": round(last, 1)},
            f"allowed: last <= first x {ratio} + {slack:.0f} MiB",
        )
    return checks


def passed(checks: dict[str, dict]) -> bool:
    return all(c["ok"] for c in checks.values())


def summary_counts(record: dict) -> dict:
    photos = record["final"]["photos"]
    by_status: dict[str, int] = {}
    for p in photos.values():
        by_status[p["status"]] = by_status.get(p["status"], 0) + 1
    uploads = record.get("uploads", [])
    return {
        "uploads_sent": len(uploads),
        "uploads_accepted": sum(1 for u in uploads if u.get("id")),
        "uploads_refused": sum(1 for u in uploads if not u.get("id") and u.get("http") is not None),
        "uploads_unanswered": sum(1 for u in uploads if u.get("http") is None),
        "deleted": len(record.get("deleted", [])),
        "final_status": by_status,
        "faults": len(record.get("faults", [])),
    }


def markdown(record: dict, checks: dict[str, dict]) -> str:
    cfg = record.get("config", {})
    counts = summary_counts(record)
    lines = [
        f"# Soak drill {record.get('started_at', '')}",
        "",
        f"Command: `{cfg.get('command', 'python scripts/soak.py')}` — verdict: "
        f"**{'PASS' if passed(checks) else 'FAIL'}**",
        "",
        f"Load {cfg.get('minutes')} min + drain {record.get('drain', {}).get('seconds', '?')} s "
        f"(complete: {record.get('drain', {}).get('complete')}); shipped defaults except effort "
        f"`{cfg.get('effort')}`; commit {cfg.get('commit', '?')}; seed {cfg.get('seed')}; stack: "
        f"{cfg.get('stack', '')}.",
        "",
        "## Checks",
        "",
        "| check | result | value | detail |",
        "|---|---|---|---|",
    ]
    for name, c in checks.items():
        value = c["value"]
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        detail = str(c["detail"]).replace("|", "/")
        lines.append(f"| {name} | {'ok' if c['ok'] else 'FAIL'} | {value} | {detail} |")
    lines += ["", "## Counts", ""]
    lines += [f"- {k}: {v}" for k, v in counts.items()]
    if record.get("requests"):
        lines += [
            "",
            "## Requests",
            "",
            "| kind | n | statuses | p50 ms | p95 ms | max ms |",
            "|---|---|---|---|---|---|",
        ]
        for kind, r in record["requests"].items():
            statuses = ", ".join(f"{k}: {v}" for k, v in sorted(r["status"].items()))
            times = " | ".join(str(r.get(k)) for k in ("p50_ms", "p95_ms", "max_ms"))
            lines.append(f"| {kind} | {r['n']} | {statuses} | {times} |")
    for key in ("load_average", "recovery", "events", "notes"):
        if record.get(key):
            lines += ["", f"## {key.replace('_', ' ').capitalize()}", ""]
            value = record[key]
            if isinstance(value, dict):
                lines += [f"- {k}: {v}" for k, v in value.items()]
            else:
                lines += [f"- {v}" for v in value]
    lines += ["", "## Faults injected", "", "| kind | start s | end s | note |", "|---|---|---|---|"]
    for f in record.get("faults", []):
        lines.append(f"| {f['kind']} | {f['start']:.0f} | {f['end']:.0f} | {f.get('note', '')} |")
    return "\n".join(lines) + "\n"
