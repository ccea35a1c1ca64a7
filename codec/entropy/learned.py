"""Learned conditional entropy model of latent symbols (coder id 5, ``learned``).

A small MLP (weights in ``codec/zoo/entropy_learned.safetensors``, trained on latents of the
training photos by ``codec/tools/training/train_entropy.py``) predicts, for every symbol, the mean
and the scale of a discretized distribution with CDF ½ + ½·x/(1 + x⁴)^¼ (`cdf`) over ``[0, levels)`` from

- 16 causal neighbours of the same channel (wavefront order ``t = 2i + j``, as `context`),
- the 5×5 neighbourhood of the previous channel and the 3×3 of the two before it (channel-conditional: those
  channels are fully decoded, so the context is not causal inside them),
- the channel index (one-hot, channels ≥ 4 share a slot) and the quantizer step ``2/(levels-1)``.

Symbols are range coded with constriction. The encoder knows every symbol, so it evaluates the
model for a whole plane in one batch; the decoder evaluates it wavefront by wavefront (one numpy
step + one constriction call per wavefront; the previous-channel part of the first layer is
computed once per channel).

Determinism (encoder and decoder must agree bit for bit on every machine):

- inference is integer: inputs and weights are integers, products and sums are integer-valued
  float64 far below 2**53 (exact whatever BLAS does, whatever the summation order), activations
  are rescaled by power-of-two floors;
- the network's outputs are a fixed-point mean and a log-scale index on a 1/8-octave grid; the
  distribution is evaluated with +, −, ×, ÷ and sqrt only (IEEE-754 correctly rounded, no exp/erf
  from a libm) and rounded to integer counts before constriction sees it;
- the weights define the format: the loader checks the sha256 of their values (`weights_digest`,
  `WEIGHTS_SHA256`; not of the file, whose metadata order safetensors does not fix); other weights
  need a new coder id.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import numpy as np

from codec.entropy.base import CoderUnsuitable, check_shape
from codec.entropy.context import neighbour_map
from codec.errors import BitstreamError

CODER_ID = 5
NAME = "learned"

# ---- model constants: they define the bitstream, change them only with a new coder id ----------
#: causal neighbour offsets (di, dj), all with 2*di + dj < 0 (decoded in an earlier wavefront)
OFFSETS = ((0, -1), (-1, 0), (-1, -1), (-1, 1), (0, -2), (-2, 0),
           (-1, -2), (-2, -1), (-2, 1), (-2, 2), (0, -3), (-3, 0),
           (-2, -2), (-1, -3), (-3, 1), (-3, -1))  # fmt: skip
#: window sides of the previous channels (c−1, c−2, c−3) whose neighbourhood is an input
PREV_WINDOWS = (5, 3, 3)
PREV_CHANNELS = len(PREV_WINDOWS)
CHANNEL_SLOTS = 5  # one-hot channel index: 0, 1, 2, 3, ≥ 4
N_CAUSAL = len(OFFSETS)
N_PREV = sum(k * k for k in PREV_WINDOWS)
N_INPUTS = N_CAUSAL + N_PREV + CHANNEL_SLOTS + 1  # + quantizer step
FP_BITS = 10  # fixed point of inputs and activations (1.0 = 1024)
FP = 1 << FP_BITS
W_BITS = 12  # fixed point of the weights
SIGMA_STEPS = 8  # log2-scale grid: 1/8 octave
SIGMA_MIN_K = -40  # σ = 2**(-5) symbols …
SIGMA_MAX_K = 64  # … up to 2**8 symbols
COUNT_BITS = 20  # probabilities are rounded to counts of 2**-20 (+1 so none is zero)
#: where the weights live (part of the format: `WEIGHTS_SHA256`)
WEIGHTS_FILE = Path(__file__).resolve().parent.parent / "zoo" / "entropy_learned.safetensors"
WEIGHTS_SHA256 = "fd95ec621b85ea35d80bb74e7c9bea3850ad88eb091dd573f70fc6f708008920"
#: encoder batches hold at most this many positions (bounds the (n, levels) probability matrix)
ENCODE_CHUNK = 1 << 15

#: 2**(1/8) as the nearest double; the σ table is built by sequential IEEE multiplication
_R8 = 1.0905077326652577


@functools.lru_cache(maxsize=1)
def sigma_table() -> np.ndarray:
    """σ in symbols for k = SIGMA_MIN_K … SIGMA_MAX_K (deterministic: repeated products)."""
    up = [1.0]
    for _ in range(SIGMA_MAX_K):
        up.append(up[-1] * _R8)
    down = [1.0]
    for _ in range(-SIGMA_MIN_K):
        down.append(down[-1] / _R8)
    table = np.array(down[:0:-1] + up, dtype=np.float64)
    table.setflags(write=False)
    return table


# ---- weights ------------------------------------------------------------------------------------
class Weights:
    """Integer weights of the MLP: w1 (N_INPUTS, H), w2 (H, H), w3 (H, 2), biases at FP+W bits."""

    def __init__(self, tensors: dict[str, np.ndarray]) -> None:
        try:
            self.w1 = np.asarray(tensors["w1"], dtype=np.float64)
            self.b1 = np.asarray(tensors["b1"], dtype=np.float64)
            self.w2 = np.asarray(tensors["w2"], dtype=np.float64)
            self.b2 = np.asarray(tensors["b2"], dtype=np.float64)
            self.w3 = np.asarray(tensors["w3"], dtype=np.float64)
            self.b3 = np.asarray(tensors["b3"], dtype=np.float64)
        except KeyError as exc:
            raise ValueError(f"entropy model weights lack {exc}") from exc
        hidden = self.w1.shape[1]
        shapes = {"w1": (N_INPUTS, hidden), "b1": (hidden,), "w2": (hidden, hidden), "b2": (hidden,),
                  "w3": (hidden, 2), "b3": (2,)}
        for name, shape in shapes.items():
            arr = getattr(self, name)
            if arr.shape != shape:
                raise ValueError(f"entropy model weight {name} has shape {arr.shape}, expected {shape}")
            if not np.all(np.isfinite(arr)) or np.any(arr != np.rint(arr)) or np.abs(arr).max() > 2**30:
                raise ValueError(f"entropy model weight {name} is not a bounded integer array")
        self.w1_causal = np.ascontiguousarray(self.w1[:N_CAUSAL])
        self.w1_rest = np.ascontiguousarray(self.w1[N_CAUSAL:])

    @classmethod
    def from_float(cls, tensors: dict[str, np.ndarray]) -> Weights:
        """Quantize float weights (training side): weights at W_BITS, biases at FP_BITS + W_BITS."""
        out = {}
        for name, arr in tensors.items():
            scale = 2.0 ** (W_BITS + (FP_BITS if name.startswith("b") else 0))
            out[name] = np.rint(np.asarray(arr, dtype=np.float64) * scale)
        return cls(out)

    def digest(self) -> str:
        """sha256 over the tensors' names, shapes and little-endian int32 values (sorted by name)."""
        h = hashlib.sha256()
        for name, arr in sorted(self.tensors().items()):
            h.update(f"{name}:{arr.shape}:".encode())
            h.update(arr.astype("<i4").tobytes())
        return h.hexdigest()

    def tensors(self) -> dict[str, np.ndarray]:
        # contiguous: safetensors writes a transposed view's buffer as is
        names = ("w1", "b1", "w2", "b2", "w3", "b3")
        return {n: np.ascontiguousarray(getattr(self, n), dtype=np.int32) for n in names}


