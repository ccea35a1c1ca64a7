"""Text legibility metric: character error rate of OCR(decoded) against OCR(original).

The OCR engine is Tesseract 5 (Debian ``tesseract-ocr`` + ``tesseract-ocr-eng``, LSTM engine), run as
a subprocess on PNG bytes through stdin, so nothing but the binary is needed (no Python wrapper).

1. `find_text_regions` runs Tesseract on the *original* in sparse-text mode (``--psm 11``: signs and
   captions on photos, not a page layout) and groups the recognised words into lines (Tesseract's own
   block/paragraph/line ids). A line is kept when its mean word confidence is ≥ ``min_confidence``
   and it has at least ``min_chars`` letters or digits.
2. `compare_text` crops every line box (with a margin) from the original and from the decode, scales
   both crops so the line is `TARGET_LINE_PX` tall (Tesseract reads 20–40 px text best; both images get
   the same scaling), and reads each as a single line (``--psm 7``).
3. The CER of a line is the Levenshtein distance between the two readings divided by the length of the
   original's reading (whitespace collapsed; case kept). It can exceed 1 when the decode reads as
   longer garbage. The report's ``cer`` is the character-weighted mean over all lines.

Tesseract is deterministic, so a line crop's reading is cached by the crop's pixels (`read_line`):
an encoder that checks many candidate decodes against one original OCRs the original's lines once.

The reference is OCR(original), not the ground-truth string, so the metric asks "does the decode
still read the same" and works on any photo; benchmarks with rendered text can also pass the truth.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image

from codec.errors import InputImageError, ModelNotFoundError

ENV_VAR = "CODEC_TESSERACT"
INSTALL_HINT = "apt-get install -y tesseract-ocr tesseract-ocr-eng"
TARGET_LINE_PX = 32
#: Cap on one OCR call (a hostile or huge image must not hang the caller).
OCR_TIMEOUT_S = 60.0
#: Images larger than this are downscaled before region search (region boxes are mapped back).
MAX_SEARCH_PIXELS = 8_000_000
#: line readings kept by `read_line` (keyed by the crop's pixels; a few KB in all)
READING_CACHE_SIZE = 512
_readings: OrderedDict[tuple[int, int, bytes], str] = OrderedDict()
_readings_lock = threading.Lock()


class OcrUnavailableError(ModelNotFoundError):
    """The Tesseract binary or its English model is missing (setup problem: install, keep the input)."""


@dataclass(frozen=True)
class TextRegion:
    """One text line found in the original: box (``right``/``bottom`` exclusive), reading, confidence."""

    left: int
    top: int
    right: int
    bottom: int
    text: str
    confidence: float

    @property
    def height(self) -> int:
        return self.bottom - self.top


@dataclass(frozen=True)
class LineResult:
    region: TextRegion
    original_text: str
    decoded_text: str
    edits: int
    cer: float
    #: words of the original's reading (`words`) that read robustly there (`stable_words`) and are not in
    #: the decode's reading; empty when every word is kept
    changed_words: tuple[str, ...] = ()


@dataclass(frozen=True)
class LegibilityReport:
    lines: tuple[LineResult, ...]

    @property
    def chars(self) -> int:
        return sum(len(line.original_text) for line in self.lines)

    @property
    def cer(self) -> float | None:
        """Character-weighted CER over all lines (None when the original has no readable text)."""
        total = self.chars
        return sum(line.edits for line in self.lines) / total if total else None

    @property
    def worst_cer(self) -> float | None:
        return max((line.cer for line in self.lines), default=None)

    @property
    def numbers_kept(self) -> bool | None:
        """Whether every line whose original reading has digits reads the same digits in the decode
        (`digits`; None when no line has any). A changed number ("9-17h" → "8-17h") is the text change
        that matters most and the CER weighs it as one character of many."""
        lines = [line for line in self.lines if digits(line.original_text)]
        if not lines:
            return None
        return all(digits(line.original_text) == digits(line.decoded_text) for line in lines)

    @property
    def words_kept(self) -> bool | None:
        """Whether every robustly read word of each line's original reading is still in the decode's
        reading of that line (`LineResult.changed_words`; None when no line has a word of
        `MIN_WORD_LETTERS`+ letters). A changed letter in a word ("FORCE" → "FONCE") is a different word;
        the CER weighs it as one character of many."""
        lines = [line for line in self.lines if words(line.original_text)]
        if not lines:
            return None
        return not any(line.changed_words for line in lines)

    def to_dict(self) -> dict[str, Any]:
        return {"cer": self.cer, "worst_cer": self.worst_cer, "chars": self.chars,
                "lines": [asdict(line) for line in self.lines]}


@lru_cache(maxsize=1)
def tesseract_binary() -> str:
    """Path of a working ``tesseract`` with the ``eng`` model (``$CODEC_TESSERACT`` first); cached."""
    exe = os.environ.get(ENV_VAR) or shutil.which("tesseract")
    if not exe:
        raise OcrUnavailableError(f"the tesseract binary is not installed: {INSTALL_HINT}")
    try:
        out = subprocess.run([exe, "--list-langs"], capture_output=True, text=True, timeout=30, check=False)
    except OSError as exc:
        raise OcrUnavailableError(f"cannot run {exe}: {exc} ({INSTALL_HINT})") from exc
    langs = {line.strip() for line in (out.stdout + out.stderr).splitlines()}
    if "eng" not in langs:
        raise OcrUnavailableError(f"tesseract at {exe} has no English model: {INSTALL_HINT}")
    return exe


def _check_rgb(rgb: np.ndarray, what: str = "image") -> np.ndarray:
    arr = np.asarray(rgb)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3 or 0 in arr.shape:
        raise InputImageError(f"{what} must be an HxWx3 uint8 RGB array, got {arr.dtype} {arr.shape}")
    return arr


def _run(img: Image.Image, psm: int, tsv: bool) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    cmd = [tesseract_binary(), "stdin", "stdout", "-l", "eng", "--psm", str(psm), "--oem", "1"]
    if tsv:
        cmd.append("tsv")
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}  # one core per call: the box is shared
    try:
        out = subprocess.run(cmd, input=buf.getvalue(), capture_output=True, timeout=OCR_TIMEOUT_S,
                             check=False, env=env)
    except subprocess.TimeoutExpired as exc:
        raise InputImageError(f"OCR took longer than {OCR_TIMEOUT_S:.0f} s") from exc
    if out.returncode != 0:
        raise OcrUnavailableError(f"tesseract failed ({out.returncode}): {out.stderr.decode()[-300:]}")
    return out.stdout.decode("utf-8", "replace")


def normalise(text: str) -> str:
    """Whitespace collapsed to single spaces, ends stripped (case and punctuation kept)."""
    return " ".join(text.split())


def digits(text: str) -> str:
    """The digits of ``text`` in reading order, everything else dropped ("9-17h" → "917"): robust to the
    spaces and punctuation Tesseract adds or drops around numbers."""
    return "".join(ch for ch in text if ch.isdigit())


#: words shorter than this are not checked (OCR confuses "I"/"l"/"|" and splits short words at the edges)
MIN_WORD_LETTERS = 3


def words(text: str) -> list[str]:
    """The runs of `MIN_WORD_LETTERS` or more letters of ``text`` ("U.S. AIR FORCE 1961" → AIR, FORCE)."""
    return [w for w in re.findall(r"[^\W\d_]+", text) if len(w) >= MIN_WORD_LETTERS]


def words_kept(original: str, decoded: str) -> bool:
    """Whether every word of ``original`` (`words`) occurs in ``decoded``, ignoring case and what stands
    around it: Tesseract glues edge marks to words ("|Cafe" → "iCafe") and changes case on small
    caps, which is noise; a letter that changed inside a word is not."""
    hay = decoded.casefold()
    return all(w.casefold() in hay for w in words(original))


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions all cost 1)."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate of ``hypothesis`` against ``reference`` (both normalised); 0 for two empties."""
    ref, hyp = normalise(reference), normalise(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return levenshtein(ref, hyp) / len(ref)


def ocr_text(rgb: np.ndarray, *, psm: int = 7) -> str:
    """Tesseract's reading of a whole image (default: one text line), whitespace-normalised."""
    return normalise(_run(Image.fromarray(_check_rgb(rgb)), psm, tsv=False))


def find_text_regions(rgb: np.ndarray, *, min_confidence: float = 60.0, min_chars: int = 2,
                      search_scale: float = 1.0, psms: tuple[int, ...] = (11, 3)) -> list[TextRegion]:
    """Text lines Tesseract reads in ``rgb``, merged from its word boxes.

    Two page-segmentation passes, their lines united: ``--psm 11`` (sparse text: signs on photos) and
    ``--psm 3`` (automatic layout). Measured on 18 rendered sign lines on training photos: 9 and 8
    found alone; psm 11 also misses a lone sign on a small textured image that psm 3 finds.
    """
    arr = _check_rgb(rgb)
    img = Image.fromarray(arr)
    h, w = arr.shape[:2]
    # ``search_scale`` resamples before the search (capped at MAX_SEARCH_PIXELS). Measured on 18 rendered
    # sign lines (12/18/28 px cap height) on training photos: 1× finds 9, 2× also 9 at 3× the time.
    scale = min(float(search_scale), (MAX_SEARCH_PIXELS / (h * w)) ** 0.5)
    if scale != 1.0:
        img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)
    regions: list[TextRegion] = []
    for psm in psms:
        for region in _regions(_run(img, psm=psm, tsv=True), scale, w, h, min_confidence, min_chars):
            if all(_overlap(region, r) < 0.3 for r in regions):
                regions.append(region)
    return regions


