"""Rate control logic: ladder order, quality mapping, budget search (no model needed)."""

from __future__ import annotations

import numpy as np
import pytest

from codec.encoder import ratecontrol
from codec.encoder.ratecontrol import Setting
from codec.errors import BudgetError, UsageError


def fake_size(setting: Setting) -> int:
    """A monotone size model: bytes grow with levels and with the coded area."""
    return int(100 + 400 * setting.scale**2 * setting.levels)


def test_quality_extremes_map_to_best_and_worst_rungs() -> None:
    rungs = ratecontrol.ladder()
    assert ratecontrol.setting_for_quality(100) == rungs[0]
    assert ratecontrol.setting_for_quality(1) == rungs[-1]


@pytest.mark.parametrize("quality", [0, 101, -5])
def test_quality_out_of_range_is_a_usage_error(quality: int) -> None:
    with pytest.raises(UsageError):
        ratecontrol.setting_for_quality(quality)


@pytest.mark.parametrize("budget", [600, 1500, 5000, 30000])
def test_search_result_fits_and_is_the_largest_fitting_level_of_its_scale(budget: int) -> None:
    best = ratecontrol.search(fake_size, budget)
    assert fake_size(best) <= budget
    bigger = [q for q in ratecontrol.LEVELS if q > best.levels]
    if bigger:
        assert fake_size(Setting(best.scale, min(bigger))) > budget


def test_candidates_are_ranked_and_all_fit() -> None:
    cands = ratecontrol.candidates(fake_size, 3000)
    assert cands, "at least one candidate"
    assert all(fake_size(c) <= 3000 for c in cands)
    assert len({c.scale for c in cands}) == len(cands), "one candidate per scale"


def test_budget_too_small_raises_budget_error() -> None:
    with pytest.raises(BudgetError):
        ratecontrol.search(fake_size, 50)


def test_coded_size_never_below_eight_pixels() -> None:
    assert Setting(0.25, 8).coded_size(20, 12) == (8, 8)
    assert Setting(0.25, 8).coded_size(5, 3) == (5, 3)
    assert Setting(1.0, 8).coded_size(21, 13) == (21, 13)
    assert Setting(0.5, 8).coded_size(768, 512) == (384, 256)


def _bisect_reference(sizes: dict[int, int], max_bytes: int) -> int | None:
    fitting = [q for q, n in sizes.items() if n <= max_bytes]
    return max(fitting) if fitting else None


def test_predicted_search_gives_bisections_answer_with_fewer_encodes() -> None:
    """Sizes grow with levels; whatever the curve predicts (right, off by 30 %, or flat), the
    answer is the largest fitting rung; a right prediction needs at most 3 size measurements."""
    rng = np.random.default_rng(0)
    levels = list(ratecontrol.LEVELS)
    for _ in range(300):
        bpp = np.cumsum(rng.uniform(0.002, 0.02, len(levels)))  # a calibrated curve
        true = {q: int(b * 4e4 * rng.uniform(0.7, 1.3)) for q, b in zip(levels, bpp, strict=True)}
        # keep this image's sizes monotone, as they are for a fixed latent
        running = 0
        for q in levels:
            running = true[q] = max(true[q], running + 1)
        budget = int(rng.uniform(0.5, 1.2) * true[levels[-1]])
        curves = {"exact": lambda q, t=true: float(t[q]),
                  "off": lambda q, b=dict(zip(levels, bpp, strict=True)): b[q],
                  "flat": lambda q: 1.0}
        for name, curve in curves.items():
            calls: list[int] = []

            def size_of(q: int, calls=calls, true=true) -> int:
                calls.append(q)
                return true[q]

            got = ratecontrol._largest_fitting_levels(size_of, budget, levels, curve)
            assert got == _bisect_reference(true, budget), name
            assert len(calls) <= (3 if name == "exact" else 9), (name, calls)
