"""Decode cost control (issue 10): the header is priced before anything is decoded, and streams over
the caller's `DecodeLimits` — or sparse ones claiming a large image — are refused in milliseconds.

The hostile files are made by ``tests/codec/hostile_streams.py`` (real encoder, rewritten size);
``ok_flat_*_encoder.bin`` are what our encoder wrote for flat grey 1024² / 2048² images (defaults).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import codec
from codec import container
from codec.container import cost
from codec.errors import BitstreamError, DecodeLimitError, UsageError
from codec.options import DEFAULT_DECODE_LIMITS, UNLIMITED_DECODE, DecodeLimits
from codec.tiling import decode_latent

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).parent / "corpus"
HOSTILE = [*sorted(CORPUS.glob("hostile_*.bin")), CORPUS / "fuzz_decode_bomb_4096px_from_ctx.bin"]


def _cost(data: bytes) -> cost.DecodeCost:
    header, payload = container.parse(data)
    return cost.estimate(header, len(payload))


@pytest.mark.parametrize("path", HOSTILE, ids=lambda p: p.name)
def test_hostile_streams_refused_in_under_a_second(path: Path) -> None:
    data = path.read_bytes()
    info = codec.info(data)
    assert len(data) < 2000 and info["width"] >= 2048  # a valid stream: tiny, claiming a big image
    t0 = time.perf_counter()
    with pytest.raises(DecodeLimitError) as exc:
        codec.decode(data)
    assert time.perf_counter() - t0 < 1.0
    err = exc.value
    assert isinstance(err, BitstreamError) and err.work > err.limit == DEFAULT_DECODE_LIMITS.sparse_work
    assert f"{err.work:.1f} work units" in str(err) and f"sparse_work={err.limit:g}" in str(err)


def test_raised_limits_admit_what_the_defaults_refuse() -> None:
    data = (CORPUS / "hostile_4096px_lzma.bin").read_bytes()
    header, payload = container.parse(data)
    with pytest.raises(DecodeLimitError):
        cost.check(header, len(payload), DEFAULT_DECODE_LIMITS)
    admitted = cost.check(header, len(payload), DecodeLimits(sparse_work=None))
    assert admitted.work == pytest.approx(23.9, abs=0.1)
    assert cost.check(header, len(payload), DecodeLimits(sparse_work=30)).passes == 16
    with pytest.raises(DecodeLimitError, match="max_work=10"):  # the hard limit applies to everyone
        cost.check(header, len(payload), DecodeLimits(max_work=10, sparse_work=None))


def test_max_work_and_max_pixels_refuse_with_the_estimate() -> None:
    data = (CORPUS / "ok_flat_2048_encoder.bin").read_bytes()
    t0 = time.perf_counter()
    with pytest.raises(DecodeLimitError, match=r"3\.3 work units .* max_work=2\b") as exc:
        codec.decode(data, max_work=2)
    assert exc.value.work == pytest.approx(3.29, abs=0.01) and exc.value.limit == 2
    with pytest.raises(DecodeLimitError, match="4000000 pixels"):
        codec.decode(data, max_pixels=4_000_000)
    with pytest.raises(DecodeLimitError, match="max_work=2"):
        codec.decode(data, limits=DecodeLimits(max_work=2))
    assert time.perf_counter() - t0 < 1.0
    for bad in ({"max_work": 0}, {"max_work": float("nan")}, {"sparse_work": -1}, {"max_pixels": 0}):
        with pytest.raises(UsageError):
            codec.decode(data, **bad)
    with pytest.raises(UsageError):
        DecodeLimits(min_bits_per_value=-1)


def test_our_flat_files_pass_the_defaults() -> None:
    """Flat grey images are the sparsest files our encoder writes: 1 MP and 4 MP stay admitted."""
    for name, side in (("ok_flat_1024_encoder.bin", 1024), ("ok_flat_2048_encoder.bin", 2048)):
        data = (CORPUS / name).read_bytes()
        header, payload = container.parse(data)
        assert header.width == side
        c = cost.check(header, len(payload), DEFAULT_DECODE_LIMITS)
        assert c.bits_per_value >= 3 * DEFAULT_DECODE_LIMITS.min_bits_per_value  # a margin
        assert c.work <= DEFAULT_DECODE_LIMITS.sparse_work  # admitted even if it were sparse


def test_every_image_the_encoder_accepts_fits_max_work() -> None:
    """50 MP (the encoder's input limit) in any aspect fits the default hard limit."""
    for w, h in ((7071, 7071), (8660, 5773), (50_000_000 // 1000, 1000), (1000, 50_000)):
        header = container.Header(model_id=1, width=w, height=h)
        assert cost.estimate(header, 10**6).work <= DEFAULT_DECODE_LIMITS.max_work, (w, h)


class _CountingModel:
    """Stands in for a TAESD decoder: records the pixels of every pass (no weights, no work)."""

    latent_channels, downscale = 4, 8

    def __init__(self) -> None:
        self.passes: list[tuple[int, int]] = []

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h, w = z.shape[-2] * 8, z.shape[-1] * 8
        self.passes.append((h, w))
        return torch.zeros(1, 3, h, w)


@pytest.mark.parametrize("side", [200, 1416, 2048, 3000])
def test_the_estimate_counts_exactly_the_decoder_passes(side: int) -> None:
    header = container.Header(model_id=1, width=side, height=side * 3 // 4)
    model = _CountingModel()
    decode_latent(model, np.zeros(header.latent_shape, np.float32))  # type: ignore[arg-type]
    c = cost.estimate(header, 1000)
    assert c.passes == len(model.passes) and c.decoder_pixels == sum(a * b for a, b in model.passes)
    assert c.peak_bytes < 2.6e9  # tiles bound memory whatever the size


def test_info_shows_the_estimate() -> None:
    data = (CORPUS / "hostile_7071px_jxl.bin").read_bytes()
    dc = codec.info(data)["decode_cost"]
    assert dc["work"] == pytest.approx(74.88, abs=0.01) and dc["decoder_passes"] == 49
    assert dc["bits_per_latent_value"] < 0.01 and dc["seconds_2_cores"] > 300 and dc["peak_mb"] > 1000


def test_unlimited_is_the_format_only() -> None:
    assert UNLIMITED_DECODE.max_pixels is None and UNLIMITED_DECODE.max_work is None
    data = (CORPUS / "hostile_7071px_jxl.bin").read_bytes()
    header, payload = container.parse(data)
    assert cost.check(header, len(payload), UNLIMITED_DECODE).work > 70


@pytest.mark.slow
def test_flat_1mp_image_encodes_and_decodes_under_the_defaults() -> None:
    """The live check behind ``ok_flat_1024_encoder.bin``: our encoder's flat file still decodes."""
    torch.set_num_threads(2)
    data = codec.encode(np.full((1024, 1024, 3), 128, np.uint8))
    c = _cost(data)
    assert c.bits_per_value >= DEFAULT_DECODE_LIMITS.min_bits_per_value or c.work <= 4
    out = np.asarray(codec.decode(data))
    assert out.shape == (1024, 1024, 3) and abs(float(out.mean()) - 128) < 8


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "codec", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_cli_refuses_with_exit_3_and_one_line(tmp_path: Path) -> None:
    out = str(tmp_path / "o.png")
    r = _cli("decode", str(CORPUS / "hostile_4096px_lzma.bin"), out)
    assert r.returncode == 3 and not Path(out).exists()
    assert len(r.stderr.strip().splitlines()) == 1 and "implausible stream" in r.stderr
    assert "23.9 work units" in r.stderr and "sparse_work=4" in r.stderr
    r = _cli("decode", str(CORPUS / "ok_flat_2048_encoder.bin"), out, "--max-work", "1.5")
    assert r.returncode == 3 and "max_work=1.5" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = _cli("decode", str(CORPUS / "hostile_4096px_lzma.bin"), out, "--max-sparse-work", "0")
    assert r.returncode == 2  # usage error
    info = json.loads(_cli("info", str(CORPUS / "hostile_2048px_lzma.bin")).stdout)
    assert info["decode_cost"]["work"] == pytest.approx(5.37, abs=0.01)
