"""Benchmark: the latent codec against `seed` and JPEG/WebP/AVIF/JPEG XL at the same byte budgets.

`run_bench` (behind ``python -m codec bench``) writes results.json, report.md, rd.png and crop
grids; see `codec.tools.bench.runner`. The fidelity-guard comparison (issue 5) plugs in through
`codec.tools.bench.fidelity_hook`.
"""

from codec.tools.bench.runner import ROW_KEYS, run_bench

__all__ = ["ROW_KEYS", "run_bench"]
