"""Entropy coding of quantized latent symbols: several coders behind one interface, smallest wins.

Coders (id: name — module):

- 0: ``raw``  — fixed-length bit packing (`raw`), the bounded fallback;
- 1: ``ctx``  — context-adaptive range coder, constriction (`context`), usually the smallest;
- 2: ``lzma`` — raw LZMA2 of bit-packed symbols (`lzma_coder`);
- 3: ``webp`` — lossless WebP of the planes (`webp_coder`);
- 4: ``jxl``  — lossless JPEG XL of the planes (`jxl_coder`);
- 5: ``learned`` — learned conditional model (small integer MLP, weights in codec/zoo), constriction
  (`learned`).

`encode_symbols` runs every coder (or the ones asked for) and keeps the smallest payload;
`decode_symbols` dispatches on the id stored in the bitstream header. Decoders take the shape and
level count from the validated header, raise `BitstreamError` on anything wrong and never allocate
more than the shape implies. Importing this package imports neither torch nor constriction.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from codec.entropy.base import (
    MAX_LEVELS,
    MAX_SYMBOLS,
    MIN_LEVELS,
    CoderUnsuitable,
    EntropyCoder,
    check_shape,
    check_symbols,
)
from codec.entropy.context import ContextCoder
from codec.entropy.jxl_coder import JxlCoder
from codec.entropy.learned import LearnedCoder
from codec.entropy.lzma_coder import LzmaCoder
from codec.entropy.raw import RawCoder
from codec.entropy.webp_coder import WebpCoder
from codec.errors import BitstreamError, UnsupportedVersionError

__all__ = [
    "CODERS",
    "FAST_CODERS",
    "MAX_LEVELS",
    "MAX_SYMBOLS",
    "MIN_LEVELS",
    "CoderUnsuitable",
    "EntropyCoder",
    "coder_id",
    "coder_name",
    "decode_symbols",
    "encode_all",
    "encode_symbols",
]

CODERS: dict[int, EntropyCoder] = {
    c.coder_id: c
    for c in (RawCoder(), ContextCoder(), LzmaCoder(), WebpCoder(), JxlCoder(), LearnedCoder())
}
#: the coders worth trying inside a rate-control search (the image codecs cost ~0.2-0.5 s each
#: and have not beaten ``ctx`` on real latents; see README.md)
FAST_CODERS = ("ctx", "raw")


def coder_name(coder_id: int) -> str:
    """Name of a coder id (``1`` → ``"ctx"``); `UnsupportedVersionError` if unknown."""
    coder = CODERS.get(int(coder_id))
    if coder is None:
        raise UnsupportedVersionError(f"entropy coder {coder_id} is unknown to this build")
    return coder.name


def coder_id(name: str | int) -> int:
    """Id of a coder given by name or id; ValueError if unknown."""
    if isinstance(name, (int, np.integer)) and not isinstance(name, bool):
        if int(name) in CODERS:
            return int(name)
    else:
        for cid, coder in CODERS.items():
            if coder.name == name:
                return cid
    raise ValueError(f"unknown entropy coder {name!r}; known: {[c.name for c in CODERS.values()]}")


def encode_all(
    symbols: np.ndarray, levels: int, coders: Iterable[str | int] | None = None
) -> dict[int, bytes]:
    """Payload of every applicable coder (id → bytes), for `encode_symbols` and measurements."""
    arr = check_symbols(symbols, levels)
    ids = list(CODERS) if coders is None else [coder_id(c) for c in coders]
    out: dict[int, bytes] = {}
    for cid in ids:
        try:
            out[cid] = CODERS[cid].encode(arr, int(levels))
        except CoderUnsuitable:
            continue
    if not out:  # raw always applies
        out[0] = CODERS[0].encode(arr, int(levels))
    return out


def encode_symbols(
    symbols: np.ndarray, levels: int, *, coders: Iterable[str | int] | None = None
) -> tuple[int, bytes]:
    """Entropy-code (C, h, w) symbols in [0, levels); returns (coder_id, payload), the smallest.

    ``coders``: restrict the coders tried (names or ids; default: all, e.g. `FAST_CODERS` in a
    rate-control loop). Ties go to the lower id.
    """
    payloads = encode_all(symbols, levels, coders)
    best = min(payloads, key=lambda cid: (len(payloads[cid]), cid))
    return best, payloads[best]


def decode_symbols(coder_id: int, payload: bytes, shape: tuple[int, int, int], levels: int) -> np.ndarray:
    """Decode a payload to (C, h, w) uint16 symbols; `BitstreamError` on anything wrong."""
    coder = CODERS.get(int(coder_id)) if isinstance(coder_id, (int, np.integer)) else None
    if coder is None:
        raise UnsupportedVersionError(f"entropy coder {coder_id!r} is unknown to this build")
    shape = check_shape(shape, levels)
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise BitstreamError(f"payload must be bytes, got {type(payload).__name__}")
    try:
        out = coder.decode(bytes(payload), shape, int(levels))
    except BitstreamError:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # a decoder bug on hostile bytes must still surface as a typed error
        msg = f"{coder.name} payload could not be decoded: {type(exc).__name__}: {exc}"
        raise BitstreamError(msg) from exc
    if out.shape != shape or out.dtype != np.uint16:
        raise BitstreamError(f"{coder.name} decoder returned {out.dtype} {out.shape}, expected {shape}")
    return out
