"""The bench's "Fidelity guard" section: `run_bench` calls `fidelity_section(ctx)` once, after all
rows are measured, and puts what it returns into ``report.md`` under "Fidelity guard".

* ``ctx`` is a `BenchContext`: the image paths, the budgets, effort/device, the output folder
  (extra files such as a worst-block crop grid go under ``ctx.out_dir / "fidelity"``), the rows
  already measured, and ``ctx.load(path)`` / ``ctx.metrics(a, b)`` helpers.
* It returns a markdown string (without the heading), or None when the comparison is not available.

The comparison itself is `codec.tools.bench.fidelity_bench` (a tool: the library never imports it).
"""

from __future__ import annotations

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
    from codec.tools.bench.fidelity_bench import bench_section  # imports this module: not at the top

    return bench_section(ctx)
