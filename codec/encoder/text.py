"""Text-checked encoding (issue 12), opt-in: ``codec.encode(..., check_text=True)``.

Tesseract (`codec.metrics.legibility`) finds the text lines of the original once per encode; the guard
then checks the CER of OCR(decode) against OCR(original) on those lines and protects them like faces
(`codec.encoder.guard._FaceGuard`: their blocks join the face patch layer). Off by default because it
costs far more than the ~1 s per photo the default path may spend: measured `find_text_regions` on a
768×512 Kodak photo (kodim04, kodim08): 9.6 s and 10.2 s on the shared 2-core machine (load ~13), plus
two OCR calls per line and check. Without the tesseract binary nothing is checked and the file carries
no ``text_cer`` (``codec.info`` → ``text_checked: false``).
"""

from __future__ import annotations

import numpy as np

from codec.container.patchlayer import Grid
from codec.metrics.legibility import OcrUnavailableError, TextRegion, compare_text, find_text_regions

#: CER floor of a checked line. From H6's text bench on TRAINING photos (docs/bench/faces/report.md,
#: rendered sign lines on bsds500 photos, CER against OCR(original)): lines that stay legible read
#: at ≤ 0.13 (20-px caps: latent 0.13 at 0.10 bpp, every codec 0.053 at 0.15 bpp), garbled ones at
#: 0.5–1.0 (12-px caps at 0.05–0.10 bpp) → 0.2.
TEXT_CER_FLOOR = 0.2


def detect(rgb: np.ndarray) -> list[TextRegion] | None:
    """Text lines of the original (None when Tesseract is not installed)."""
    try:
        return find_text_regions(rgb)
    except OcrUnavailableError:
        return None


def session_regions(session: object) -> list[TextRegion] | None:
    """`detect` once per `EncodeSession` (kept in its memo)."""
    memo = session._memo  # type: ignore[attr-defined]
    if "text" not in memo:
        memo["text"] = detect(session.rgb)  # type: ignore[attr-defined]
    return memo["text"]


def check(original: np.ndarray, decoded: np.ndarray, regions: list[TextRegion]) -> float | None:
    """Character-weighted CER of the decode on ``regions`` (None when nothing was readable)."""
    if not regions:
        return None
    return compare_text(original, decoded, regions=regions).cer


def text_blocks(regions: list[TextRegion], grid: Grid) -> list[int]:
    """Indices of the guard grid's windows that overlap a text line (grown by half its height)."""
    ys, xs = grid.origins()
    out: set[int] = set()
    for r in regions:
        m = r.height / 2
        rows = [i for i, y in enumerate(ys) if y < r.bottom + m and y + grid.bh > r.top - m]
        cols = [j for j, x in enumerate(xs) if x < r.right + m and x + grid.bw > r.left - m]
        out.update(i * len(xs) + j for i in rows for j in cols)
    return sorted(out)
