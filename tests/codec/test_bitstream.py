"""codec.container: round trips, compactness, and the strict parser's typed errors."""

from __future__ import annotations

import struct
import subprocess
import sys
import tracemalloc
import zlib

import numpy as np
import pytest

from codec import container as bs
from codec import entropy
from codec.errors import BitstreamError, CodecError, UnsupportedVersionError
from codec.quant import QuantParams, dequantize, params_for_latent, quantize

QP4 = QuantParams(8, (-2.1, -2.5, -1.7, -1.5), (2.2, 2.3, 1.5, 1.9))


def header(**kw) -> bs.Header:
    base = dict(model_id=1, width=768, height=512, quant=QP4, entropy_coder=1, effort=1)
    base.update(kw)
    return bs.Header(**base)


def with_crc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def varint(v: int) -> bytes:
    return bs.varint_bytes(v)


def forge(*, version=1, model=1, flags=0, coder=1, width=varint(16), height=varint(16), rest=None,
          payload=b"\0") -> bytes:
    """Hand-build a stream with a valid CRC (so the parser's field checks are what fires)."""
    body = bs.MAGIC + bytes([version, model, flags, coder]) + width + height
    if rest is None:
        rest = bytes([3, 7]) + np.array([-1, 1] * 4, "<f2").tobytes()
    body += rest + varint(len(payload)) + payload
    return with_crc(body)


# ---------------------------------------------------------------------------------- round trips


def test_round_trip_and_size():
    payload = bytes(range(256)) * 20
    data = bs.pack(header(), payload)
    overhead = len(data) - len(payload)
    # fixed part (magic..levels, varint sizes, payload length, CRC) + 4 bytes per channel
    assert overhead - 4 * 4 <= 24, overhead
    h, p = bs.parse(data)
    assert p == payload
    assert (h.width, h.height, h.coded_width, h.coded_height) == (768, 512, 768, 512)
    assert h.latent_shape == (4, 64, 96)
    assert h.quant == QP4 and h.entropy_coder == 1 and h.effort == 1 and h.model_id == 1
    assert h.payload_kind == bs.PAYLOAD_LATENT and h.fidelity_min is None


def test_round_trip_all_optional_fields():
    qp = QuantParams(12, (-2.5,) * 4, (2.5,) * 4, "tanh")
    h0 = header(coded_width=383, coded_height=255, quant=qp, entropy_coder=2, effort=2,
                fidelity_min=0.61, fidelity_mean=0.83, fidelity_floor_met=False, encoder_variant="tuned-é")
    h, p = bs.parse(bs.pack(h0, b"xyz"))
    assert p == b"xyz"
    assert (h.coded_width, h.coded_height) == (383, 255)
    assert h.latent_shape == (4, 32, 48)
    assert h.quant == qp and h.quant.domain == "tanh"
    assert h.fidelity_min == pytest.approx(0.61) and h.fidelity_mean == pytest.approx(0.83)
    assert h.fidelity_floor_met is False and h.encoder_variant == "tuned-é"
    d = bs.header_to_dict(h, 1234)
    for key in ("format_version", "model", "width", "height", "coded_width", "coded_height",
                "latent_channels", "levels", "entropy_coder", "bytes", "bpp", "effort",
                "fidelity_min", "fidelity_mean", "fidelity_floor_met"):
        assert key in d
    assert d["model"] == "taesd" and d["entropy_coder"] == "lzma" and d["effort"] == "max"
    assert d["bpp"] == pytest.approx(8 * 1234 / (768 * 512))


@pytest.mark.parametrize("levels", [2, 5, 8, 16])
def test_reconstruction_offsets_round_trip(levels):
    z = np.random.default_rng(levels).standard_normal((4, 9, 13)).astype(np.float32)
    qp = params_for_latent(z, levels, offsets=True)
    assert qp.offsets is not None
    data = bs.pack(header(width=100, height=70, quant=qp), b"xx")
    assert len(data) - len(bs.pack(header(width=100, height=70, quant=QuantParams(
        levels, qp.lo, qp.hi)), b"xx")) == (4 * levels + 1) // 2
    h, _ = bs.parse(data)
    assert h.quant == qp and bs.header_to_dict(h, len(data))["quant_offsets"] is True


def test_offset_field_errors():
    ranges = np.array([-1, 1] * 4, "<f2").tobytes()
    with pytest.raises(BitstreamError, match="all zero"):
        bs.parse(forge(flags=0x40, rest=bytes([3, 7]) + ranges + bytes(16)))
    with pytest.raises(BitstreamError, match="truncated"):
        bs.parse(forge(flags=0x40, rest=bytes([3, 7]) + ranges + b"\x01", payload=b""))
    odd = bytes([3, 2]) + ranges + b"\x01\x00\x00\x00\x00\x10"  # 4 x 3 levels = 12 nibbles: ok
    assert bs.parse(forge(flags=0x40, rest=odd))[0].quant.offsets[0] == (1, 0, 0)
    with pytest.raises(BitstreamError, match="non-latent"):
        bs.parse(forge(flags=0x41, coder=0, rest=b""))


