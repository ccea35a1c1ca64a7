"""codec.entropy: every coder round-trips, the best is picked, decoders reject bad payloads."""

from __future__ import annotations

import hashlib
import io
import lzma
import subprocess
import sys
import time

import numpy as np
import pytest

from codec import entropy
from codec.entropy import context, jxl_coder, webp_coder
from codec.errors import BitstreamError, UnsupportedVersionError

CODER_NAMES = ["raw", "ctx", "lzma", "webp", "jxl"]


def smooth_symbols(shape=(4, 16, 24), levels=8, seed=0) -> np.ndarray:
    """Latent-like symbols: a smoothed random field, quantized (spatially and cross-channel correlated)."""
    rng = np.random.default_rng(seed)
    c, h, w = shape
    base = rng.standard_normal((h + 4, w + 4))
    field = np.stack([base + 0.6 * rng.standard_normal((h + 4, w + 4)) for _ in range(c)])
    k = np.ones(3) / 3
    for axis in (1, 2):
        field = np.apply_along_axis(lambda v: np.convolve(v, k, mode="same"), axis, field)
    field = field[:, 2 : h + 2, 2 : w + 2]
    t = (field - field.min()) / (np.ptp(field) + 1e-9)
    return np.clip(np.rint(t * (levels - 1)), 0, levels - 1).astype(np.uint16)


CASES = [
    ((4, 16, 24), 8),
    ((1, 1, 1), 2),
    ((1, 1, 1), 256),
    ((4, 1, 9), 4),
    ((4, 9, 1), 12),
    ((3, 5, 7), 16),
    ((16, 6, 5), 5),
    ((2, 3, 3), 256),
]


@pytest.mark.parametrize("name", CODER_NAMES)
@pytest.mark.parametrize(("shape", "levels"), CASES)
def test_round_trip_every_coder(name, shape, levels):
    cid = entropy.coder_id(name)
    for sym in (smooth_symbols(shape, levels), np.random.default_rng(1).integers(0, levels, shape)):
        sym = sym.astype(np.uint16)
        payload = entropy.CODERS[cid].encode(sym, levels)
        out = entropy.decode_symbols(cid, payload, shape, levels)
        assert out.dtype == np.uint16 and out.shape == shape
        assert np.array_equal(out, sym)


def test_extreme_symbols_round_trip():
    for levels in (2, 3, 256):
        for fill in (0, levels - 1):
            sym = np.full((4, 7, 9), fill, np.uint16)
            cid, payload = entropy.encode_symbols(sym, levels)
            assert np.array_equal(entropy.decode_symbols(cid, payload, sym.shape, levels), sym)


def test_encode_symbols_keeps_the_smallest():
    sym = smooth_symbols((4, 24, 32), 8)
    all_payloads = entropy.encode_all(sym, 8)
    assert set(all_payloads) == {0, 1, 2, 3, 4, 5}
    cid, payload = entropy.encode_symbols(sym, 8)
    assert len(payload) == min(len(p) for p in all_payloads.values())
    assert cid in (1, 5)  # ctx or the learned model wins on correlated symbols
    cid_fast, _ = entropy.encode_symbols(sym, 8, coders=entropy.FAST_CODERS)
    assert cid_fast == 1
    cid_lz, payload_lz = entropy.encode_symbols(sym, 8, coders=["lzma"])
    assert cid_lz == 2 and payload_lz == all_payloads[2]


def test_encoder_input_validation():
    with pytest.raises(ValueError):
        entropy.encode_symbols(np.full((1, 2, 2), 8, np.uint16), 8)
    with pytest.raises(ValueError):
        entropy.encode_symbols(np.zeros((2, 2), np.uint16), 8)
    with pytest.raises(ValueError):
        entropy.encode_symbols(np.zeros((1, 2, 2), np.float32), 8)
    with pytest.raises(ValueError):
        entropy.encode_symbols(np.zeros((1, 2, 2), np.uint16), 8, coders=["zip"])
    with pytest.raises(BitstreamError):
        entropy.encode_symbols(np.zeros((1, 2, 2), np.uint16), 1)


def test_unknown_coder_and_bad_shape():
    with pytest.raises(UnsupportedVersionError):
        entropy.decode_symbols(9, b"", (1, 1, 1), 8)
    with pytest.raises(UnsupportedVersionError):
        entropy.coder_name(15)
    for shape in [(0, 1, 1), (1, 1), (10**6, 10**6, 10**6), (-1, 2, 2)]:
        with pytest.raises(BitstreamError):
            entropy.decode_symbols(1, b"", shape, 8)
    for levels in (0, 1, 257):
        with pytest.raises(BitstreamError):
            entropy.decode_symbols(1, b"", (1, 1, 1), levels)


def test_ctx_is_deterministic_and_format_stable():
    """Changing the context model changes the bitstream: bump the coder id / format then."""
    sym = smooth_symbols((4, 20, 28), 8, seed=7)
    a = entropy.CODERS[1].encode(sym, 8)
    b = entropy.CODERS[1].encode(sym.copy(), 8)
    assert a == b
    assert hashlib.sha256(a).hexdigest()[:16] == GOLDEN_CTX


