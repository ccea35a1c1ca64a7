"""Text-checked encoding (issue 12): ``codec.encode(..., check_text=True)`` (the gallery's default
when Tesseract is installed, ``GALLERY_CHECK_TEXT``).

PP-OCRv4's detector (`codec.metrics.text_detect`; Tesseract's page segmentation where it is not installed
or ``CODEC_TEXT_DETECTOR=tesseract``) finds the text lines of the original once per encode and
Tesseract (`codec.metrics.legibility`) reads them; the guard
then checks the CER of OCR(decode) against OCR(original) on those lines and protects them like faces
(`codec.encoder.guard._FaceGuard`: their blocks join the face patch layer). Without the tesseract
binary nothing is checked and the file carries no ``text_cer`` (``codec.info`` → ``text_checked: false``).

Cost (docs/bench/faces/text_detect.md, one thread): the PP-OCR search takes 0.29 s on a 768×512 photo,
0.40 s at 1 MP and 0.87 s at 12 MP (Tesseract's own search 0.60 / 1.27 / 2.90 s), plus one Tesseract
reading per line found (the check needs it anyway). `start` runs it in a background thread from the
moment the encode session exists, so it overlaps the torch encoder pass when a core is free;
`session_regions` then only waits for what is left. A photo without text costs that search only (the
same file). Each check costs one OCR call per line (the original's reading of a line is cached,
`codec.metrics.legibility.read_line`). A photo whose text fails costs the guard's protection search:
at a fixed budget it finds nothing that fits (the text windows' patch atlas is larger than what is
left), in the gallery's upward target search it grows the file (1.6–1.8 × the budget, ≈ 30 s instead
of 5 s per encode at 0.10 bpp on 3 training photos) until the text passes or the cap says
``target_met: false``.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

from codec.container.patchlayer import Grid
from codec.errors import UsageError
from codec.metrics import text_detect
from codec.metrics.legibility import (
    LegibilityReport,
    OcrUnavailableError,
    TextRegion,
    cer,
    compare_text,
    find_text_regions,
    read_line,
    tesseract_binary,
)

#: CER floor of a checked line. From H6's text bench on TRAINING photos (docs/bench/faces/report.md,
#: rendered sign lines on bsds500 photos, CER against OCR(original)): lines that stay legible read
#: at ≤ 0.13 (20-px caps: latent 0.13 at 0.10 bpp, every codec 0.053 at 0.15 bpp), garbled ones at
#: 0.5–1.0 (12-px caps at 0.05–0.10 bpp) → 0.2.
TEXT_CER_FLOOR = 0.2
#: letters/digits a line needs before the encoder checks it. Tesseract reads 2–3-character "lines" into
#: texture: on 60 training photos without text (every 12th bsds500 photo + 20 imagenet samples) 15 had
#: one or more (``we``, ``2B``, ``Sa =``, ``tis] @``: every one ≤ 3 letters/digits), each a line the
#: guard would check and protect or flag for nothing; the rendered sign lines have ≥ 13 (see
#: docs/bench/faces/text_protected.md). A real 2–3-letter sign ("BAR") is not checked.
MIN_LINE_CHARS = 4


#: the line search runs on the original shrunk to at most this many pixels: a 12 MP photo searched at
#: full size (8 MP, the metric's own cap) took its encode from 93 to 165 s here (2026-12-01, bench-gallery
#: --twelve 1); at 2 MP its lines of ≥ 30 px cap height are still found (12 px × √(12/2)), photos up to
#: 2 MP (Kodak, 1 MP phone exports) are searched at full size. The check itself reads full-size crops.
SEARCH_MAX_PIXELS = 2_000_000
#: the same for PP-OCR's detector, whose activations live in the worker's own memory (Tesseract runs in a
#: subprocess): measured on a 12 MP photo, peak RSS +370 MB searching a 2 MP copy (1.8 s), +220 MB at
#: 1 MP (0.8 s), +165 MB at 0.5 MP — next to a 12 MP encode's 2.5 GB, under issue 13's 3 GB. At 1 MP
#: a 12 MP photo's lines of ≥ 42 px cap height are searched at the 12 px the detector finds
#: (12 px × √12); photos up to 1 MP are searched at full size (the detector itself enlarges small
#: ones so their short side is 736 px).
PPOCR_SEARCH_MAX_PIXELS = 1_000_000


#: which line finder `detect` uses: ``ppocr`` (PP-OCRv4's detector, `codec.metrics.text_detect`),
#: ``tesseract`` (Tesseract's own page segmentation, `find_text_regions`) or ``auto`` (the default: ppocr
#: when installed)
DETECTOR_ENV = "CODEC_TEXT_DETECTOR"
#: a PP-OCR line is checked only when Tesseract's reading of the original's crop (the check's reference,
#: `read_line`) and PP-OCR's own reading agree to this CER (spaces and case ignored: PP-OCR drops the
#: spaces of small text). Measured (docs/bench/faces/text_detect.md): the 18 rendered sign lines on
#: training photos agree at 0.00–0.27; on 62 training photos without rendered text PP-OCR reports 6 lines
#: of ≥ 4 characters: two real watermarks agree (0.06, 0.50), three texture "lines" and a Chinese sign
#: that Tesseract's English model reads as nothing do not (1.0; a third watermark, "dz6o.com", too) — a
#: line the metric cannot read cannot be checked.
AGREEMENT_CER = 0.5


def _compact(text: str) -> str:
    return "".join(text.split()).lower()


def detector_choice() -> str:
    """``auto``, ``ppocr`` or ``tesseract``: what `DETECTOR_ENV` asks for (checked, not resolved)."""
    choice = os.environ.get(DETECTOR_ENV, "auto").strip().lower() or "auto"
    if choice not in ("auto", "ppocr", "tesseract"):
        raise UsageError(f"{DETECTOR_ENV}={choice!r}: expected auto, ppocr or tesseract")
    return choice


def detector() -> str:
    """The line finder in use (`DETECTOR_ENV`; ``auto`` → ``ppocr`` when it is installed)."""
    choice = detector_choice()
    if choice == "auto":
        return "ppocr" if text_detect.available() else "tesseract"
    return choice


def detect(rgb: np.ndarray) -> list[TextRegion] | None:
    """Text lines of the original with ≥ `MIN_LINE_CHARS` letters/digits that the check can read (None
    when Tesseract, the reader of the check, is not installed)."""
    h, w = rgb.shape[:2]
    try:
        tesseract_binary()
        if detector() == "ppocr":
            lines = text_detect.find_lines(rgb, min_chars=MIN_LINE_CHARS, max_pixels=PPOCR_SEARCH_MAX_PIXELS)
            return [r for r in lines if cer(_compact(read_line(rgb, r)), _compact(r.text)) <= AGREEMENT_CER]
        scale = min(1.0, (SEARCH_MAX_PIXELS / max(1, h * w)) ** 0.5)
        return find_text_regions(rgb, min_chars=MIN_LINE_CHARS, search_scale=scale)
    except OcrUnavailableError:  # also text_detect.DetectorUnavailableError when ppocr was asked for
        return None


class Detection:
    """`detect` running in a daemon thread; `result` waits for it (and re-raises what it raised)."""

    def __init__(self, rgb: np.ndarray) -> None:
        self._rgb = rgb
        self._value: list[TextRegion] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="codec-text-detect", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        try:
            self._value = detect(self._rgb)
        except BaseException as exc:  # handed to the caller's thread by `result`
            self._error = exc
        finally:
            self._rgb = None  # type: ignore[assignment]

    def result(self) -> list[TextRegion] | None:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def start(session: Any) -> None:
    """Begin `detect` on the session's original in the background (idempotent): call it as soon as the
    session exists, before the encoder pass, so the OCR subprocess runs while torch encodes."""
    memo = session._memo
    if "text" not in memo and "text_pending" not in memo:
        memo["text_pending"] = Detection(session.rgb)


def session_regions(session: Any) -> list[TextRegion] | None:
    """`detect` once per `EncodeSession` (kept in its memo): the background run `start` began, if any,
    else a direct call."""
    memo = session._memo
    if "text" not in memo:
        pending = memo.pop("text_pending", None)
        memo["text"] = pending.result() if pending is not None else detect(session.rgb)
    return memo["text"]


def check(original: np.ndarray, decoded: np.ndarray, regions: list[TextRegion]) -> LegibilityReport | None:
    """The decode's reading of ``regions`` against the original's (None when there are none).

    The guard judges it by its worst line (`LegibilityReport.worst_cer` ≤ `TEXT_CER_FLOOR`), not the
    character-weighted mean: every line must still read. With the mean a garbled 12-px line next to a
    legible 20-px one passed (training photo 155060 at 0.15 bpp, the gallery's path: "U.S. AIR FORCE
    1961" read as "U5. AID FORCE 3901," at CER 0.32, the mean over both lines 0.125 under the 0.2
    floor). And by its numbers (`LegibilityReport.numbers_kept`): "Gallery open 9-17h" read as
    "8-17h" is CER 0.14 on its line, under the floor, and a different opening time
    (docs/bench/faces/text_detect.md). On 90 clean readings (the 18 rendered training lines through
    JPEG q95/85/70 and AVIF at 0.3/0.5 bpp) no digit changed, while 3 lines read over the CER floor
    from Tesseract's own noise.
    """
    if not regions:
        return None
    return compare_text(original, decoded, regions=regions)


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
