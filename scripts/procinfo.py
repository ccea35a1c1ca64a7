"""Process facts from Linux ``/proc``: the one parser of ``/proc/<pid>/stat`` and ``status``.

Used by ``scripts/run_stack.py`` (stopping whole process groups), ``tests/reliability/stack.py``
(pool children of a worker, liveness) and ``scripts/soak.py`` (RSS of a process tree over time).
Stdlib only. Where there is no ``/proc`` the group/liveness helpers fall back to signal-0 probes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class ProcStat:
    pid: int
    state: str  # R, S, D, T (stopped), Z (zombie), ...
    ppid: int
    pgid: int


def parse_stat(pid: int, text: str) -> ProcStat:
    """``/proc/<pid>/stat`` → ProcStat. The command name may hold spaces and ')', so the fields
    are read after the last ')': "pid (comm) state ppid pgrp ..."."""
    fields = text[text.rindex(")") + 2 :].split()
    return ProcStat(pid=pid, state=fields[0], ppid=int(fields[1]), pgid=int(fields[2]))


def stat(pid: int) -> ProcStat | None:
    """The stat of one process; None when it is gone (or /proc is missing)."""
    try:
        return parse_stat(pid, (PROC / str(pid) / "stat").read_text())
    except (OSError, ValueError, IndexError):
        return None


def processes() -> list[ProcStat]:
    """Every process visible in /proc (those that vanish while reading are skipped)."""
    out = []
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (st := stat(int(entry.name))) is not None:
            out.append(st)
    return out


def alive(pid: int) -> bool:
    """Running or sleeping or stopped, but not gone and not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if not PROC.is_dir():
        return True
    st = stat(pid)
    return st is not None and st.state != "Z"


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group; without /proc, a signal-0 probe of the group."""
    if not PROC.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        return [pgid]
    return [p.pid for p in processes() if p.pgid == pgid and p.state != "Z"]


def children_of(pid: int) -> list[int]:
    """Direct child processes of ``pid``."""
    return [p.pid for p in processes() if p.ppid == pid]


def descendants(pid: int) -> list[int]:
    """``pid`` and every live process below it (children, grandchildren, ...)."""
    table = processes()
    by_parent: dict[int, list[int]] = {}
    for p in table:
        if p.state != "Z":
            by_parent.setdefault(p.ppid, []).append(p.pid)
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(by_parent.get(current, []))
    return out


def rss_mib(pid: int) -> float:
    """Resident set size of one process in MiB (0 when it is gone)."""
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def tree_rss_mib(pid: int) -> float:
    """RSS of ``pid`` and all its descendants, summed (shared pages counted in each: an upper bound)."""
    return sum(rss_mib(p) for p in descendants(pid)) if alive(pid) else 0.0
