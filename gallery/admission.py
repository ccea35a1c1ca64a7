"""Admission control: an estimate of the work an upload will cost, and the effort it is encoded at.

The encode's cost is the encoder network over every pixel plus, for the fidelity guard, the decoder
network over every pixel again (profile of a 1024×1024 image of zeros at effort ``fast``: 38 s
``taesd.encode`` + 41 s ``taesd.decode`` in the guard out of 90 s, the rest entropy coding; the
content of the image hardly matters, so a flat image costs what a photo of its size costs). The
work is therefore estimated as ``megapixels × seconds per MP (effort, model) + overhead``.

Measured on this project's 2-core CPU box: ``codec.encode`` at the gallery's standard budget
(0.15 bpp), torch 2 threads, the model already loaded, while the box was shared with other work
(load average 13–15, i.e. the busy-box numbers the workers really see; an idle box is several times
faster). Kodak kodim05 resized, and an all-zero image:

    effort fast     1024×1024 zeros    90.3 s   86 s/MP
    effort fast      768×512  photo    32.1 s   82 s/MP
    effort fast     1536×1024 photo   197.7 s  126 s/MP
    effort default   768×512  photo    87.4 s  222 s/MP
    effort default  1536×1024 photo   231.3 s  147 s/MP

The table below takes ~100 s/MP (fast) and ~180 s/MP (default); ``max`` (iterative refinement) was
not measured and is assumed 3× default.

An upload whose estimate at the configured effort exceeds the per-photo work cap
(``GALLERY_MAX_ENCODE_SECONDS``) is encoded at the cheapest effort that fits; when none fits it is
refused with a per-file message saying how far to downscale. The issue's bomb (a 115 KB PNG of zeros
at 6300×6300 = 39.7 MP that held the only worker > 26 min at effort fast) is refused this way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.conf import settings

#: cheaper efforts, in the order a photo steps down after an attempt over a limit
EFFORT_LADDER = ("max", "default", "fast")

#: busy-box seconds per megapixel of one encode (taesd), see the module docstring
SECONDS_PER_MP = {"fast": 100.0, "default": 180.0, "max": 540.0}
#: per-model multiplier (models of other sizes scale the network cost)
MODEL_FACTOR = {"taesd": 1.0}
#: fixed cost of one encode (loading the staged original, comparisons of a small image, commit)
OVERHEAD_SECONDS = 2.0


def cheaper_effort(effort: str) -> str | None:
    """The next cheaper effort, or None when ``effort`` is already the cheapest."""
    if effort not in EFFORT_LADDER:
        return None
    i = EFFORT_LADDER.index(effort)
    return EFFORT_LADDER[i + 1] if i + 1 < len(EFFORT_LADDER) else None


def seconds_per_mp() -> dict[str, float]:
    """The admission table in use: the measured ``SECONDS_PER_MP`` with the
    ``GALLERY_ADMISSION_SECONDS_PER_MP`` overrides on top (checked by gallery/checks.py)."""
    return {**SECONDS_PER_MP, **(getattr(settings, "GALLERY_ADMISSION_SECONDS_PER_MP", None) or {})}


def estimate_seconds(width: int, height: int, effort: str, model: str | None = None) -> float:
    model = model or settings.GALLERY_CODEC_MODEL
    table = seconds_per_mp()
    per_mp = table.get(effort, table["default"]) * MODEL_FACTOR.get(model, 1.0)
    return OVERHEAD_SECONDS + width * height / 1e6 * per_mp


@dataclass(frozen=True)
class Admission:
    ok: bool
    effort: str = ""  # "" = the configured effort
    seconds: float = 0.0
    message: str = ""


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def admit(width: int, height: int, *, cap: float | None = None, effort: str | None = None) -> Admission:
    """The effort to encode a ``width``×``height`` image at, within the work cap, or a refusal."""
    cap = settings.GALLERY_MAX_ENCODE_SECONDS if cap is None else cap
    configured = effort or settings.GALLERY_ENCODE_EFFORT
    first = estimate_seconds(width, height, configured)
    if not cap or first <= cap:
        return Admission(True, "", first)
    candidate: str | None = configured
    while (candidate := cheaper_effort(candidate)) is not None:
        seconds = estimate_seconds(width, height, candidate)
        if seconds <= cap:
            return Admission(True, candidate, seconds)
    cheapest = EFFORT_LADDER[-1]
    seconds = estimate_seconds(width, height, cheapest)
    per_mp = (seconds - OVERHEAD_SECONDS) / (width * height / 1e6)
    fits_mp = max(0.0, (cap - OVERHEAD_SECONDS) / per_mp)
    side = int(math.sqrt(fits_mp * 1e6 * width / height))
    return Admission(
        False,
        cheapest,
        seconds,
        f"This image ({width}×{height}, {width * height / 1e6:.1f} MP) would take about "
        f"{_minutes(seconds)} to encode, over the limit of {_minutes(cap)} per photo. "
        f"Downscale it to about {fits_mp:.1f} MP (e.g. {side} pixels wide) and upload it again.",
    )
