"""Latent quantizer: ``levels`` uniform steps per channel over a per-channel range, optionally in a
companded domain.

Semantics (the bitstream stores exactly these parameters, see FORMAT.md):

- ``domain="raw"``: ``u = z``. ``domain="tanh"``: ``u = 3·tanh(z/3)`` — the soft clamp every TAESD
  decoder applies first, so the quantization error in ``u`` is exactly the error the decoder sees,
  and outliers beyond ±3 cost no range. Dequantization maps back with ``z = 3·atanh(u/3)``, so the
  decoder's clamp reproduces the reconstruction point exactly.
- ``step_c = (hi_c - lo_c) / (levels - 1)``; symbol ``s = clip(round((u - lo_c) / step_c), 0, levels-1)``;
  reconstruction ``u = lo_c + s·step_c`` (both range ends are reconstruction points).
- ``lo``/``hi`` are float16 values (the bitstream stores them as float16; `QuantParams` rounds them
  on construction so the encoder quantizes with exactly what the decoder will read).
- Optional reconstruction offsets (``offsets``): per channel and symbol an integer ``o`` in
  [-8, 7]; the symbol then reconstructs to ``lo_c + (s + o/16)·step_c`` instead of the grid point
  (the encoder sets them to the per-image centroids of each bin, `with_offsets`). 4 bits each in
  the bitstream. Decisions (``quantize``) stay nearest-grid-point.

numpy only at import time; `quantize_ste` imports torch when called.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

MIN_LEVELS = 2
MAX_LEVELS = 256
DOMAINS = ("raw", "tanh")
#: TAESD soft clamp: u = CLAMP * tanh(z / CLAMP)
CLAMP = 3.0
#: |u| limit of a tanh-domain range: atanh stays finite (float16-exact; 3*atanh(2.96875/3) ≈ 7.7)
TANH_LIMIT = 2.96875
#: reconstruction offsets: integers in [OFFSET_MIN, OFFSET_MAX], in 1/OFFSET_UNIT of a step
OFFSET_UNIT = 16
OFFSET_MIN, OFFSET_MAX = -8, 7
#: |u| limit of a tanh-domain reconstruction point moved by an offset (atanh must stay finite)
TANH_POINT_LIMIT = 2.999
#: largest |lo|, |hi| accepted (float16 is finite up to 65504; latents of known models stay < 100)
RANGE_LIMIT = 1024.0


def _f16(values: Sequence[float]) -> tuple[float, ...]:
    return tuple(float(v) for v in np.asarray(values, dtype=np.float64).astype(np.float16))


@dataclass(frozen=True)
class QuantParams:
    """Quantizer settings of one latent: levels, per-channel range [lo, hi], domain."""

    levels: int
    lo: tuple[float, ...]
    hi: tuple[float, ...]
    domain: str = "raw"
    #: per channel, ``levels`` reconstruction offsets in sixteenths of a step, each in [-8, 7]
    offsets: tuple[tuple[int, ...], ...] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.levels, bool) or not isinstance(self.levels, (int, np.integer)):
            raise ValueError(f"levels must be an integer, got {self.levels!r}")
        if not MIN_LEVELS <= int(self.levels) <= MAX_LEVELS:
            raise ValueError(f"levels must be in [{MIN_LEVELS}, {MAX_LEVELS}], got {self.levels}")
        if self.domain not in DOMAINS:
            raise ValueError(f"domain must be one of {DOMAINS}, got {self.domain!r}")
        lo, hi = _f16(np.ravel(self.lo)), _f16(np.ravel(self.hi))
        if len(lo) != len(hi) or not lo:
            raise ValueError(f"lo and hi need one value per channel, got {len(lo)} and {len(hi)}")
        limit = TANH_LIMIT if self.domain == "tanh" else RANGE_LIMIT
        for a, b in zip(lo, hi, strict=True):
            if not (np.isfinite(a) and np.isfinite(b) and -limit <= a < b <= limit):
                raise ValueError(f"invalid quantizer range [{a}, {b}] (need -{limit} <= lo < hi <= {limit})")
        object.__setattr__(self, "levels", int(self.levels))
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)
        if self.offsets is not None:
            table = np.asarray(self.offsets)
            if table.shape != (len(lo), self.levels) or not np.issubdtype(table.dtype, np.integer):
                raise ValueError(f"offsets must be {len(lo)}x{self.levels} integers, got {table.shape}")
            if table.min() < OFFSET_MIN or table.max() > OFFSET_MAX:
                raise ValueError(f"offsets must lie in [{OFFSET_MIN}, {OFFSET_MAX}]")
            object.__setattr__(self, "offsets", tuple(tuple(int(v) for v in row) for row in table))

    @property
    def channels(self) -> int:
        return len(self.lo)

    def step(self) -> np.ndarray:
        """Per-channel step (C,) float64 in the quantizer domain."""
        return (np.array(self.hi) - np.array(self.lo)) / (self.levels - 1)

    def points(self) -> np.ndarray:
        """(C, levels) float64 reconstruction points in the quantizer domain."""
        grid = np.arange(self.levels, dtype=np.float64)[None, :]
        if self.offsets is not None:
            grid = grid + np.asarray(self.offsets, dtype=np.float64) / OFFSET_UNIT
        pts = np.array(self.lo)[:, None] + grid * self.step()[:, None]
        if self.domain == "tanh":
            pts = np.clip(pts, -TANH_POINT_LIMIT, TANH_POINT_LIMIT)
        return pts


def compand(z: np.ndarray, domain: str) -> np.ndarray:
    """Latent → quantizer domain."""
    if domain == "tanh":
        return CLAMP * np.tanh(np.asarray(z, dtype=np.float64) / CLAMP)
    return np.asarray(z, dtype=np.float64)


def expand(u: np.ndarray, domain: str) -> np.ndarray:
    """Quantizer domain → latent (inverse of `compand` on the valid range)."""
    if domain == "tanh":
        return CLAMP * np.arctanh(np.asarray(u, dtype=np.float64) / CLAMP)
    return np.asarray(u, dtype=np.float64)


def _columns(qp: QuantParams, channels: int) -> tuple[np.ndarray, np.ndarray]:
    if qp.channels != channels:
        raise ValueError(f"quantizer has {qp.channels} channels, latent has {channels}")
    lo = np.array(qp.lo, dtype=np.float64)[:, None, None]
    return lo, qp.step()[:, None, None]


def quantize(z: np.ndarray, qp: QuantParams) -> np.ndarray:
    """(C, h, w) float latent → (C, h, w) uint16 symbols in [0, levels)."""
    z = np.asarray(z)
    if z.ndim != 3:
        raise ValueError(f"latent must be (C, h, w), got shape {z.shape}")
    lo, step = _columns(qp, z.shape[0])
    u = compand(z, qp.domain)
    t = np.rint((u - lo) / step)
    t = np.nan_to_num(t, nan=0.0)
    return np.clip(t, 0, qp.levels - 1).astype(np.uint16)


def dequantize(symbols: np.ndarray, qp: QuantParams) -> np.ndarray:
    """(C, h, w) symbols → (C, h, w) float32 latent (reconstruction points)."""
    symbols = np.asarray(symbols)
    if symbols.ndim != 3:
        raise ValueError(f"symbols must be (C, h, w), got shape {symbols.shape}")
    if qp.channels != symbols.shape[0]:
        raise ValueError(f"quantizer has {qp.channels} channels, symbols have {symbols.shape[0]}")
    points = expand(qp.points(), qp.domain).astype(np.float32)  # (C, levels)
    idx = np.minimum(symbols, qp.levels - 1).astype(np.intp)
    return np.take_along_axis(points, idx.reshape(qp.channels, -1), axis=1).reshape(symbols.shape)


def reconstruction_points(qp: QuantParams) -> np.ndarray:
    """(C, levels) float32 latent values each symbol decodes to."""
    return expand(qp.points(), qp.domain).astype(np.float32)


def quantize_ste(z: torch.Tensor, qp: QuantParams) -> torch.Tensor:
    """Quantize–dequantize a (N, C, h, w) or (C, h, w) tensor with a straight-through gradient.

    Forward: exactly ``dequantize(quantize(z))`` (up to float32 rounding). Backward: the gradient
    of the companding path with the rounding (and the clip to the range) treated as identity
    inside the range; outside the range the clipped value gets no gradient from rounding.
    """
    import torch

    channels = z.shape[-3]
    if qp.channels != channels:
        raise ValueError(f"quantizer has {qp.channels} channels, latent has {channels}")
    shape = (channels, 1, 1)
    lo = torch.tensor(qp.lo, dtype=z.dtype, device=z.device).view(shape)
    hi = torch.tensor(qp.hi, dtype=z.dtype, device=z.device).view(shape)
    step = (hi - lo) / (qp.levels - 1)
    u = CLAMP * torch.tanh(z / CLAMP) if qp.domain == "tanh" else z
    uc = torch.maximum(torch.minimum(u, hi), lo)
    if qp.offsets is None:
        uq = torch.round((uc - lo) / step) * step + lo
    else:
        points = torch.tensor(qp.points(), dtype=z.dtype, device=z.device)  # (C, levels)
        s = torch.round((uc - lo) / step).clamp(0, qp.levels - 1).long()
        flat = s.movedim(-3, 0).reshape(channels, -1)
        uq = torch.gather(points, 1, flat).reshape(s.movedim(-3, 0).shape).movedim(0, -3)
    u_out = uc + (uq - uc).detach()
    if qp.domain == "tanh":
        return CLAMP * torch.atanh(u_out / CLAMP)
    return u_out


# ------------------------------------------------------------------------------ choosing parameters

#: default range: these quantiles of the (companded) latent, per channel
DEFAULT_QUANTILE = 0.002
DEFAULT_DOMAIN = "raw"


def with_offsets(qp: QuantParams, latent: np.ndarray) -> QuantParams:
    """``qp`` plus reconstruction offsets at this latent's per-bin centroids (in 1/16 step).

    Bins the latent does not use get offset 0. Worth +0.2 to +0.6 dB PSNR at the same symbols for a
    plain encoder pass (README of codec/entropy); after RDO through the decoder, check before
    using: the RDO tuned its latent for the grid points.
    """
    z = np.asarray(latent, dtype=np.float64)
    if z.ndim == 4 and z.shape[0] == 1:
        z = z[0]
    plain = QuantParams(qp.levels, qp.lo, qp.hi, qp.domain)
    sym = quantize(z, plain).reshape(qp.channels, -1).astype(np.intp)
    u = compand(z, qp.domain).reshape(qp.channels, -1)
    u = np.nan_to_num(u, nan=0.0, posinf=RANGE_LIMIT, neginf=-RANGE_LIMIT)
    lo = np.array(qp.lo)[:, None]
    step = qp.step()[:, None]
    frac = np.clip((u - lo) / step - sym, -0.5, 0.5)  # position inside the bin, in steps
    table = np.zeros((qp.channels, qp.levels), dtype=np.int64)
    for c in range(qp.channels):
        counts = np.bincount(sym[c], minlength=qp.levels)
        sums = np.bincount(sym[c], weights=frac[c], minlength=qp.levels)
        mean = np.divide(sums, counts, out=np.zeros(qp.levels), where=counts > 0)
        table[c] = np.clip(np.rint(mean * OFFSET_UNIT), OFFSET_MIN, OFFSET_MAX)
    if not table.any():
        return plain
    return QuantParams(qp.levels, qp.lo, qp.hi, qp.domain, tuple(map(tuple, table)))


def params_for_latent(
    latent: np.ndarray,
    levels: int,
    *,
    domain: str | None = None,
    quantile: float = DEFAULT_QUANTILE,
    offsets: bool = False,
    **_: Any,
) -> QuantParams:
    """Per-channel range from the latent's own quantiles (stored in the header, 4 bytes/channel).

    ``offsets=True`` adds centroid reconstruction offsets (`with_offsets`, levels/2 bytes/channel).
    """
    domain = DEFAULT_DOMAIN if domain is None else domain
    z = np.asarray(latent, dtype=np.float64)
    if z.ndim == 4 and z.shape[0] == 1:
        z = z[0]
    if z.ndim != 3:
        raise ValueError(f"latent must be (C, h, w), got shape {z.shape}")
    u = compand(z, domain).reshape(z.shape[0], -1)
    u = np.nan_to_num(u, nan=0.0, posinf=RANGE_LIMIT, neginf=-RANGE_LIMIT)
    lo = np.quantile(u, quantile, axis=1)
    hi = np.quantile(u, 1.0 - quantile, axis=1)
    limit = TANH_LIMIT if domain == "tanh" else RANGE_LIMIT
    lo = np.clip(lo, -limit, limit)
    hi = np.clip(hi, -limit, limit)
    # a (near-)constant channel still needs lo < hi after float16 rounding
    width = np.maximum(hi - lo, 1e-2)
    mid = (hi + lo) / 2
    lo16 = np.array(_f16(np.clip(mid - width / 2, -limit, limit)))
    hi16 = np.array(_f16(np.clip(mid + width / 2, -limit, limit)))
    bad = hi16 <= lo16
    if bad.any():
        hi16[bad] = np.array(_f16(np.minimum(lo16[bad] + 2e-2, limit)))
        lo16[bad] = np.array(_f16(hi16[bad] - 2e-2))
    qp = QuantParams(int(levels), tuple(lo16), tuple(hi16), domain)
    return with_offsets(qp, z) if offsets else qp
