"""Context-adaptive range coding of latent symbols (constriction's range coder).

The model, in short (FORMAT.md has the normative description):

- Order: channel by channel; inside a channel, wavefront by wavefront (``t = 2*i + j``), so that
  every position of one wavefront already has its causal neighbours W, WW, WWW, N, NN, NW, NE, …
  decoded. One wavefront is one vectorised step (one constriction call), not one Python step per
  symbol: a 64×96 plane is 222 steps, a 500×750 plane 1,748.
- Prediction: a linear predictor over 12 causal neighbours of the same channel plus the co-located
  symbols of up to 3 previously coded channels (and the 4 neighbours of the previous channel's
  co-located symbol). Its weights are fitted online by ridge-regularised least squares on what has
  already been coded in this channel: no side information, and it adapts to any autoencoder.
- Conditioning: the prediction's integer part shifts an adaptive frequency table of residuals; the
  table is chosen by the prediction's fractional part (4 phases) and a local-activity bucket
  (mean absolute deviation of the nearest 6 neighbours; 4 buckets). Tables start from a
  heavy-tailed prior and count every coded symbol.

Determinism: encoder and decoder must compute bit-identical probabilities on any machine. All model
state is integer (numpy int64: counts, least-squares moments, fixed-point weights, predictions);
the only floating-point step is the small ridge solve, done with element-wise numpy operations and
sequential Python arithmetic (IEEE-754 correctly rounded, no BLAS/LAPACK, no reductions whose order
could vary), whose result is rounded to fixed point. Probabilities reach constriction as exact
integer counts.
"""

from __future__ import annotations

import functools

import numpy as np

from codec.entropy.base import check_shape
from codec.errors import BitstreamError

CODER_ID = 1
NAME = "ctx"

# ---- model constants: they define the bitstream, change them only with a new coder id ----------
#: causal neighbour offsets (di, dj); the first 6 also define the activity context.
OFFSETS = ((0, -1), (-1, 0), (-1, -1), (-1, 1), (0, -2), (-2, 0),
           (-1, -2), (-2, -1), (-2, 1), (0, -3), (-1, 2), (-2, 2))  # fmt: skip
ACT_NEIGHBOURS = 6
#: activity thresholds (mean abs deviation, in symbols at 8 levels; scaled by (levels-1)/7)
ACT_THRESHOLDS = (1, 2, 4)
#: co-located symbols of this many previous channels are predictor inputs
PREV_CHANNELS = 3
PHASES = 4  # fractional phases of the prediction
WEIGHT_ONE = 1 << 14  # fixed-point 1.0 of the predictor weights
WEIGHT_MAX = 8 * WEIGHT_ONE
RIDGE = 400  # ridge strength in (centred, doubled) symbol² units at 8 levels
PRIOR_WEIGHT = 7  # 0.7 of prior mass spread over the spatial neighbours (tenths)
INCREMENT = 32  # count added per coded symbol
PRIOR_MASS = 16 * INCREMENT  # total prior count of a table at 8 levels
#: prior spread (tenths of a symbol at 8 levels) per activity bucket
PRIOR_SPREAD = (4, 8, 15, 25)
MIN_UPDATE = 32  # refit the predictor after at least this many new samples …
UPDATE_FRACTION = 8  # … and at least 1/this of the samples seen so far

_NA = len(ACT_THRESHOLDS) + 1


def _family():  # constriction is imported lazily: `import codec.entropy` stays light
    import constriction

    return constriction.stream.model.Categorical(perfect=False)


#: planes up to this many positions keep their geometry cached (a 4 MP image); larger ones
#: recompute it (~0.1 s per megaposition) instead of pinning ~70 bytes per position in memory
_CACHE_POSITIONS = 1 << 16


