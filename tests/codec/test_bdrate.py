"""BD-rate on synthetic curves whose answer is known."""

import math

import numpy as np
import pytest

from codec.tools.bench.bdrate import bd_rate, frontier, msssim_db

RATES = np.array([0.03, 0.06, 0.1, 0.15, 0.25, 0.4, 0.6])


def _psnr(rate):  # a smooth concave RD curve
    return 20.0 + 4.0 * np.log2(rate / 0.03)


@pytest.mark.parametrize("method", ["pchip", "akima"])
@pytest.mark.parametrize("factor,expected", [(2.0, 100.0), (0.5, -50.0), (1.0, 0.0), (1.25, 25.0)])
def test_constant_rate_factor_gives_exact_bd_rate(method, factor, expected):
    # the test codec needs exactly `factor` × the bytes for the same quality
    got = bd_rate(RATES, _psnr(RATES), RATES * factor, _psnr(RATES), method=method)
    assert got == pytest.approx(expected, abs=1e-6)


def test_shifted_quality_on_a_log_linear_curve():
    # q = a + b·log2(r): +1 quality unit at every rate = 2^(-1/b) × the bytes
    b = 4.0
    got = bd_rate(RATES, _psnr(RATES), RATES, _psnr(RATES) + 1.0)
    assert got == pytest.approx((2 ** (-1 / b) - 1) * 100, abs=1e-6)


def test_only_overlap_counts_and_different_sampling():
    # test curve sampled at other rates, over a narrower range: still exactly 2x
    rt = np.geomspace(0.1, 1.0, 9)
    got = bd_rate(RATES, _psnr(RATES), rt, _psnr(rt / 2.0))
    assert got == pytest.approx(100.0, abs=0.5)  # cubic vs exact log curve: tiny error


def test_no_overlap_or_too_few_points_is_none():
    assert bd_rate(RATES, _psnr(RATES), RATES, _psnr(RATES) + 100) is None
    assert bd_rate(RATES[:2], _psnr(RATES[:2]), RATES, _psnr(RATES)) is None


def test_frontier_drops_dominated_points_and_duplicates():
    r, q = frontier([0.1, 0.2, 0.2, 0.3, 0.4], [20, 19, 21, 22, 21.5])
    assert r.tolist() == [0.1, 0.2, 0.3]
    assert q.tolist() == [20, 21, 22]


def test_lower_is_better_metric_via_negation():
    lp = 0.5 * np.exp(-RATES * 3)
    got = bd_rate(RATES, -lp, RATES * 2, -lp)
    assert got == pytest.approx(100.0, abs=1e-6)


def test_msssim_db():
    assert msssim_db(0.9) == pytest.approx(10.0)
    assert math.isfinite(msssim_db(1.0))