def _overlap(a: TextRegion, b: TextRegion) -> float:
    ix = max(0, min(a.right, b.right) - max(a.left, b.left))
    iy = max(0, min(a.bottom, b.bottom) - max(a.top, b.top))
    smaller = min((a.right - a.left) * a.height, (b.right - b.left) * b.height)
    return ix * iy / smaller if smaller > 0 else 0.0


def _regions(tsv: str, scale: float, w: int, h: int, min_confidence: float,
             min_chars: int) -> list[TextRegion]:
    lines: dict[tuple[str, ...], list[tuple[int, int, int, int, float, str]]] = {}
    rows = tsv.splitlines()
    for row in rows[1:]:
        cols = row.split("\t")
        if len(cols) < 12 or cols[0] != "5":  # level 5 = word
            continue
        text = cols[11].strip()
        conf = float(cols[10])
        if not text or conf < 0:
            continue
        left, top, width, height = (int(c) for c in cols[6:10])
        lines.setdefault(tuple(cols[1:5]), []).append((left, top, left + width, top + height, conf, text))
    regions = []
    for words in lines.values():
        text = " ".join(wd[5] for wd in words)
        conf = float(np.mean([wd[4] for wd in words]))
        if conf < min_confidence or sum(ch.isalnum() for ch in text) < min_chars:
            continue
        # The box: Tesseract's word boxes on photos swell into the texture around a sign ("Gallery" 52 px
        # tall on a line of 15), so the line's top/bottom are the medians over its confident words and
        # unconfident words at either end (texture read as "Haas", "TeHG") are left out. Measured on
        # the 18 rendered lines of 9 training photos (`scripts/text_bench.py` layout, 15 found either
        # way): median box IoU with the rendered line 0.35 → 0.68, and the reading of the original's
        # crop (`read_line`, the check's reference) against the rendered string mean CER 0.50 → 0.30.
        # Still swollen where every word box is (a 20-px line read 51 px tall).
        sure = [wd for wd in words if wd[4] >= min_confidence] or words
        first = next(i for i, wd in enumerate(words) if wd in sure)
        last = max(i for i, wd in enumerate(words) if wd in sure)
        kept = words[first:last + 1]
        box = [min(wd[0] for wd in kept), float(np.median([wd[1] for wd in sure])),
               max(wd[2] for wd in kept), float(np.median([wd[3] for wd in sure]))]
        left, top, right, bottom = (round(v / scale) for v in box)
        regions.append(TextRegion(max(0, left), max(0, top), min(w, right), min(h, bottom), text, conf))
    return regions