def test_avif_fallback_payload_kind():
    h0 = bs.Header(model_id=0, width=640, height=480, payload_kind=bs.PAYLOAD_AVIF, effort=1,
                   fidelity_min=0.2, fidelity_floor_met=False)
    data = bs.pack(h0, b"\0\0\0\x1cftypavif" + b"x" * 100)
    h, p = bs.parse(data)
    assert h.payload_kind == bs.PAYLOAD_AVIF and h.quant is None and p.startswith(b"\0\0\0\x1cftyp")
    info = bs.header_to_dict(h, len(data))
    assert info["payload_kind"] == "avif" and info["levels"] is None and info["model"] is None
    with pytest.raises(BitstreamError, match="empty"):
        bs.parse(bs.pack(h0, b""))


def test_real_pipeline_round_trip():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((4, 9, 13)).astype(np.float32)
    qp = params_for_latent(z, 10)
    sym = quantize(z, qp)
    cid, payload = entropy.encode_symbols(sym, qp.levels)
    data = bs.pack(bs.Header(model_id=1, width=100, height=70, quant=qp, entropy_coder=cid), payload)
    h, p = bs.parse(data)
    out = entropy.decode_symbols(h.entropy_coder, p, h.latent_shape, h.quant.levels)
    assert np.array_equal(dequantize(out, h.quant), dequantize(sym, qp))


def test_pack_rejects_what_the_format_cannot_hold():
    for bad in (dict(width=0), dict(width=70000), dict(width=20000, height=20000), dict(coded_width=800),
                dict(latent_channels=3), dict(entropy_coder=9), dict(effort=3), dict(quant=None),
                dict(latent_height=63), dict(encoder_variant="x" * 65), dict(fidelity_min=float("nan")),
                dict(model_id=300)):
        with pytest.raises(ValueError):
            bs.pack(header(**bad), b"p")


# --------------------------------------------------------------------------- strict parser errors


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "magic"),
        (b"GIF89a", "magic"),
        (b"\x89LAT", "truncated"),
        (b"\x89LAT\x01\x01", "truncated"),
    ],
)
def test_garbage_and_short(data, match):
    with pytest.raises(BitstreamError, match=match):
        bs.parse(data)


def test_version_and_reserved_bits_are_unsupported():
    with pytest.raises(UnsupportedVersionError, match="version 2"):
        bs.parse(forge(version=2))
    with pytest.raises(UnsupportedVersionError, match="reserved"):
        bs.parse(forge(flags=0x80))
    with pytest.raises(UnsupportedVersionError, match="reserved"):
        bs.parse(forge(flags=0xC0))
    with pytest.raises(UnsupportedVersionError, match="payload kind"):
        bs.parse(forge(flags=0x03))
    with pytest.raises(UnsupportedVersionError, match="reserved"):
        bs.parse(forge(coder=0x41))
    with pytest.raises(UnsupportedVersionError, match="entropy coder"):
        bs.parse(forge(coder=0x0E))
    with pytest.raises(UnsupportedVersionError, match="model id"):
        bs.parse(forge(model=200))
    assert issubclass(UnsupportedVersionError, BitstreamError) and issubclass(BitstreamError, CodecError)


def test_forged_valid_stream_parses():
    h, p = bs.parse(forge())
    assert (h.width, h.height, h.latent_shape, h.quant.levels, p) == (16, 16, (4, 2, 2), 8, b"\0")


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (dict(width=varint(0)), "width"),
        (dict(height=varint(65536)), "height"),
        (dict(width=varint(10**6), height=varint(10**6)), "width"),
        (dict(width=varint(60000), height=varint(60000)), "pixels"),
        (dict(width=b"\x80\x80\x80\x80\x80\x01"), "varint"),
        (dict(width=b"\x90\x00"), "non-canonical"),
        (dict(coder=0x31), "effort"),
        (dict(rest=bytes([3, 0]) + np.array([-1, 1] * 4, "<f2").tobytes()), "levels"),
        (dict(rest=bytes([3, 7]) + np.array([1, -1] * 4, "<f2").tobytes()), "range"),
        (dict(rest=bytes([3, 7]) + np.array([np.nan, 1] * 4, "<f2").tobytes()), "range"),
        (dict(rest=bytes([3, 7]) + np.array([-2000, 1] * 4, "<f2").tobytes()), "range"),
        (dict(flags=0x10, rest=bytes([3, 7]) + np.array([-2.99, 1] * 4, "<f2").tobytes()), "range"),
        (dict(rest=bytes([2, 7]) + np.array([-1, 1] * 3, "<f2").tobytes()), "channels"),
        (dict(rest=bytes([3 | 0x40, 7]) + np.array([-1, 1] * 4, "<f2").tobytes()), "downscale"),
        (dict(flags=0x04, rest=varint(16) + varint(16) + bytes([3, 7])
              + np.array([-1, 1] * 4, "<f2").tobytes()), "equal"),
        (dict(flags=0x04, rest=varint(17) + varint(8) + bytes([3, 7])
              + np.array([-1, 1] * 4, "<f2").tobytes()), "larger"),
        (dict(flags=0x01 | 0x10, coder=0, rest=b""), "non-latent"),
        (dict(flags=0x01, coder=1, rest=b""), "non-latent"),
    ],
)
def test_field_errors(kw, match):
    with pytest.raises(BitstreamError, match=match):
        bs.parse(forge(**kw))


