"""The residual layer (issue 14): format (strict parsing, fuzz), decode path, and the encoder's choice."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import codec
from codec.container import residuallayer
from codec.container.header import parse
from codec.container.residuallayer import ResidualLayer
from codec.encoder import residual
from codec.errors import BitstreamError, InputError, UnsupportedVersionError

W, H = 96, 64
#: the encoder tests' photo (at 96×64 the latent alone is already as good: no residual wins there)
PW, PH = 192, 128
BPP = 1.0


def _avif(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "AVIF", quality=60)
    return buf.getvalue()


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    from skimage import data

    return np.asarray(Image.fromarray(data.chelsea()).resize((PW, PH), Image.LANCZOS))


@pytest.fixture(scope="module")
def body() -> bytes:
    rng = np.random.default_rng(0)
    img = np.clip(128 + rng.normal(0, 6, (H, W, 3)), 0, 255).astype(np.uint8)
    return residuallayer.pack(ResidualLayer("avif", 0, _avif(img)))


def test_round_trip_adds_the_decoded_residual(body) -> None:
    layer = residuallayer.parse(body, W, H)
    assert layer.codec == "avif" and layer.shift == 0 and residuallayer.pack(layer) == body
    base = np.full((H, W, 3), 100, np.uint8)
    out = residuallayer.apply(base, layer)
    decoded = np.asarray(Image.open(io.BytesIO(layer.image)).convert("RGB")).astype(int)
    assert np.array_equal(out, np.clip(100 + decoded - 128, 0, 255))


def test_downscaled_residual_is_resized_to_the_picture() -> None:
    small = np.full((-(-H // 4), -(-W // 4), 3), 138, np.uint8)
    layer = residuallayer.parse(residuallayer.pack(ResidualLayer("webp", 2, _webp(small))), W, H)
    out = residuallayer.apply(np.full((H, W, 3), 50, np.uint8), layer)
    assert out.shape == (H, W, 3) and abs(int(np.median(out)) - 60) <= 2


def _webp(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "WEBP", quality=90)
    return buf.getvalue()


def test_strict_parsing_refuses_every_bad_body(body) -> None:
    with pytest.raises(UnsupportedVersionError):
        residuallayer.parse(bytes([body[0] | 0x80]) + body[1:], W, H)  # reserved bits
    with pytest.raises(UnsupportedVersionError):
        residuallayer.parse(bytes([(body[0] & ~0x07) | 5]) + body[1:], W, H)  # unknown codec
    with pytest.raises(BitstreamError):
        residuallayer.parse(body[:1], W, H)  # no image
    with pytest.raises(BitstreamError):
        residuallayer.parse(body, W + 8, H)  # an image of another size
    with pytest.raises(BitstreamError):
        residuallayer.parse(bytes([body[0] | (1 << 3)]) + body[1:], W, H)  # says half size, is not
    with pytest.raises(BitstreamError):
        residuallayer.parse(body[:1] + b"\x00" * 40, W, H)  # not an image


def test_mutated_bodies_only_raise_bitstream_errors(body) -> None:
    """Fuzz: flips, cuts and insertions either parse (and then decode or raise a typed error) or raise
    `BitstreamError` — never anything else."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    base = np.zeros((H, W, 3), np.uint8)

    @settings(max_examples=120, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(pos=st.integers(0, len(body) - 1), value=st.integers(0, 255),
           op=st.sampled_from(["flip", "cut", "insert"]))
    def case(pos: int, value: int, op: str) -> None:
        mutated = {"flip": body[:pos] + bytes([value]) + body[pos + 1 :], "cut": body[:pos],
                   "insert": body[:pos] + bytes([value]) + body[pos:]}[op]
        try:
            layer = residuallayer.parse(mutated, W, H)
            out = residuallayer.apply(base, layer)
        except BitstreamError:
            return
        assert out.shape == (H, W, 3)

    case()


@pytest.fixture(scope="module")
def encoded(photo) -> tuple[bytes, bytes]:
    """The photo at `BPP`, effort default: with the residual layer, and without (encoder's choice off)."""
    budget = int(BPP * PW * PH / 8)
    with_res = codec.encode(photo, max_bytes=budget)
    saved = residual.MIN_BPP
    residual.MIN_BPP = float("inf")
    try:
        without = codec.encode(photo, max_bytes=budget)
    finally:
        residual.MIN_BPP = saved
    return with_res, without


def test_encoder_spends_high_budgets_on_a_residual_that_measures_better(photo, encoded) -> None:
    """At 1 bpp the file carries a residual layer, fits the budget, decodes through `codec.decode`,
    its fidelity tags describe that decode, and it scores better (MS-SSIM − LPIPS) than the encoder's
    file without the residual step."""
    from codec.metrics import lpips, ms_ssim
    from codec.metrics.fidelity import block_scores, report

    with_res, without = encoded
    assert len(with_res) <= int(BPP * PW * PH / 8)
    meta = codec.info(with_res)
    assert meta["residual_layer"]["codec"] == "avif" and meta["residual_layer_bytes"] > 0
    assert meta["guard_bytes"] == 0 or meta["guard"] != "none"  # the residual is not the guard's
    dec = np.asarray(codec.decode(with_res))
    rep = report(block_scores(photo, dec), meta["fidelity_floor"])
    assert meta["fidelity_min"] == pytest.approx(rep.min, abs=1e-5)
    plain = np.asarray(codec.decode(without))
    assert "residual_layer" not in codec.info(without)

    def q(x: np.ndarray) -> float:
        return ms_ssim(photo, x) - lpips(photo, x)

    assert q(dec) >= q(plain) + residual.MIN_GAIN


def test_latent_budgets_put_the_latent_at_fixed_bits_per_pixel() -> None:
    """The latents under a residual sit at `LATENT_BPPS` of the picture whatever the budget, capped at
    `MAX_SHARE` of it (at 0.2 bpp the 0.15-bpp latent would leave the residual too little)."""
    w, h = 768, 512
    at = residual.latent_budgets
    half = int(0.5 * w * h / 8)
    assert at(half, w, h) == [int(b * w * h / 8) for b in residual.LATENT_BPPS]
    low = int(0.2 * w * h / 8)
    assert max(at(low, w, h)) == int(residual.MAX_SHARE * low)
    assert at(low, w, h) == sorted(set(at(low, w, h)))


def test_low_budgets_get_no_residual(photo) -> None:
    out = codec.encode(photo, max_bytes=int(0.15 * PW * PH / 8))
    assert parse(out)[0].residual_layer is None


def test_every_truncation_of_a_file_with_a_residual_is_a_typed_error(encoded) -> None:
    data = encoded[0]
    for cut in range(0, len(data), max(1, len(data) // 60)):
        with pytest.raises(InputError):
            codec.decode(data[:cut])


def test_the_gallerys_target_path_gets_the_residual_too(photo) -> None:
    """A preset photo (``target="faithful"`` searching upwards from ``base_bytes``) whose nominal file
    already meets the target also gets the residual step, within the nominal bytes, and still says
    ``target_met``."""
    base = int(BPP * PW * PH / 8)
    out = codec.encode(photo, target="faithful", base_bytes=base, max_bytes=2 * base)
    meta = codec.info(out)
    assert len(out) <= base and meta["target_met"] is True
    assert meta["residual_layer"]["codec"] == "avif"