def _line_crop(arr: np.ndarray, region: TextRegion) -> Image.Image:
    h, w = arr.shape[:2]
    margin = max(4, region.height // 2)
    crop = arr[max(0, region.top - margin):min(h, region.bottom + margin),
               max(0, region.left - margin):min(w, region.right + margin)]
    img = Image.fromarray(np.ascontiguousarray(crop))
    factor = TARGET_LINE_PX / max(region.height, 1)
    if factor > 1.0:
        img = img.resize((round(img.width * factor), round(img.height * factor)), Image.Resampling.LANCZOS)
    return img


def read_line(arr: np.ndarray, region: TextRegion) -> str:
    """Tesseract's single-line reading of ``region``'s crop of ``arr`` (`_line_crop`), normalised;
    cached by the crop's pixels (the same crop always reads the same, so the cache changes nothing but
    the time)."""
    return _cached_reading(_line_crop(arr, region))


#: light changes of the original's line crop a word must survive to be checked (`stable_words`): JPEG at
#: this quality, and a resample to this fraction of the size and back
STABLE_JPEG_QUALITY = 85
STABLE_RESCALE = 0.8


def _perturbed(img: Image.Image, kind: str) -> Image.Image:
    if kind == "jpeg":
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=STABLE_JPEG_QUALITY)
        return Image.open(buf).convert("RGB")
    size = (max(1, round(img.width * STABLE_RESCALE)), max(1, round(img.height * STABLE_RESCALE)))
    small = img.resize(size, Image.Resampling.BILINEAR)
    return small.resize(img.size, Image.Resampling.BICUBIC)