def _geometry(h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if h * w <= _CACHE_POSITIONS:
        return _cached_geometry(h, w)
    return _build_geometry(h, w)


@functools.lru_cache(maxsize=8)
def _cached_geometry(h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return _build_geometry(h, w)


def neighbour_map(raw: list[np.ndarray], sentinel: int) -> np.ndarray:
    """(h*w, len(raw)) int32 neighbour indices from per-offset maps whose unusable entries are -1
    (``raw[0]`` = W, ``raw[1]`` = N): an unusable neighbour falls back to W, then N, then
    ``sentinel``. Shared by the context coder and the learned coder (`codec.entropy.learned`)."""
    west = np.where(raw[0] >= 0, raw[0], np.where(raw[1] >= 0, raw[1], sentinel))
    north = np.where(raw[1] >= 0, raw[1], west)
    maps = [west, north] + [np.where(r >= 0, r, north) for r in raw[2:]]
    return np.stack([m.ravel() for m in maps], axis=1).astype(np.int32)


def _build_geometry(h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(neighbour index map (h*w, 12), wavefront order, wavefront bounds, prev-channel map (h*w, 5)).

    Neighbour indices point into a plane of h*w + 1 entries whose last entry is a constant
    sentinel. A neighbour that is outside the plane or not yet decoded falls back to W, then N,
    then the sentinel.
    """
    i, j = np.mgrid[0:h, 0:w]
    t = 2 * i + j
    sentinel = h * w
    raw = []
    for di, dj in OFFSETS:
        ii = np.clip(i + di, 0, h - 1)
        jj = np.clip(j + dj, 0, w - 1)
        ok = (2 * ii + jj) < t
        raw.append(np.where(ok, ii * w + jj, -1))
    nb = neighbour_map(raw, sentinel)

    flat_t = t.ravel()
    order = np.argsort(flat_t, kind="stable").astype(np.int32)
    bounds = np.concatenate([[0], np.cumsum(np.bincount(flat_t))]).astype(np.intp)

    # previous channel: co-located, N, S, W, E (clamped at the borders; fully decoded already)
    idx = (i * w + j).ravel()
    up = (np.clip(i - 1, 0, h - 1) * w + j).ravel()
    down = (np.clip(i + 1, 0, h - 1) * w + j).ravel()
    left = (i * w + np.clip(j - 1, 0, w - 1)).ravel()
    right = (i * w + np.clip(j + 1, 0, w - 1)).ravel()
    prev = np.stack([idx, up, down, left, right], axis=1).astype(np.int32)
    for arr in (nb, order, bounds, prev):
        arr.setflags(write=False)
    return nb, order, bounds, prev


@functools.lru_cache(maxsize=64)
def _prior_table(levels: int) -> np.ndarray:
    """Initial counts, shape (activity buckets * phases, 2*levels - 1), from exact integer maths."""
    span = 2 * levels - 1
    mass = PRIOR_MASS * max(7, levels - 1) // 7
    rows = []
    for spread in PRIOR_SPREAD:
        d = 2 * PHASES * spread * (levels - 1)
        for phase in range(PHASES):
            weights = []
            for k in range(span):
                r = k - (levels - 1)
                x2 = abs(2 * PHASES * r - (2 * phase + 1))
                weights.append((1 << 40) * d**3 // (d + 70 * x2) ** 3)
            total = sum(weights)
            rows.append([max(1, wt * mass // total) for wt in weights])
    table = np.array(rows, dtype=np.int64)
    table.setflags(write=False)
    return table


def _solve_spd(a: np.ndarray, b: np.ndarray) -> list[float]:
    """Solve a small symmetric positive definite system reproducibly (see module docstring)."""
    k = a.shape[0]
    m = np.concatenate([a, b[:, None]], axis=1)
    for p in range(k - 1):
        f = m[p + 1 :, p] / m[p, p]
        m[p + 1 :, p:] -= np.multiply.outer(f, m[p, p:])
    x = [0.0] * k
    rows = m.tolist()
    for p in range(k - 1, -1, -1):
        s = rows[p][k]
        for q in range(p + 1, k):
            s -= rows[p][q] * x[q]
        x[p] = s / rows[p][p]
    return x


class _ChannelModel:
    """Adaptive state of one channel; ``step`` gives the (n, levels) count matrix of one wavefront."""

    def __init__(self, levels: int, prev_feats: np.ndarray | None) -> None:
        self.levels = levels
        self.span = 2 * levels - 1
        self.counts = _prior_table(levels).copy().reshape(-1)
        self.prev = prev_feats
        n_prev = 0 if prev_feats is None else prev_feats.shape[1]
        self.k = len(OFFSETS) + n_prev + 1
        lm1 = levels - 1
        self.ridge = max(1, RIDGE * lm1 * lm1 // 49)
        # least-squares moments: integer-valued float64 (exact below 2**53, see `features`)
        self.a = np.zeros((self.k, self.k), dtype=np.float64)
        self.b = np.zeros(self.k, dtype=np.float64)
        w0 = [PRIOR_WEIGHT / (10 * len(OFFSETS))] * len(OFFSETS) + [0.0] * n_prev + [0.0]
        self.w0 = np.array(w0, dtype=np.float64)
        self._set_weights(np.rint(self.w0 * WEIGHT_ONE))
        self.seen = 0
        self.next_fit = MIN_UPDATE
        self.thresholds = np.array([12 * th * lm1 for th in ACT_THRESHOLDS], dtype=np.float64)
        self.cols = np.arange(levels, dtype=np.intp)
        self.ones = np.ones((0, 1))
        self.mu_offset = float(lm1 * WEIGHT_ONE)
        self.mu_scale = PHASES / (2 * WEIGHT_ONE)  # a power of two
        self.m_max = float(PHASES * lm1)
        # act = 7 * sum_k |6 x_k - sum_j x_j| over the nearest 6 neighbours
        self.dev_matrix = 7.0 * (ACT_NEIGHBOURS * np.eye(ACT_NEIGHBOURS) - 1.0)
        self.ones6 = np.ones(ACT_NEIGHBOURS)

    def reserve(self, n: int) -> None:
        if self.ones.shape[0] < n:
            self.ones = np.ones((n, 1))

    def features(self, neigh: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """(n, k) float64 holding integers: centred doubled neighbour symbols, previous channels, bias.

        ``neigh`` is already centred and doubled (2*symbol - (levels-1)). Float64 so that the
        products below run through BLAS: every value, product and partial sum is an integer far
        below 2**53, hence exact whatever the summation order or instruction set.
        """
        if self.prev is None:
            return np.concatenate([neigh, self.ones[: len(pos)]], axis=1)
        return np.concatenate([neigh, self.prev[pos], self.ones[: len(pos)]], axis=1)

    def context(self, x: np.ndarray) -> np.ndarray:
        """Base index into ``counts`` per row: table offset + (levels-1) - floor(prediction).

        Float arithmetic on integers with power-of-two scalings only: exact.
        """
        m = np.floor((x @ self.weights_f + self.mu_offset) * self.mu_scale)
        np.maximum(m, 0.0, out=m)
        np.minimum(m, self.m_max, out=m)
        floor = np.floor(m * (1.0 / PHASES))
        phase = m - PHASES * floor
        act = np.abs(x[:, :ACT_NEIGHBOURS] @ self.dev_matrix) @ self.ones6
        bucket = np.searchsorted(self.thresholds, act, side="right")
        base = bucket * (PHASES * self.span) + (phase * self.span + (self.levels - 1) - floor)
        return base.astype(np.intp)

    def probabilities(self, base: np.ndarray) -> np.ndarray:
        return self.counts[base[:, None] + self.cols[None, :]].astype(np.float64)

    def update(self, base: np.ndarray, x: np.ndarray, symbols: np.ndarray) -> None:
        np.add.at(self.counts, base + symbols, INCREMENT)
        y = (2 * symbols - (self.levels - 1)).astype(np.float64)
        self.a += x.T @ x
        self.b += y @ x
        self.seen += len(symbols)
        if self.seen >= self.next_fit:
            self._refit()
            self.next_fit = self.seen + max(MIN_UPDATE, self.seen // UPDATE_FRACTION)

    def _refit(self) -> None:
        a = self.a.copy()
        diag = np.full(self.k, float(self.ridge))
        diag[-1] = 1.0
        a[np.arange(self.k), np.arange(self.k)] += diag
        rhs = self.b + diag * self.w0
        sol = np.array(_solve_spd(a, rhs), dtype=np.float64)
        self._set_weights(np.clip(np.rint(sol * WEIGHT_ONE), -WEIGHT_MAX, WEIGHT_MAX))

    def _set_weights(self, weights: np.ndarray) -> None:
        self.weights_f = np.ascontiguousarray(weights, dtype=np.float64)


def _prev_features(done: list[np.ndarray], c: int, prev_map: np.ndarray, levels: int) -> np.ndarray | None:
    """Inputs from already coded channels: 5-neighbourhood of c-1, co-located of c-2, c-3."""
    if c == 0:
        return None
    lm1 = levels - 1
    cols = [2 * done[c - 1][prev_map] - lm1]
    for back in range(2, PREV_CHANNELS + 1):
        if c - back >= 0:
            cols.append((2 * done[c - back][prev_map[:, 0]] - lm1)[:, None])
    # small integers: float32 holds them exactly and halves the memory
    return np.ascontiguousarray(np.concatenate(cols, axis=1), dtype=np.float32)


def _run(shape: tuple[int, int, int], levels: int, step) -> np.ndarray:
    """Drive the model over all wavefronts; ``step(model, base, probs, pos)`` → symbols (int64)."""
    c_total, h, w = shape
    nb, order, bounds, prev_map = _geometry(h, w)
    out = np.empty((c_total, h * w), dtype=np.int64)
    done: list[np.ndarray] = []
    lm1 = levels - 1
    # the plane holds 2*symbol - (levels-1); the sentinel is the middle symbol
    sentinel_value = float(2 * (lm1 // 2) - lm1)
    n_waves = len(bounds) - 1
    widest = int(np.diff(bounds).max())
    for c in range(c_total):
        plane = np.full(h * w + 1, sentinel_value, dtype=np.float64)
        model = _ChannelModel(levels, _prev_features(done, c, prev_map, levels))
        model.reserve(widest)
        for t in range(n_waves):
            pos = order[bounds[t] : bounds[t + 1]]
            x = model.features(plane[nb[pos]], pos)
            base = model.context(x)
            symbols = step(base, model.probabilities(base), pos, c)
            plane[pos] = 2 * symbols - lm1
            model.update(base, x, symbols)
        out[c] = ((plane[:-1] + lm1) // 2).astype(np.int64)
        done.append(out[c])
    return out.reshape(shape)


class ContextCoder:
    coder_id = CODER_ID
    name = NAME

    def encode(self, symbols: np.ndarray, levels: int) -> bytes:
        import constriction

        c, h, w = check_shape(symbols.shape, levels)
        src = symbols.reshape(c, h * w).astype(np.int64)
        encoder = constriction.stream.queue.RangeEncoder()
        family = _family()

        def step(base, probs, pos, ch):
            s = src[ch, pos]
            encoder.encode(s.astype(np.int32), family, probs)
            return s

        _run((c, h, w), levels, step)
        data = encoder.get_compressed().astype("<u4").tobytes()
        return data.rstrip(b"\0")

    def decode(self, payload: bytes, shape: tuple[int, int, int], levels: int) -> np.ndarray:
        import constriction

        c, h, w = check_shape(shape, levels)
        if len(payload) > 4 * c * h * w + 16:  # far above 8 bits/symbol: not from this coder
            raise BitstreamError(f"ctx payload of {len(payload)} bytes is too long for {c}x{h}x{w}")
        padded = payload + b"\0" * (-len(payload) % 4)
        words = np.frombuffer(padded, dtype="<u4").astype(np.uint32)
        decoder = constriction.stream.queue.RangeDecoder(words)
        family = _family()

        def step(base, probs, pos, ch):
            return decoder.decode(family, probs).astype(np.int64)

        try:
            out = _run((c, h, w), levels, step)
        except (ValueError, RuntimeError, AssertionError) as exc:
            raise BitstreamError(f"corrupt ctx payload: {exc}") from exc
        if not decoder.maybe_exhausted():
            raise BitstreamError("ctx payload has data left after the last symbol")
        return out.astype(np.uint16)
