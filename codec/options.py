"""The codec's options and limits, defined once (pure Python: no numpy, no Pillow, no torch).

Every layer that names an effort, turns a bits-per-pixel budget into bytes or checks a pixel limit
imports it from here: the container (the effort code in the header), the encoder, the CLI, the bench.
"""

from __future__ import annotations

import math

from codec.errors import UsageError

#: encoder effort levels; the index is the 2-bit effort code of the bitstream header (FORMAT.md)
EFFORTS = ("fast", "default", "max")
DEFAULT_EFFORT = "default"

#: largest input image the encoder reads (`codec.imageio.load_image`), and the decoder's default
#: limit on what a stream may claim (every file written with defaults decodes with defaults)
DEFAULT_MAX_PIXELS = 50_000_000
DEFAULT_DECODE_MAX_PIXELS = DEFAULT_MAX_PIXELS

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