def _cached_reading(img: Image.Image) -> str:
    key = (img.width, img.height, hashlib.blake2b(img.tobytes(), digest_size=16).digest())
    with _readings_lock:
        if key in _readings:
            _readings.move_to_end(key)
            return _readings[key]
    text = normalise(_run(img, psm=7, tsv=False))
    with _readings_lock:
        _readings[key] = text
        while len(_readings) > READING_CACHE_SIZE:
            _readings.popitem(last=False)
    return text


def stable_words(arr: np.ndarray, region: TextRegion, reading: str) -> list[str]:
    """The words of ``reading`` (the original's `read_line`) that Tesseract also reads in the original's
    crop after a JPEG round trip and after a resample (`STABLE_JPEG_QUALITY`, `STABLE_RESCALE`).

    Why: the words rule must judge the codec, not Tesseract. On clean files of 9 training photos (JPEG
    q95–q70, AVIF 0.3/0.5 bpp: readable by eye) the plain rule fired on 2–3 of 18 lines per file: an
    original misread ("9-17h" as "palh", read differently on every file) and a brace glued to a word
    ("{Cafe" → "‘afe"). A word that two light perturbations of the original itself already change is
    unstable in OCR, not in the codec. Two more readings per line, only for a line whose words changed."""
    img = _line_crop(arr, region)
    others = [_cached_reading(_perturbed(img, kind)).casefold() for kind in ("jpeg", "rescale")]
    return [w for w in words(reading) if all(w.casefold() in other for other in others)]


def compare_text(original: np.ndarray, decoded: np.ndarray, *,
                 regions: list[TextRegion] | None = None, min_confidence: float = 60.0) -> LegibilityReport:
    """CER of OCR(decoded) against OCR(original) on every text line found in ``original``.

    ``regions`` skips the search (e.g. lines cached by the encoder or known boxes of rendered text).
    """
    original = _check_rgb(original, "original")
    decoded = _check_rgb(decoded, "decoded")
    if original.shape != decoded.shape:
        raise InputImageError(f"original {original.shape} and decoded {decoded.shape} differ in size")
    if regions is None:
        regions = find_text_regions(original, min_confidence=min_confidence)
    results = []
    for region in regions:
        ref = read_line(original, region)
        if not ref:
            continue
        hyp = read_line(decoded, region)
        edits = levenshtein(ref, hyp)
        changed: tuple[str, ...] = ()
        if not words_kept(ref, hyp):  # only then: is what changed a word the original reads robustly?
            hay = hyp.casefold()
            changed = tuple(w for w in stable_words(original, region, ref) if w.casefold() not in hay)
        results.append(LineResult(region, ref, hyp, edits, edits / len(ref), changed))
    return LegibilityReport(tuple(results))
