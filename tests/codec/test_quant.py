"""codec.quant: parameters, quantize/dequantize semantics, companding, straight-through variant."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from codec.quant import (
    CLAMP,
    TANH_LIMIT,
    QuantParams,
    compand,
    dequantize,
    expand,
    params_for_latent,
    quantize,
    quantize_ste,
    reconstruction_points,
    with_offsets,
)


def _latent(seed: int = 0, shape=(4, 12, 16), scale: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * scale).astype(np.float32)


@pytest.mark.parametrize("levels", [1, 0, 257, 2.5, True])
def test_levels_out_of_range_rejected(levels):
    with pytest.raises(ValueError):
        QuantParams(levels, (-1.0,), (1.0,))


@pytest.mark.parametrize(
    ("lo", "hi"),
    [((1.0,), (1.0,)), ((2.0,), (1.0,)), ((float("nan"),), (1.0,)), ((-1.0, 0.0), (1.0,)), ((), ())],
)
def test_bad_ranges_rejected(lo, hi):
    with pytest.raises(ValueError):
        QuantParams(8, lo, hi)


def test_tanh_range_must_stay_inside_the_clamp():
    with pytest.raises(ValueError):
        QuantParams(8, (-3.0,), (2.0,), "tanh")
    QuantParams(8, (-TANH_LIMIT,), (TANH_LIMIT,), "tanh")
    with pytest.raises(ValueError):
        QuantParams(8, (-1.0,), (1.0,), "log")


def test_params_are_float16_exact():
    qp = QuantParams(8, (-2.1, -1.234567), (2.2, 1.7654321))
    for v in qp.lo + qp.hi:
        assert float(np.float16(v)) == v
    assert qp.channels == 2
    assert qp == QuantParams(8, qp.lo, qp.hi)  # idempotent


@pytest.mark.parametrize("domain", ["raw", "tanh"])
@pytest.mark.parametrize("levels", [2, 5, 8, 16, 256])
def test_quantize_dequantize_error_bounded(domain, levels):
    z = _latent(1)
    qp = params_for_latent(z, levels, domain=domain)
    s = quantize(z, qp)
    assert s.dtype == np.uint16 and s.shape == z.shape
    assert int(s.max()) < levels
    zq = dequantize(s, qp)
    assert zq.dtype == np.float32 and zq.shape == z.shape
    # in the quantizer domain the error is at most half a step inside the range
    u, uq = compand(z, domain), compand(zq, domain)
    lo = np.array(qp.lo)[:, None, None]
    hi = np.array(qp.hi)[:, None, None]
    inside = (u >= lo) & (u <= hi)
    step = qp.step()[:, None, None]
    assert np.all((np.abs(u - uq) <= step / 2 + 1e-5) | ~inside)
    # outside the range values clip to the end points
    assert np.all(np.abs(uq[u < lo] - np.broadcast_to(lo, u.shape)[u < lo]) < 1e-4)
    assert np.all(np.abs(uq[u > hi] - np.broadcast_to(hi, u.shape)[u > hi]) < 1e-4)


@pytest.mark.parametrize("domain", ["raw", "tanh"])
def test_reconstruction_points_are_fixed_points(domain):
    qp = QuantParams(7, (-2.0, -1.5, -0.5), (2.0, 1.0, 2.5), domain)
    pts = reconstruction_points(qp)  # (C, levels)
    assert pts.shape == (3, 7)
    grid = np.broadcast_to(pts[:, :, None], (3, 7, 2)).copy()
    s = quantize(grid, qp)
    assert np.array_equal(s[:, :, 0], np.broadcast_to(np.arange(7), (3, 7)))
    assert np.all(np.diff(pts, axis=1) > 0)  # monotone


def test_tanh_domain_matches_the_decoder_soft_clamp():
    """The TAESD decoder applies 3·tanh(z/3): it must see exactly the uniform grid in u."""
    qp = QuantParams(9, (-2.5,) * 4, (2.75,) * 4, "tanh")
    z = _latent(2, scale=2.5)
    zq = dequantize(quantize(z, qp), qp).astype(np.float64)
    seen = CLAMP * np.tanh(zq / CLAMP)
    k = (seen - (-2.5)) / qp.step()[0]
    assert np.allclose(k, np.rint(k), atol=1e-4)
    assert np.allclose(expand(compand(z, "tanh"), "tanh"), z, atol=1e-4)


def test_channel_mismatch_and_bad_shapes():
    qp = QuantParams(8, (-1.0,) * 3, (1.0,) * 3)
    with pytest.raises(ValueError):
        quantize(_latent(0, (4, 2, 2)), qp)
    with pytest.raises(ValueError):
        quantize(np.zeros((3, 4)), qp)
    with pytest.raises(ValueError):
        dequantize(np.zeros((2, 2, 2), np.uint16), qp)


def test_nan_and_inf_latents_quantize_to_valid_symbols():
    z = _latent(3)
    z[0, 0, 0], z[1, 1, 1], z[2, 2, 2] = np.nan, np.inf, -np.inf
    qp = QuantParams(8, (-2.0,) * 4, (2.0,) * 4)
    s = quantize(z, qp)
    assert int(s.max()) < 8


def test_params_for_latent_per_channel_and_degenerate():
    z = _latent(4)
    z[1] *= 3.0
    z[2] = 0.7  # constant channel
    qp = params_for_latent(z, 8)
    assert qp.levels == 8 and qp.channels == 4
    assert qp.hi[1] - qp.lo[1] > 2 * (qp.hi[0] - qp.lo[0])
    assert qp.lo[2] < 0.7 < qp.hi[2]
    s = quantize(z, qp)
    assert len(np.unique(s[2])) == 1
    assert np.allclose(dequantize(s, qp)[2], 0.7, atol=0.02)
    # batch dimension of 1 is accepted
    assert params_for_latent(z[None], 8) == qp
    tq = params_for_latent(z * 10, 8, domain="tanh")
    assert max(tq.hi) <= TANH_LIMIT and min(tq.lo) >= -TANH_LIMIT


@pytest.mark.parametrize("domain", ["raw", "tanh"])
def test_centroid_offsets_reduce_error(domain):
    z = _latent(6, (4, 24, 32), scale=0.8)
    plain = params_for_latent(z, 6, domain=domain)
    qp = with_offsets(plain, z)
    assert qp.offsets is not None and len(qp.offsets) == 4 and all(len(r) == 6 for r in qp.offsets)
    assert params_for_latent(z, 6, domain=domain, offsets=True) == qp
    s = quantize(z, qp)
    assert np.array_equal(s, quantize(z, plain))  # decisions unchanged
    err_plain = np.mean((dequantize(s, plain) - z) ** 2)
    err_off = np.mean((dequantize(s, qp) - z) ** 2)
    assert err_off < 0.95 * err_plain
    pts = reconstruction_points(qp)
    assert np.all(np.isfinite(pts))
    with pytest.raises(ValueError):
        QuantParams(6, plain.lo, plain.hi, domain, ((8,) * 6,) * 4)
    with pytest.raises(ValueError):
        QuantParams(6, plain.lo, plain.hi, domain, ((0,) * 5,) * 4)


def test_offsets_at_the_tanh_limit_stay_finite():
    qp = QuantParams(2, (-TANH_LIMIT,), (TANH_LIMIT,), "tanh", ((-8, 7),))
    assert np.all(np.isfinite(reconstruction_points(qp)))


def test_quantize_ste_forward_and_gradient():
    torch = pytest.importorskip("torch")
    for domain, offsets in (("raw", False), ("tanh", False), ("raw", True), ("tanh", True)):
        z = _latent(5, (1, 4, 6, 8), scale=1.5)
        qp = params_for_latent(z[0], 8, domain=domain, offsets=offsets)
        zt = torch.tensor(z, requires_grad=True)
        out = quantize_ste(zt, qp)
        expected = dequantize(quantize(z[0], qp), qp)
        assert np.allclose(out.detach().numpy()[0], expected, atol=1e-4)
        out.sum().backward()
        grad = zt.grad.numpy()
        u = compand(z[0], domain)
        inside = (u > np.array(qp.lo)[:, None, None]) & (u < np.array(qp.hi)[:, None, None])
        assert np.all(grad[0][inside] > 0.3)  # straight through inside the range
        # unbatched input works too
        assert quantize_ste(torch.tensor(z[0]), qp).shape == (4, 6, 8)


def test_import_does_not_pull_torch():
    code = "import sys, codec.quant; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
