"""HOOK for the fidelity-guard comparison of issue 5 (owned by the fidelity-guard developer).

`run_bench` calls `fidelity_section(ctx)` once, after all rows are measured, and puts what it
returns into ``report.md`` under "Fidelity guard". Contract:

* ``ctx`` is a `BenchContext`: the image paths, the budgets, effort/device, the output folder
  (write extra files such as a worst-block crop grid under ``ctx.out_dir / "fidelity"``), the rows
  already measured, and ``ctx.load(path)`` / ``ctx.metrics(a, b)`` helpers.
* Return a markdown string (without the heading), or None when the comparison is not available.

Until issue 5 lands this delegates to ``codec.fidelity.bench_section(ctx)`` if that function exists,
so the fidelity developer can implement it there without touching the bench; otherwise the report
says plainly that the comparison has not been run.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class BenchContext:
    images: list[Path]
    bpps: list[float]
    effort: str
    device: str | None
    out_dir: Path
    rows: list[dict[str, Any]]
    load: Callable[[Path], np.ndarray]
    metrics: Callable[[np.ndarray, np.ndarray], dict[str, float | None]]
    log: Callable[[str], None]


def fidelity_section(ctx: BenchContext) -> str | None:
    """Markdown for the report's "Fidelity guard" part (issue 5), or None when not available."""
    try:
        fidelity = importlib.import_module("codec.fidelity")
    except ImportError:
        return None
    section = getattr(fidelity, "bench_section", None)
    if section is None:
        return None
    return section(ctx)