GOLDEN_CTX = "f57c4e4864a1e29f"


@pytest.mark.parametrize("name", CODER_NAMES)
def test_garbage_payloads_give_typed_error_or_valid_symbols(name):
    """Safety property of every decoder: BitstreamError, or a valid (C,h,w) array — nothing else.

    (Detecting every corruption is the container CRC's job; a range decoder, for one, decodes any
    byte string to *some* symbols.)
    """
    cid = entropy.coder_id(name)
    rng = np.random.default_rng(3)
    shape, levels = (4, 8, 12), 6
    good = entropy.CODERS[cid].encode(smooth_symbols(shape, levels), levels)
    candidates = [b"", b"\0", good + b"\xff\xff\xff\xff", good[: len(good) // 2], good[:-1],
                  rng.bytes(len(good)), rng.bytes(7), rng.bytes(3 * len(good))]
    for i in range(0, len(good), max(1, len(good) // 48)):
        mutated = bytearray(good)
        mutated[i] ^= 1 << (i % 8)
        candidates.append(bytes(mutated))
    rejected = 0
    for payload in candidates:
        try:
            out = entropy.decode_symbols(cid, payload, shape, levels)
        except BitstreamError:
            rejected += 1
            continue
        assert out.shape == shape and out.dtype == np.uint16 and int(out.max()) < levels
    assert rejected >= 3  # at least the empty / one-byte / truncated cases


@pytest.mark.parametrize("name", ["raw", "lzma", "webp"])
def test_length_errors_detected(name):
    cid = entropy.coder_id(name)
    shape, levels = (4, 8, 12), 8
    good = entropy.CODERS[cid].encode(smooth_symbols(shape, levels), levels)
    for bad in (good[:-1], good + b"\0", good[: len(good) // 2]):
        with pytest.raises(BitstreamError):
            entropy.decode_symbols(cid, bad, shape, levels)


def test_ctx_rejects_trailing_words():
    sym = smooth_symbols((4, 8, 12), 8)
    good = entropy.CODERS[1].encode(sym, 8)
    with pytest.raises(BitstreamError):
        entropy.decode_symbols(1, good + b"\x01\x02\x03\x04" * 4, sym.shape, 8)
    with pytest.raises(BitstreamError):
        entropy.decode_symbols(1, b"\x01" * (4 * sym.size + 17), sym.shape, 8)


def test_lzma_decompression_is_bounded():
    """A payload that inflates far beyond the shape is cut off at the expected length."""
    shape, levels = (1, 8, 8), 8
    flt = [{"id": lzma.FILTER_LZMA2, "preset": 0, "dict_size": 1 << 16, "lc": 0, "lp": 0, "pb": 0}]
    bomb = lzma.compress(b"\0" * 20_000_000, format=lzma.FORMAT_RAW, filters=flt)
    t = time.process_time()
    with pytest.raises(BitstreamError):
        entropy.decode_symbols(2, b"\x01" + bomb, shape, levels)
    assert time.process_time() - t < 1.0
    with pytest.raises(BitstreamError):
        entropy.decode_symbols(2, b"\x07" + bomb, shape, levels)  # unknown layout variant


def _png_like(img, fmt, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_webp_size_and_frames_checked_before_decoding():
    from PIL import Image

    shape, levels = (4, 8, 12), 8
    big = Image.new("RGBA", (4000, 4000))
    with pytest.raises(BitstreamError, match="expected"):
        entropy.decode_symbols(3, _png_like(big, "WEBP", lossless=True), shape, levels)
    frames = [Image.new("RGBA", (12, 8), (i, i, i, i)) for i in range(3)]
    anim = _png_like(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True)
    with pytest.raises(BitstreamError):
        entropy.decode_symbols(3, anim, shape, levels)
    with pytest.raises(BitstreamError):  # a symbol >= levels
        entropy.decode_symbols(3, _png_like(Image.new("RGBA", (12, 8), (9, 0, 0, 0)), "WEBP", lossless=True,
                                            exact=True), shape, levels)
    with pytest.raises(BitstreamError):  # not a WebP at all
        entropy.decode_symbols(3, _png_like(Image.new("RGBA", (12, 8)), "PNG"), shape, levels)


def test_jxl_header_checked_before_libjxl_sees_it():
    import pillow_jxl  # noqa: F401
    from PIL import Image

    shape, levels = (4, 8, 12), 8
    w, h = 12, 32
    ok = _png_like(Image.new("L", (w, h)), "JXL", lossless=True, use_container=False)
    assert jxl_coder._size_header(jxl_coder._Bits(ok, 2)) == (w, h)
    jxl_coder._check_header(ok, (w, h))
    huge = _png_like(Image.new("L", (1024, 1024)), "JXL", lossless=True, use_container=False, effort=1)
    with pytest.raises(BitstreamError, match="expected"):
        entropy.decode_symbols(4, huge, shape, levels)
    rgb = _png_like(Image.new("RGB", (w, h)), "JXL", lossless=True, use_container=False)
    with pytest.raises(BitstreamError):
        entropy.decode_symbols(4, rgb, shape, levels)
    boxed = _png_like(Image.new("L", (w, h)), "JXL", lossless=True, use_container=True)
    with pytest.raises(BitstreamError, match="bare"):
        entropy.decode_symbols(4, boxed, shape, levels)
    lossy = _png_like(Image.new("L", (w, h)), "JXL", lossless=False, quality=50, use_container=False)
    with pytest.raises(BitstreamError):
        entropy.decode_symbols(4, lossy, shape, levels)
    with pytest.raises(BitstreamError):
        entropy.decode_symbols(4, ok[:5], shape, levels)
    # sizes in both header forms (small: multiples of 8; large: U32) parse correctly
    for size in [(8, 8), (256, 96), (7, 5), (2000, 750), (96, 3000)]:
        data = _png_like(Image.new("L", size), "JXL", lossless=True, use_container=False)
        assert jxl_coder._size_header(jxl_coder._Bits(data, 2)) == size


def test_image_coders_refuse_too_many_planes():
    sym = np.zeros((64, 300, 2), np.uint16)
    assert set(entropy.encode_all(sym, 4, coders=["raw", "lzma", "webp", "jxl"])) == {0, 2}
    with pytest.raises(BitstreamError):
        entropy.decode_symbols(4, b"\xff\x0a" + b"\0" * 20, sym.shape, 4)
    with pytest.raises(BitstreamError):
        entropy.decode_symbols(3, b"RIFF\0\0\0\0WEBP" + b"\0" * 20, sym.shape, 4)


def test_ctx_decode_speed_768x512_latent():
    """4×64×96 symbols (a 768×512 image): decode well under a second of CPU time."""
    sym = smooth_symbols((4, 64, 96), 8, seed=11)
    payload = entropy.CODERS[1].encode(sym, 8)
    t = time.process_time()
    out = entropy.decode_symbols(1, payload, sym.shape, 8)
    cpu = time.process_time() - t
    assert np.array_equal(out, sym)
    assert cpu < 1.0, f"ctx decode took {cpu:.2f} s CPU"


def test_ctx_prior_and_geometry_are_integer_exact():
    table = context._prior_table(8)
    assert table.dtype == np.int64 and table.min() >= 1
    assert table.shape == (len(context.PRIOR_SPREAD) * context.PHASES, 15)
    nb, order, bounds, _prev = context._geometry(3, 4)
    assert sorted(order.tolist()) == list(range(12)) and bounds[-1] == 12
    # every neighbour is decoded before its position (or is the sentinel)
    rank = np.empty(12, int)
    rank[order] = np.arange(12)
    wave = np.searchsorted(bounds, rank, side="right") - 1
    for p in range(12):
        for q in nb[p]:
            assert q == 12 or wave[q] < wave[p]


def test_import_is_light():
    code = (
        "import sys, codec.entropy\n"
        "bad = [m for m in ('torch', 'constriction', 'pillow_jxl') if m in sys.modules]\n"
        "sys.exit(1 if bad else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.fixture(scope="module")
def real_latent(kodak_image):
    """TAESD latent of a 384×256 Kodak crop (real weights)."""
    import torch
    from PIL import Image

    from codec.models.registry import get_model

    torch.set_num_threads(2)
    img = Image.open(kodak_image(23)).convert("RGB").crop((192, 128, 576, 384))
    x = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        return get_model("taesd").encode(x)[0].numpy()


def test_ctx_beats_lzma_and_order0_on_real_latents(real_latent):
    from codec.quant import params_for_latent, quantize

    qp = params_for_latent(real_latent, 8)
    sym = quantize(real_latent, qp)
    sizes = {entropy.CODERS[c].name: len(p) for c, p in entropy.encode_all(sym, 8).items()}
    order0_bits = 0.0
    for c in range(sym.shape[0]):
        counts = np.bincount(sym[c].ravel(), minlength=8)
        p = counts[counts > 0] / counts.sum()
        order0_bits += -(counts[counts > 0] * np.log2(p)).sum()
    assert sizes["ctx"] < 0.95 * sizes["lzma"], sizes
    assert sizes["ctx"] * 8 < 0.95 * order0_bits, (sizes, order0_bits / 8)
    cid, payload = entropy.encode_symbols(sym, 8)
    assert np.array_equal(entropy.decode_symbols(cid, payload, sym.shape, 8), sym)


def test_webp_jxl_layouts(real_latent):
    sym = np.clip(np.rint((real_latent + 3) / 6 * 7), 0, 7).astype(np.uint16)
    for coder in (webp_coder.WebpCoder(), jxl_coder.JxlCoder()):
        payload = coder.encode(sym, 8)
        assert np.array_equal(coder.decode(payload, sym.shape, 8), sym)
