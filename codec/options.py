"""The codec's options and limits, defined once (pure Python: no numpy, no Pillow, no torch).

Every layer that names an effort, turns a bits-per-pixel budget into bytes or checks a pixel limit
imports it from here: the container (the effort code in the header), the encoder, the CLI, the bench.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from codec.errors import UsageError

#: encoder effort levels; the index is the 2-bit effort code of the bitstream header (FORMAT.md)
EFFORTS = ("fast", "default", "max")
DEFAULT_EFFORT = "default"

#: largest input image the encoder reads (`codec.imageio.load_image`), and the decoder's default
#: limit on what a stream may claim (every file written with defaults decodes with defaults)
DEFAULT_MAX_PIXELS = 50_000_000
DEFAULT_DECODE_MAX_PIXELS = DEFAULT_MAX_PIXELS

#: Decode limits for untrusted streams (`DecodeLimits`; the cost model and its calibration are in
#: `codec.container.cost`). Work unit = one megapixel through the TAESD decoder, tile overlap counted
#: (≈ 6 s on 2 idle cores; measured 12 CPU-s per unit, ~30–70 s wall under a load of 10).
#: - max_work 80: the most any stream may ask for. A 50 MP image (the encoder's input limit) is
#:   76 units, so every file our encoder writes decodes with the defaults (≈ 8 min on 2 cores at
#:   50 MP); services should pass their own, smaller limit (their time budget / 6 s).
#: - sparse_work 4: the most a *sparse* stream (< min_bits_per_value) may ask for, ≈ 25 s on 2 idle
#:   cores (a 1 MP image is 1.05 units, 1536² 3.3, 2048² 5.3). Sparser and larger streams — the
#:   decode bombs of issue 10: 2048² in 113 bytes, 4096²–7071² in 170–316 bytes — are refused from
#:   the header in under a millisecond.
#: - min_bits_per_value 0.01: payload bits per latent value below which a stream is sparse. Our
#:   encoder's smallest payloads are flat grey images (the most compressible input), measured at
#:   default effort/quality: 1024² 0.13 (coded 768²), 2048² 0.039 (coded 1536²); a gradient 0.25,
#:   photos at the gallery's smallest preset (0.05 bpp) ≈ 0.8. The bombs are at 0–0.005.
DEFAULT_DECODE_MAX_WORK = 80.0
DEFAULT_DECODE_SPARSE_WORK = 4.0
DEFAULT_MIN_BITS_PER_VALUE = 0.01


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class DecodeLimits:
    """What a decode may cost (`codec.decode(data, limits=...)`, `python -m codec decode --max-*`).

    ``max_pixels``: largest claimed display or coded size (None: only the format's 100 MP).
    ``max_work``: largest estimated work (units above; None: no limit).
    ``sparse_work``: largest work of a stream whose payload has fewer than ``min_bits_per_value``
    bits per latent value (None: sparse streams are limited by ``max_work`` only).
    Raise a limit for files you trust (your own, written by this encoder); lower ``max_work`` to
    your time budget for untrusted ones.
    """

    max_pixels: int | None = DEFAULT_DECODE_MAX_PIXELS
    max_work: float | None = DEFAULT_DECODE_MAX_WORK
    sparse_work: float | None = DEFAULT_DECODE_SPARSE_WORK
    min_bits_per_value: float = DEFAULT_MIN_BITS_PER_VALUE

    def __post_init__(self) -> None:
        if self.max_pixels is not None and (not _is_number(self.max_pixels) or self.max_pixels < 1):
            raise UsageError(f"max_pixels must be a positive integer, got {self.max_pixels!r}")
        for name in ("max_work", "sparse_work"):
            value = getattr(self, name)
            if value is not None and (not _is_number(value) or not value > 0 or not math.isfinite(value)):
                raise UsageError(f"{name} must be a positive number, got {value!r}")
        if not _is_number(self.min_bits_per_value) or not 0 <= self.min_bits_per_value < math.inf:
            raise UsageError(f"min_bits_per_value must be a number ≥ 0, got {self.min_bits_per_value!r}")


#: the defaults; `UNLIMITED_DECODE` = the format's own limits only (the encoder's guard decodes its
#: own output with it)
DEFAULT_DECODE_LIMITS = DecodeLimits()
UNLIMITED_DECODE = DecodeLimits(max_pixels=None, max_work=None, sparse_work=None, min_bits_per_value=0.0)


#: slack for float error in ``bpp · W · H / 8`` (0.15 · 800 · 600 / 8 must be 9000, not 8999)
_BPP_EPSILON = 1e-9


def check_effort(effort: object) -> str:
    """The canonical effort name (case and surrounding blanks ignored), or UsageError."""
    name = str(effort).strip().lower()
    if name not in EFFORTS:
        raise UsageError(f"effort must be one of {', '.join(EFFORTS)}, got {effort!r}")
    return name


def effort_code(effort: str) -> int:
    """The header's effort code of ``effort``."""
    return EFFORTS.index(check_effort(effort))


def bpp_to_bytes(bpp: float, width: int, height: int) -> int:
    """The byte budget of a bits-per-pixel target: ``floor(bpp · W · H / 8)``.

    The one rounding rule of the project: a budget is an upper bound, so it rounds down (a file
    never exceeds the bpp it was asked for); a tiny epsilon absorbs float error at exact integers.
    """
    if isinstance(bpp, bool) or not isinstance(bpp, (int, float)) or not math.isfinite(bpp) or bpp <= 0:
        raise UsageError(f"bpp must be a positive number, got {bpp!r}")
    return math.floor(bpp * width * height / 8 + _BPP_EPSILON)
