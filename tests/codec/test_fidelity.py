"""Fidelity guard (issue 5): block scores, patch layer, bitstream sections, the guard in encode/decode."""

from __future__ import annotations

import struct
import zlib

import pytest

from codec import bitstream
from codec.errors import BitstreamError, UnsupportedVersionError
from codec.quant import QuantParams


def _header(**kw) -> bitstream.Header:
    qp = QuantParams(8, (-1.0,) * 4, (1.0,) * 4)
    base = dict(model_id=1, width=64, height=48, quant=qp)
    base.update(kw)
    return bitstream.Header(**base)


def _recrc(data: bytes) -> bytes:
    body = data[:-4]
    return body + struct.pack("<I", zlib.crc32(body))


# ------------------------------------------------------------------------ bitstream: sections + tags


def test_bitstream_patch_section_and_floor_tag_round_trip() -> None:
    h = _header(fidelity_min=0.5, fidelity_mean=0.75, fidelity_floor_met=False, fidelity_floor=0.4,
                patch_layer=b"\x01\x20layer")
    data = bitstream.pack(h, b"payload")
    parsed, payload = bitstream.parse(data)
    assert payload == b"payload"
    assert parsed.patch_layer == b"\x01\x20layer"
    meta = bitstream.header_to_dict(parsed, len(data))
    assert meta["fidelity_floor_met"] is False
    assert meta["fidelity_floor"] == pytest.approx(0.4)
    assert meta["guard"] == "patches"
    assert meta["patch_layer_bytes"] == 7
    assert meta["guard_bytes"] == 1 + 1 + 1 + 7  # count, id, length, body
    plain = bitstream.parse(bitstream.pack(_header(), b"payload"))[0]
    assert plain.patch_layer is None
    assert "guard" not in bitstream.header_to_dict(plain, 10)


def test_bitstream_sections_are_strict() -> None:
    data = bitstream.pack(_header(patch_layer=b"abc"), b"payload")
    cut = data[:-4]
    # the sections are the last 6 bytes before the CRC: count=1, id=1, len=3, "abc"
    assert cut.endswith(b"\x01\x01\x03abc")
    with pytest.raises(BitstreamError):  # truncated section
        bitstream.parse(_recrc(cut[:-1] + struct.pack("<I", 0)))
    with pytest.raises(BitstreamError):  # trailing byte after the sections
        bitstream.parse(_recrc(cut + b"x" + b"\0\0\0\0"))
    with pytest.raises(BitstreamError):  # empty section
        bitstream.parse(_recrc(cut[:-5] + b"\x01\x00" + b"\0\0\0\0"))
    with pytest.raises(BitstreamError):  # count 0
        bitstream.parse(_recrc(cut[:-6] + b"\x00" + b"\0\0\0\0"))
    with pytest.raises(BitstreamError):  # section twice
        bitstream.parse(_recrc(cut[:-6] + b"\x02\x01\x03abc\x01\x03abc" + b"\0\0\0\0"))
    with pytest.raises(UnsupportedVersionError):  # unknown critical section
        bitstream.parse(_recrc(cut[:-5] + b"\x89\x03abc" + b"\0\0\0\0"))
    unknown = bitstream.parse(_recrc(cut[:-5] + b"\x09\x03abc" + b"\0\0\0\0"))[0]  # skipped
    assert unknown.patch_layer is None
    flipped = bytearray(data)
    flipped[-6] ^= 0x40
    with pytest.raises(BitstreamError):  # CRC
        bitstream.parse(bytes(flipped))
    with pytest.raises(ValueError):
        bitstream.pack(_header(payload_kind=bitstream.PAYLOAD_AVIF, patch_layer=b"x"), b"avif")
