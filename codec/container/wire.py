"""Wire primitives of the container: LEB128 varints, a bounds-checked reader, the one TLV parser,
and signed 4-bit packing. Pure Python + numpy.

Every read failure is a `BitstreamError` naming the field; nothing is allocated from a claimed size.
"""

from __future__ import annotations

from collections.abc import Container

import numpy as np

from codec.errors import BitstreamError, UnsupportedVersionError

VARINT_MAX_BYTES = 5
#: bit 7 of a TLV id: a reader that does not know the id must refuse the file
CRITICAL = 0x80


def varint_bytes(value: int) -> bytes:
    """LEB128 encoding of a non-negative int."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


class Reader:
    """Bounds-checked reader over ``data[pos:end]``; every read failure is a `BitstreamError`."""

    def __init__(self, data: bytes, end: int, pos: int = 0) -> None:
        self.data, self.pos, self.end = data, pos, end

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise BitstreamError(f"truncated bitstream: {what} needs {n} bytes at offset {self.pos}")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def varint(self, what: str, limit: int) -> int:
        value = 0
        for i in range(VARINT_MAX_BYTES):
            byte = self.u8(what)
            value |= (byte & 0x7F) << (7 * i)
            if not byte & 0x80:
                if byte == 0 and i > 0:
                    raise BitstreamError(f"{what}: non-canonical varint")
                if value > limit:
                    raise BitstreamError(f"{what} = {value} exceeds the limit {limit}")
                return value
        raise BitstreamError(f"{what}: varint longer than {VARINT_MAX_BYTES} bytes")


def tlv_bytes(tag: int, body: bytes) -> bytes:
    """One TLV entry: ``u8 id``, varint length, body."""
    return bytes([tag]) + varint_bytes(len(body)) + body


def read_tlvs(
    r: Reader, what: str, known: Container[int], *, length_limit: int, min_length: int = 0,
    count: int | None = None,
) -> list[tuple[int, bytes]]:
    """The TLV parser of the container (metadata tags and extension sections).

    Reads ``count`` entries, or until ``r.end`` when ``count`` is None. An entry is ``u8 id`` (bit 7 =
    critical), a varint length in ``[min_length, length_limit]`` and the body. An id may appear once;
    an unknown id is skipped unless it is critical (`UnsupportedVersionError`). Returns the known
    ``(id, body)`` pairs in stream order.
    """
    out: list[tuple[int, bytes]] = []
    seen: set[int] = set()
    n = 0
    while (r.pos < r.end) if count is None else (n < count):
        n += 1
        id_byte = r.u8(f"{what} id")
        tag, critical = id_byte & 0x7F, bool(id_byte & CRITICAL)
        length = r.varint(f"{what} length", length_limit)
        if length < min_length:
            raise BitstreamError(f"{what} {tag} is empty")
        body = r.take(length, f"{what} {tag}")
        if tag in seen:
            raise BitstreamError(f"{what} {tag} appears twice")
        seen.add(tag)
        if tag in known:
            out.append((tag, body))
        elif critical:
            raise UnsupportedVersionError(f"unknown critical {what} {tag}")
    return out


def pack_nibbles(values: np.ndarray) -> bytes:
    """Signed 4-bit values (two's complement), two per byte, low nibble first, zero-padded."""
    v = (values & 0x0F).astype(np.uint8)
    if v.size % 2:
        v = np.concatenate([v, np.zeros(1, np.uint8)])
    return (v[0::2] | (v[1::2] << 4)).astype(np.uint8).tobytes()


def unpack_nibbles(raw: bytes, count: int) -> np.ndarray:
    """Inverse of `pack_nibbles` for ``count`` values; a non-zero padding nibble is an error."""
    b = np.frombuffer(raw, dtype=np.uint8)
    v = np.stack([b & 0x0F, b >> 4], axis=1).ravel().astype(np.int64)
    if count % 2 and v[-1]:
        raise BitstreamError("reconstruction offsets: non-zero padding nibble")
    v = v[:count]
    return np.where(v >= 8, v - 16, v)