@functools.lru_cache(maxsize=1)
def load_weights(path: str | None = None, check_hash: bool = True) -> Weights:
    """The shipped weights (their values are sha256-checked: they are part of the format)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    p = Path(path) if path else WEIGHTS_FILE
    try:
        wt = Weights(load(p.read_bytes()))
    except SafetensorError as exc:
        raise ValueError(f"{p} is not a safetensors file: {exc}") from exc
    if check_hash and wt.digest() != WEIGHTS_SHA256:
        raise ValueError(f"{p} holds other weights than the ones coder {CODER_ID} was defined with")
    return wt


def _weights_or_none() -> Weights | None:
    try:
        return load_weights()
    except (OSError, ValueError):
        return None


# ---- geometry and inputs ------------------------------------------------------------------------
#: planes up to this many positions keep their geometry cached (~240 bytes per position)
_CACHE_POSITIONS = 1 << 16


def geometry(h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
    """(causal neighbour map (h*w, 16), wavefront order, wavefront bounds, windows per `PREV_WINDOWS`)."""
    if h * w <= _CACHE_POSITIONS:
        return _cached_geometry(h, w)
    return _build_geometry(h, w)


@functools.lru_cache(maxsize=8)
def _cached_geometry(h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
    return _build_geometry(h, w)


def _build_geometry(h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
    """See `geometry`; index maps are int32 (a plane has < 2**31 positions: `MAX_SYMBOLS`).

    Indices point into a plane of h*w + 1 values whose last one is 0 (the middle of the range):
    a neighbour outside the plane or not yet decoded falls back to W, then N, then that sentinel.
    """
    i, j = np.mgrid[0:h, 0:w]
    t = 2 * i + j
    sentinel = h * w
    raw = []
    for di, dj in OFFSETS:
        ii, jj = i + di, j + dj
        ok = (ii >= 0) & (ii < h) & (jj >= 0) & (jj < w)
        raw.append(np.where(ok, np.clip(ii, 0, h - 1) * w + np.clip(jj, 0, w - 1), -1))
    nb = neighbour_map(raw, sentinel)
    flat_t = t.ravel()
    order = np.argsort(flat_t, kind="stable").astype(np.intp)
    bounds = np.concatenate([[0], np.cumsum(np.bincount(flat_t))]).astype(np.intp)
    windows = []
    for side in PREV_WINDOWS:
        r = side // 2
        around = []
        for di in range(-r, r + 1):
            for dj in range(-r, r + 1):
                around.append((np.clip(i + di, 0, h - 1) * w + np.clip(j + dj, 0, w - 1)).ravel())
        windows.append(np.stack(around, axis=1).astype(np.int32))
    for arr in (nb, order, bounds, *windows):
        arr.setflags(write=False)
    return nb, order, bounds, windows


def to_fixed(symbols: np.ndarray, levels: int) -> np.ndarray:
    """Symbols → round(FP·(2s − (L−1))/(L−1)) as float64 (integer arithmetic, exact)."""
    lm1 = int(levels) - 1
    v = 2 * np.asarray(symbols, dtype=np.int64) - lm1
    return ((2 * FP * v + lm1) // (2 * lm1)).astype(np.float64)


def rest_inputs(planes: list[np.ndarray], c: int, levels: int, windows: list[np.ndarray],
                pos: np.ndarray | None = None) -> np.ndarray:
    """(n, N_INPUTS − N_CAUSAL) non-causal inputs of channel c at ``pos`` (default: every position):
    previous channels' windows (clamped at the borders), channel one-hot, quantizer step.

    ``planes``: fixed-point values (`to_fixed`) of the channels decoded so far (h*w each).
    """
    n = windows[0].shape[0] if pos is None else len(pos)
    out = np.zeros((n, N_INPUTS - N_CAUSAL), dtype=np.float64)
    col = 0
    for back, win in enumerate(windows, start=1):
        if c - back >= 0:
            out[:, col : col + win.shape[1]] = planes[c - back][win if pos is None else win[pos]]
        col += win.shape[1]
    out[:, N_PREV + min(c, CHANNEL_SLOTS - 1)] = FP
    out[:, -1] = (2 * FP * 2 + (levels - 1)) // (2 * (levels - 1))  # round(2·FP/(L−1))
    return out


def _shift(x: np.ndarray) -> np.ndarray:
    return np.floor(x * (1.0 / (1 << W_BITS)))


def hidden_base(wt: Weights, rest: np.ndarray) -> np.ndarray:
    """First-layer pre-activation from the non-causal inputs (+ bias), integer-valued."""
    return rest @ wt.w1_rest + wt.b1


def head(wt: Weights, causal: np.ndarray, base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean in fixed point, σ index) from causal inputs (n, 12) and `hidden_base` rows."""
    h1 = np.maximum(_shift(causal @ wt.w1_causal + base), 0.0)
    h2 = np.maximum(_shift(h1 @ wt.w2 + wt.b2), 0.0)
    out = _shift(h2 @ wt.w3 + wt.b3)
    mu = np.clip(out[:, 0], -2 * FP, 2 * FP)
    k = np.floor(out[:, 1] * (SIGMA_STEPS / FP))
    k = np.clip(k, SIGMA_MIN_K, SIGMA_MAX_K).astype(np.intp) - SIGMA_MIN_K
    return mu, k


