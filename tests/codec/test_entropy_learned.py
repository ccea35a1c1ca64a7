"""codec.entropy.learned (coder id 5): exact round trips, determinism, strict parsing, old files."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
import pytest

from codec import entropy
from codec.entropy import learned
from codec.errors import BitstreamError, UnsupportedVersionError

ID = learned.CODER_ID


def smooth(shape, levels, seed=0) -> np.ndarray:
    """Latent-like symbols: channels share a smoothed random field."""
    rng = np.random.default_rng(seed)
    c, h, w = shape
    base = rng.standard_normal((h + 4, w + 4))
    field = np.stack([base + 0.5 * rng.standard_normal((h + 4, w + 4)) for _ in range(c)])
    k = np.ones(3) / 3
    for axis in (1, 2):
        field = np.apply_along_axis(lambda v: np.convolve(v, k, mode="same"), axis, field)
    z = field[:, 2 : h + 2, 2 : w + 2]
    z = (z - z.mean()) / (z.std() + 1e-9)
    return np.clip(np.rint((z + 2.5) / 5 * (levels - 1)), 0, levels - 1).astype(np.uint16)


def test_weights_ship_and_match_the_format():
    assert learned.WEIGHTS_FILE.is_file()
    assert learned.load_weights().digest() == learned.WEIGHTS_SHA256
    assert learned.WEIGHTS_FILE.stat().st_size < 64 * 1024
    assert entropy.coder_name(ID) == "learned"


@pytest.mark.parametrize(("shape", "levels"), [((4, 16, 24), 8), ((1, 1, 1), 2), ((4, 1, 9), 3),
                                               ((4, 9, 1), 64), ((6, 5, 7), 256), ((2, 3, 3), 5)])
def test_round_trip_random_and_smooth(shape, levels):
    rng = np.random.default_rng(1)
    for sym in (smooth(shape, levels), rng.integers(0, levels, shape).astype(np.uint16),
                np.full(shape, levels - 1, np.uint16)):
        payload = entropy.CODERS[ID].encode(sym, levels)
        assert np.array_equal(entropy.decode_symbols(ID, payload, shape, levels), sym)


def test_round_trip_across_encoder_chunks():
    """The encoder evaluates the model in chunks of ENCODE_CHUNK positions, the decoder per wavefront:
    integer inference must give the same distributions either way."""
    shape = (2, 190, 180)
    assert shape[1] * shape[2] > learned.ENCODE_CHUNK
    sym = smooth(shape, 6, seed=4)
    payload = entropy.CODERS[ID].encode(sym, 6)
    assert np.array_equal(entropy.decode_symbols(ID, payload, shape, 6), sym)


def test_round_trip_real_latent_and_deterministic():
    """A real (small) latent: the TAESD encoder's output of a training-like picture, quantized."""
    torch = pytest.importorskip("torch")
    from codec.models.registry import get_model
    from codec.quant import params_for_latent, quantize

    torch.manual_seed(0)
    y, x = np.mgrid[0:96, 0:128] / 32.0
    img = np.stack([np.sin(x + y), np.cos(2 * x), np.sin(3 * y) * np.cos(x)]) * 0.4 + 0.5
    with torch.inference_mode():
        z = get_model("taesd", "cpu").encode(torch.from_numpy(img[None]).float())[0].numpy()
    for levels in (4, 12):
        sym = quantize(z, params_for_latent(z, levels)).astype(np.uint16)
        a = entropy.CODERS[ID].encode(sym, levels)
        assert a == entropy.CODERS[ID].encode(sym.copy(), levels)
        assert np.array_equal(entropy.decode_symbols(ID, a, sym.shape, levels), sym)
        _cid, best = entropy.encode_symbols(sym, levels)
        assert len(best) <= len(a)  # picked only when smaller


def test_format_stable():
    """The model (weights, constants) defines the bitstream: a change needs a new coder id."""
    sym = smooth((4, 12, 20), 8, seed=7)
    assert hashlib.sha256(entropy.CODERS[ID].encode(sym, 8)).hexdigest()[:16] == GOLDEN


GOLDEN = "3ccd3d56cfc67c95"


def test_corrupt_and_truncated_payloads_are_typed_and_bounded():
    shape, levels = (4, 8, 12), 6
    good = entropy.CODERS[ID].encode(smooth(shape, levels), levels)
    rng = np.random.default_rng(3)
    cases = [b"", b"\0", good[: len(good) // 2], good[:-1], good + b"\x01\x02\x03\x04" * 4,
             rng.bytes(len(good)), rng.bytes(3 * len(good))]
    cases += [bytes(b ^ (1 << (i % 8)) if k == i else b for k, b in enumerate(good))
              for i in range(0, len(good), max(1, len(good) // 24))]
    rejected = 0
    t = time.process_time()
    for payload in cases:
        try:
            out = entropy.decode_symbols(ID, payload, shape, levels)
        except BitstreamError:
            rejected += 1
            continue
        assert out.shape == shape and out.dtype == np.uint16 and int(out.max()) < levels
    assert rejected >= 3
    assert time.process_time() - t < 10
    with pytest.raises(BitstreamError):  # far more bytes than the shape can need: rejected up front
        entropy.decode_symbols(ID, b"\x01" * (4 * 4 * 8 * 12 + 17), shape, levels)


def test_missing_or_foreign_weights(tmp_path: Path):
    bad = tmp_path / "w.safetensors"
    bad.write_bytes(learned.WEIGHTS_FILE.read_bytes()[:-1] + b" ")
    with pytest.raises(ValueError):
        learned.load_weights(str(bad))
    from safetensors.numpy import save_file

    same = tmp_path / "same.safetensors"  # same values, other metadata: the same model
    save_file(learned.load_weights().tensors(), str(same), metadata={"note": "copy"})
    assert learned.load_weights(str(same)).digest() == learned.WEIGHTS_SHA256
    other = learned.load_weights().tensors()
    other["b3"] = other["b3"] + 1
    save_file(other, str(bad))
    with pytest.raises(ValueError):
        learned.load_weights(str(bad))
    coder = learned.LearnedCoder()
    coder.weights = lambda: None  # a build without the weight file
    with pytest.raises(entropy.CoderUnsuitable):
        coder.encode(smooth((1, 4, 4), 4), 4)
    with pytest.raises(BitstreamError):
        coder.decode(b"", (1, 4, 4), 4)


def test_old_files_decode_unchanged():
    """A file written before coder 5 existed (corpus/ok_tiny_ctx.bin, ctx payload) decodes to the
    symbols the previous build decoded (hash taken with the code before this change); a coder-5
    stream passes the strict header parser; ids 6..15 are still refused."""
    from codec.container import header as bs

    old = (Path(__file__).parent / "corpus" / "ok_tiny_ctx.bin").read_bytes()
    h, payload = bs.parse(old)
    assert h.entropy_coder == 1
    sym = entropy.decode_symbols(h.entropy_coder, payload, h.latent_shape, h.quant.levels)
    assert hashlib.sha256(sym.tobytes()).hexdigest()[:16] == "855a929e2d3c3783"

    h.entropy_coder = ID
    new = entropy.CODERS[ID].encode(sym, h.quant.levels)
    h5, p5 = bs.parse(bs.pack(h, new))
    assert h5.entropy_coder == ID
    assert np.array_equal(entropy.decode_symbols(ID, p5, h5.latent_shape, h5.quant.levels), sym)
    with pytest.raises(UnsupportedVersionError):
        entropy.decode_symbols(6, p5, h5.latent_shape, h5.quant.levels)