def test_lengths_trailing_truncation_and_crc():
    data = bs.pack(header(), b"payload!")
    with pytest.raises(BitstreamError, match="CRC"):
        bs.parse(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(BitstreamError, match="trailing"):
        bs.parse(with_crc(data[:-4] + b"extra"))
    with pytest.raises(BitstreamError, match="truncated"):
        bs.parse(with_crc(data[:-6]))
    with pytest.raises(BitstreamError):
        bs.parse(data + b"\0")
    for cut in range(len(data)):
        with pytest.raises(BitstreamError):
            bs.parse(data[:cut])


def test_payload_length_bound_checked_before_reading():
    # a 16x16 latent stream whose payload length claims 1 GB
    body = forge()[:-4]
    head = body[: -len(varint(1)) - 1]
    with pytest.raises(BitstreamError, match="payload length"):
        bs.parse(with_crc(head + varint(10**9) + b"\0"))


def _meta(entries: bytes) -> bytes:
    return bytes([3, 7]) + np.array([-1, 1] * 4, "<f2").tobytes() + varint(len(entries)) + entries


@pytest.mark.parametrize(
    ("entries", "err", "match"),
    [
        (bytes([0x80 | 50, 1, 0]), UnsupportedVersionError, "critical"),
        (bytes([1, 3]) + b"abc", BitstreamError, "4 bytes"),
        (bytes([1, 4]) + struct.pack("<f", float("inf")), BitstreamError, "finite"),
        (bytes([3, 1, 2]), BitstreamError, "0 or 1"),
        (bytes([4, 2]) + b"\xff\xfe", BitstreamError, "UTF-8"),
        (bytes([4, 0]), BitstreamError, "length"),
        (bytes([3, 1, 1, 3, 1, 0]), BitstreamError, "twice"),
        (bytes([1, 9]) + b"abc", BitstreamError, "truncated"),
        (b"", BitstreamError, "empty"),
    ],
)
def test_metadata_errors(entries, err, match):
    with pytest.raises(err, match=match):
        bs.parse(forge(flags=0x08, rest=_meta(entries)))


def test_unknown_non_critical_tag_is_skipped():
    entries = bytes([50, 3]) + b"new" + bytes([3, 1, 1])
    h, _ = bs.parse(forge(flags=0x08, rest=_meta(entries)))
    assert h.fidelity_floor_met is True


def test_metadata_section_longer_than_stream():
    rest = bytes([3, 7]) + np.array([-1, 1] * 4, "<f2").tobytes() + varint(4000) + bytes([3, 1, 1])
    with pytest.raises(BitstreamError, match="truncated"):
        bs.parse(forge(flags=0x08, rest=rest))


def test_absurd_sizes_rejected_without_allocation():
    """A claimed 10^6 x 10^6 image (or any other lie) is refused before anything big is allocated."""
    hostile = [
        forge(width=varint(10**6), height=varint(10**6)),
        forge(width=varint(65535), height=varint(65535)),
        forge(payload=b"\0" * 10, rest=bytes([63, 255]) + np.array([-1, 1] * 64, "<f2").tobytes()),
    ]
    tracemalloc.start()
    try:
        for data in hostile:
            with pytest.raises(BitstreamError):
                bs.parse(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000, peak


def test_caller_pixel_limit():
    data = bs.pack(header(), b"p")
    assert bs.parse(data, max_pixels=768 * 512)[1] == b"p"
    with pytest.raises(BitstreamError, match="caller's limit"):
        bs.parse(data, max_pixels=768 * 512 - 1)


def test_channel_count_must_match_the_model():
    # taesd3 (id 3) has 16 channels: a 4-channel header for it is inconsistent
    with pytest.raises(BitstreamError, match="channels"):
        bs.parse(forge(model=3))
    rest = bytes([15, 7]) + np.array([-1, 1] * 16, "<f2").tobytes()
    h, _ = bs.parse(forge(model=3, rest=rest))
    assert h.latent_channels == 16


def test_import_does_not_pull_torch():
    code = "import sys, codec.container, codec.entropy; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