def cdf(x: np.ndarray) -> np.ndarray:
    """F(x) = ½ + ½·x/(1 + x⁴)^¼: a smooth unimodal CDF with x⁻⁴ tails, algebraic (+, ×, ÷, sqrt
    only, so every machine rounds it identically). Measured on held-out training latents it fits
    ~2 % better than Student's t₂ (x⁻² tails) and ~1 % better than the x⁻⁸ member of the family."""
    x2 = x * x
    return 0.5 + 0.5 * x / np.sqrt(np.sqrt(1.0 + x2 * x2))


def counts(mu: np.ndarray, k: np.ndarray, levels: int) -> np.ndarray:
    """(n, levels) integer-valued float64 counts of the discretized `cdf` per row."""
    lm1 = levels - 1
    mu_sym = (mu + FP) * lm1 * (1.0 / (2 * FP))  # exact: integer times a power of two
    sigma = sigma_table()[k]
    edges = np.arange(lm1, dtype=np.float64) + 0.5
    inner = cdf((edges[None, :] - mu_sym[:, None]) / sigma[:, None])
    n = len(mu)
    full = np.concatenate([np.zeros((n, 1)), inner, np.ones((n, 1))], axis=1)
    pmf = np.diff(full, axis=1)
    return np.floor(np.maximum(pmf, 0.0) * float(1 << COUNT_BITS)) + 1.0


