"""LZMA2 (raw, no xz container) over bit-packed symbols.

Layouts tried per image, smallest kept (first payload byte = variant):
planes (C, h, w) or pixels (h, w, C) × dense packing (1/2/4 bits per symbol, several symbols a byte)
or one symbol a byte. The xz container would cost ~60 bytes of headers, so the raw format is used:
the decoder knows the filter settings and derives the dictionary size from the latent shape, and
decompression is bounded by the exact output length the shape implies.
"""

from __future__ import annotations

import lzma

import numpy as np

from codec.entropy.base import bits_per_symbol, check_shape
from codec.errors import BitstreamError

CODER_ID = 2
NAME = "lzma"

_LAYOUTS = ("chw", "hwc")


def _field_bits(levels: int) -> int:
    """Packing width: the smallest of 1, 2, 4, 8 bits that holds a symbol."""
    bits = bits_per_symbol(levels)
    return next(b for b in (1, 2, 4, 8) if b >= bits)


def _filters(raw_len: int) -> list[dict[str, int]]:
    dict_size = max(4096, 1 << max(0, raw_len - 1).bit_length())
    return [
        {
            "id": lzma.FILTER_LZMA2,
            "preset": 9 | lzma.PRESET_EXTREME,
            "dict_size": min(dict_size, 1 << 26),
            "lc": 0,
            "lp": 0,
            "pb": 0,
        }
    ]


def _pack(values: np.ndarray, bits: int) -> bytes:
    per = 8 // bits
    flat = values.reshape(-1).astype(np.uint16)
    pad = (-flat.size) % per
    if pad:
        flat = np.concatenate([flat, np.zeros(pad, np.uint16)])
    groups = flat.reshape(-1, per)
    out = np.zeros(groups.shape[0], np.uint16)
    for k in range(per):
        out = (out << bits) | groups[:, k]
    return out.astype(np.uint8).tobytes()


def _unpack(raw: bytes, count: int, bits: int) -> np.ndarray:
    per = 8 // bits
    data = np.frombuffer(raw, dtype=np.uint8).astype(np.uint16)
    shifts = np.arange(per - 1, -1, -1, dtype=np.uint16) * bits
    values = ((data[:, None] >> shifts[None, :]) & ((1 << bits) - 1)).reshape(-1)
    if values[count:].any():
        raise BitstreamError("lzma payload has non-zero padding")
    return values[:count]


def _variant(layout: int, dense: bool) -> int:
    return layout * 2 + int(dense)


class LzmaCoder:
    coder_id = CODER_ID
    name = NAME

    def encode(self, symbols: np.ndarray, levels: int) -> bytes:
        best: bytes | None = None
        for li, layout in enumerate(_LAYOUTS):
            arr = symbols if layout == "chw" else symbols.transpose(1, 2, 0)
            for dense in (True, False):
                bits = _field_bits(levels) if dense else 8
                if not dense and bits == _field_bits(levels):
                    continue
                raw = _pack(np.ascontiguousarray(arr), bits)
                data = lzma.compress(raw, format=lzma.FORMAT_RAW, filters=_filters(len(raw)))
                candidate = bytes([_variant(li, dense)]) + data
                if best is None or len(candidate) < len(best):
                    best = candidate
        assert best is not None
        return best

    def decode(self, payload: bytes, shape: tuple[int, int, int], levels: int) -> np.ndarray:
        c, h, w = check_shape(shape, levels)
        if len(payload) < 2:
            raise BitstreamError("lzma payload too short")
        variant = payload[0]
        if variant >= 2 * len(_LAYOUTS):
            raise BitstreamError(f"unknown lzma layout variant {variant}")
        layout, dense = _LAYOUTS[variant // 2], bool(variant % 2)
        bits = _field_bits(levels) if dense else 8
        count = c * h * w
        raw_len = (count * bits + 7) // 8
        decomp = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=_filters(raw_len))
        try:
            raw = decomp.decompress(payload[1:], max_length=raw_len + 1)
        except lzma.LZMAError as exc:
            raise BitstreamError(f"corrupt lzma payload: {exc}") from exc
        if len(raw) != raw_len or not decomp.eof or decomp.unused_data:
            raise BitstreamError(
                f"lzma payload decodes to {len(raw)}{'+' if not decomp.eof else ''} bytes, "
                f"expected exactly {raw_len}"
            )
        values = _unpack(raw, count, bits)
        if int(values.max()) >= levels:
            raise BitstreamError(f"lzma payload holds a symbol >= levels ({levels})")
        if layout == "chw":
            return values.reshape(c, h, w)
        return np.ascontiguousarray(values.reshape(h, w, c).transpose(2, 0, 1))
