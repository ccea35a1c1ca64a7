"""A lean range coder for small, mostly-zero signed planes (probe only: scripts/probe_lowfreq_layer.py).

The latent's context coder (`codec.entropy.context`) learns its tables online from a heavy-tailed prior:
on a 3×64×96 plane of zeros it spends ~100 bytes before it has learned that everything is zero — most
of what a correction layer at 0.05–0.15 bpp can afford. This coder instead writes its model up front,
one byte per (plane, context), and pays ~0.01 bit for a zero in a quiet context.

Not in the codec: the layer it was written for did not pay (docs/bench/rd/msssim_gap/README.md, lever 4).
Kept beside the probe so that the measurement can be repeated.

Model:

- Symbols are integers in ``[-HALF, HALF]``, coded plane by plane, row by row.
- Context of a symbol: ``min(CONTEXTS − 1, |NW| + |N| + |NE| + |P|)`` — its three neighbours in the row
  above (0 outside the plane) and, from the second plane on, the symbol at the same place in the plane
  before (0 in the first plane). A whole row is one vectorised step: no neighbour in its own row.
- Each (plane, context) has one byte ``a`` (1..255): the probability of ``k`` is proportional to
  ``max(1, ⌊2^24 · a^(2|k|) / 2^(16|k|)⌋)`` — a two-sided geometric (discrete Laplace) law of ratio
  ``(a/256)²`` (squared: a quiet context can make a zero cost ~0.001 bit), computed in exact integer
  arithmetic, so that encoder and decoder on any machine see the same tables.
- Payload: ``planes × CONTEXTS`` parameter bytes, then constriction's range-coder words (little-endian
  u32, trailing zero bytes dropped).

The encoder picks each ``a`` that minimises the exact code length of what it codes. No torch here;
constriction is imported lazily.
"""

from __future__ import annotations

import functools

import numpy as np

from codec.errors import BitstreamError

HALF = 15
LEVELS = 2 * HALF + 1
CONTEXTS = 3
#: largest plane set this coder accepts (a 1/4-resolution correction of a 12 MP photo is far below it)
MAX_SYMBOLS = 1 << 22
_ONE = 1 << 24


@functools.cache
def _tables() -> np.ndarray:
    """(256, LEVELS) float64 probabilities; row ``a`` is the law of parameter ``a`` (row 0 unused)."""
    out = np.zeros((256, LEVELS), dtype=np.float64)
    for a in range(1, 256):
        freq = [max(1, (_ONE * a ** (2 * abs(k))) >> (16 * abs(k))) for k in range(-HALF, HALF + 1)]
        total = sum(freq)
        out[a] = [f / total for f in freq]  # int / int: correctly rounded, the same everywhere
    return out


def _family():
    import constriction

    return constriction.stream.model.Categorical(perfect=False)


def _contexts(above: np.ndarray | None, prev: np.ndarray | None, width: int) -> np.ndarray:
    """Context of every symbol of a row from the row above and the same row of the plane before."""
    s = np.zeros(width, dtype=np.int64)
    if above is not None:
        a = np.abs(above)
        s += a
        s[1:] += a[:-1]
        s[:-1] += a[1:]
    if prev is not None:
        s += np.abs(prev)
    return np.minimum(s, CONTEXTS - 1)


def _all_contexts(q: np.ndarray) -> np.ndarray:
    c, h, w = q.shape
    out = np.empty_like(q)
    for ch in range(c):
        for i in range(h):
            out[ch, i] = _contexts(q[ch, i - 1] if i else None, q[ch - 1, i] if ch else None, w)
    return out


def check_shape(shape: tuple[int, int, int]) -> tuple[int, int, int]:
    c, h, w = (int(v) for v in shape)
    if min(c, h, w) < 1 or c * h * w > MAX_SYMBOLS:
        raise BitstreamError(f"geometric planes {c}x{h}x{w} outside 1..{MAX_SYMBOLS} symbols")
    return c, h, w


def fit(q: np.ndarray) -> tuple[np.ndarray, float]:
    """The parameter bytes (planes, CONTEXTS) that minimise the code length of ``q``, and that length
    in bits (parameters not counted)."""
    q = np.asarray(q, dtype=np.int64)
    ctx = _all_contexts(q)
    bits = -np.log2(_tables()[1:])  # (255, LEVELS)
    params = np.ones((q.shape[0], CONTEXTS), dtype=np.uint8)
    total = 0.0
    for ch in range(q.shape[0]):
        for b in range(CONTEXTS):
            hist = np.bincount(q[ch][ctx[ch] == b] + HALF, minlength=LEVELS)
            if not hist.any():
                continue
            cost = bits @ hist
            best = int(np.argmin(cost))
            params[ch, b] = best + 1
            total += float(cost[best])
    return params, total


def encode(q: np.ndarray) -> bytes:
    """Code ``q`` (planes, h, w) of integers in [-HALF, HALF]."""
    import constriction

    q = np.asarray(q, dtype=np.int64)
    c, h, w = check_shape(q.shape)
    if q.size and (q.min() < -HALF or q.max() > HALF):
        raise ValueError(f"symbols outside [-{HALF}, {HALF}]")
    params, _ = fit(q)
    tables, family = _tables(), _family()
    encoder = constriction.stream.queue.RangeEncoder()
    for ch in range(c):
        for i in range(h):
            ctx = _contexts(q[ch, i - 1] if i else None, q[ch - 1, i] if ch else None, w)
            encoder.encode((q[ch, i] + HALF).astype(np.int32), family, tables[params[ch][ctx]])
    words = encoder.get_compressed().astype("<u4").tobytes().rstrip(b"\0")
    return params.tobytes() + words


def decode(payload: bytes, shape: tuple[int, int, int]) -> np.ndarray:
    """Inverse of `encode`; `BitstreamError` for anything that is not a valid payload of ``shape``."""
    import constriction

    c, h, w = check_shape(shape)
    head = c * CONTEXTS
    payload = bytes(payload)
    if len(payload) < head:
        raise BitstreamError("geometric payload: truncated parameters")
    if len(payload) > head + 4 * c * h * w + 16:  # far above 32 bits/symbol: not from this coder
        raise BitstreamError(f"geometric payload of {len(payload)} bytes is too long for {c}x{h}x{w}")
    params = np.frombuffer(payload[:head], dtype=np.uint8).reshape(c, CONTEXTS)
    if not params.all():
        raise BitstreamError("geometric payload: parameter 0 is not a law")
    body = payload[head:]
    words = np.frombuffer(body + b"\0" * (-len(body) % 4), dtype="<u4").astype(np.uint32)
    tables, family = _tables(), _family()
    out = np.empty((c, h, w), dtype=np.int64)
    try:
        decoder = constriction.stream.queue.RangeDecoder(words)
        for ch in range(c):
            for i in range(h):
                ctx = _contexts(out[ch, i - 1] if i else None, out[ch - 1, i] if ch else None, w)
                out[ch, i] = decoder.decode(family, tables[params[ch][ctx]]).astype(np.int64) - HALF
    except (ValueError, RuntimeError, AssertionError) as exc:
        raise BitstreamError(f"corrupt geometric payload: {exc}") from exc
    if not decoder.maybe_exhausted():
        raise BitstreamError("geometric payload has data left after the last symbol")
    return out