def _family():
    import constriction

    return constriction.stream.model.Categorical(perfect=False)


# ---- the coder ----------------------------------------------------------------------------------
class LearnedCoder:
    coder_id = CODER_ID
    name = NAME

    def __init__(self, weights: Weights | None = None) -> None:
        self._weights = weights

    def weights(self) -> Weights | None:
        return self._weights if self._weights is not None else _weights_or_none()

    def encode(self, symbols: np.ndarray, levels: int) -> bytes:
        import constriction

        wt = self.weights()
        if wt is None:
            raise CoderUnsuitable("learned entropy model weights are not available")
        c_total, h, w = check_shape(symbols.shape, levels)
        nb, order, _, windows = geometry(h, w)
        encoder = constriction.stream.queue.RangeEncoder()
        family = _family()
        planes: list[np.ndarray] = []
        for c in range(c_total):
            s = symbols[c].reshape(-1).astype(np.int64)
            plane = np.concatenate([to_fixed(s, levels), [0.0]])
            for start in range(0, h * w, ENCODE_CHUNK):
                pos = order[start : start + ENCODE_CHUNK]
                base = hidden_base(wt, rest_inputs(planes, c, levels, windows, pos))
                mu, k = head(wt, plane[nb[pos]], base)
                encoder.encode(s[pos].astype(np.int32), family, counts(mu, k, levels))
            planes.append(plane[:-1])
        return encoder.get_compressed().astype("<u4").tobytes().rstrip(b"\0")

    def decode(self, payload: bytes, shape: tuple[int, int, int], levels: int) -> np.ndarray:
        import constriction

        wt = self.weights()
        if wt is None:
            raise BitstreamError("this build lacks the learned entropy model's weights")
        c_total, h, w = check_shape(shape, levels)
        if len(payload) > 4 * c_total * h * w + 16:  # far above 8 bits/symbol: not from this coder
            raise BitstreamError(f"learned payload of {len(payload)} bytes is too long for {c_total}x{h}x{w}")
        padded = payload + b"\0" * (-len(payload) % 4)
        decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(padded, dtype="<u4").astype(np.uint32))
        family = _family()
        nb, order, bounds, windows = geometry(h, w)
        lm1 = levels - 1
        table = to_fixed(np.arange(levels), levels)
        out = np.empty((c_total, h * w), dtype=np.uint16)
        planes: list[np.ndarray] = []
        try:
            for c in range(c_total):
                plane = np.zeros(h * w + 1, dtype=np.float64)
                block_start = block_end = 0  # the first layer's non-causal part, a block at a time
                for t in range(len(bounds) - 1):
                    if bounds[t + 1] > block_end:
                        block_start = int(bounds[t])
                        last = np.searchsorted(bounds, block_start + ENCODE_CHUNK, "right") - 1
                        block_end = max(int(bounds[last]), int(bounds[t + 1]))
                        block = order[block_start:block_end]
                        base = hidden_base(wt, rest_inputs(planes, c, levels, windows, block))
                    pos = order[bounds[t] : bounds[t + 1]]
                    rows = base[bounds[t] - block_start : bounds[t + 1] - block_start]
                    mu, k = head(wt, plane[nb[pos]], rows)
                    s = decoder.decode(family, counts(mu, k, levels)).astype(np.intp)
                    if s.size and (s.min() < 0 or s.max() > lm1):
                        raise BitstreamError("learned payload decoded a symbol out of range")
                    plane[pos] = table[s]
                    out[c, pos] = s
                planes.append(plane[:-1])
        except (ValueError, RuntimeError, AssertionError) as exc:
            raise BitstreamError(f"corrupt learned payload: {exc}") from exc
        if not decoder.maybe_exhausted():
            raise BitstreamError("learned payload has data left after the last symbol")
        return out.reshape(c_total, h, w)
