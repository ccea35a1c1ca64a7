"""Classical codecs at a byte budget: JPEG, WebP, AVIF, JPEG XL (Pillow only — no torch here).

The web process imports this module (the gallery's "JPEG at the same byte budget" comparison), so it
must stay Pillow + numpy. The benchmark uses it for the baseline rows.

`encode_at_budget` searches the encoder's quality setting for the largest file that is ≤ ``max_bytes``
(binary search over integer qualities; file size is monotone in quality for all four encoders to
within a few bytes, and every returned file has been measured, so ``fits=True`` is never a guess).

* ``mode="quality"`` keeps the full resolution. When even the lowest quality is over budget the
  result has ``fits=False``, holds that smallest file, and ``note`` says so.
* ``mode="downscale"`` keeps a floor on quality instead (``min_quality``, default
  `DOWNSCALE_MIN_QUALITY` of the format: below it the artefacts say more about the encoder's
  minimum than about the format) and shrinks the image with Lanczos until the floor fits, then
  spends what is left of the budget on quality at that size. ``scale``/``width``/``height`` record the
  size actually coded; `decode_baseline` scales back to the original size for metrics.

Encoder settings (data in `FORMATS`):

* JPEG: libjpeg via Pillow, 4:2:0, ``optimize=True`` (Huffman tables per image), and for each quality
  the smaller of baseline and progressive (progressive is smaller at high rates, baseline at the
  very low rates we test). Quality 1..95.
* WebP: libwebp lossy, ``method=6`` (slowest, smallest), 4:2:0 (WebP's only lossy mode). Quality 0..100.
* AVIF: Pillow's built-in libavif (AV1 intra via aom), 4:2:0, ``speed=AVIF_SPEED`` = 4. Measured at the
  same byte budgets on Kodak 1–4 against libavif's default speed 6: MS-SSIM 0.906 vs 0.900 and
  LPIPS 0.358 vs 0.381 at 0.10 bpp, 0.929 vs 0.924 and 0.292 vs 0.319 at 0.15 bpp, for about 5× the
  encode time (a budgeted search is ~6–8 encodes). The bench wants the strongest reasonable
  baseline, so 4 (the settings are data: ``FORMATS["avif"].options``). Quality 0..100.
* JPEG XL: pillow-jxl-plugin (libjxl), ``effort=7`` (libjxl's default). Quality 0..99 (quality 0 is
  libjxl's maximum distance 25, so JXL cannot go below ~0.15 bpp on photos; 100 would be lossless).

Every result carries ``encode_s`` (wall time of the whole search, which is what a caller pays for a
budgeted encode) and ``final_encode_s`` (one encode at the chosen setting).
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from codec.container.images import FORMATS as IMAGE_FORMATS
from codec.container.images import register_jxl
from codec.errors import InputImageError, UsageError

AVIF_SPEED = 4
JXL_EFFORT = 7
WEBP_METHOD = 6
#: Pixel limit for `decode_baseline` (hostile or absurd files must not allocate without bound).
MAX_DECODE_PIXELS = 100_000_000
#: Smallest side `mode="downscale"` will shrink to before giving up.
MIN_SIDE = 8


@dataclass(frozen=True)
class FormatSpec:
    """One classical format: quality range and save options (config as data); Pillow name, file
    extension and content type come from the one format table, `codec.container.images.FORMATS`."""

    name: str
    q_min: int
    q_max: int
    downscale_min_quality: int
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def pil_format(self) -> str:
        return IMAGE_FORMATS[self.name].pil

    @property
    def extension(self) -> str:
        return IMAGE_FORMATS[self.name].extension

    @property
    def mime(self) -> str:
        return IMAGE_FORMATS[self.name].content_type


FORMATS: dict[str, FormatSpec] = {
    "jpeg": FormatSpec("jpeg", 1, 95, 30, {"subsampling": 2, "optimize": True}),
    "webp": FormatSpec("webp", 0, 100, 30, {"method": WEBP_METHOD}),
    "avif": FormatSpec("avif", 0, 100, 30, {"speed": AVIF_SPEED, "subsampling": "4:2:0"}),
    "jxl": FormatSpec("jxl", 0, 99, 30, {"effort": JXL_EFFORT}),
}
#: Lowest quality `mode="downscale"` accepts before it shrinks the image, per format.
DOWNSCALE_MIN_QUALITY = {name: spec.downscale_min_quality for name, spec in FORMATS.items()}


@dataclass(frozen=True)
class BaselineResult:
    """One budgeted encode. ``width``/``height`` are the coded size; ``scale`` = coded / original width."""

    data: bytes
    fmt: str
    quality: int
    fits: bool
    width: int
    height: int
    scale: float
    note: str
    original_width: int
    original_height: int
    max_bytes: int
    encode_s: float
    final_encode_s: float
    trials: int

    @property
    def nbytes(self) -> int:
        return len(self.data)

    @property
    def bpp(self) -> float:
        """Bits per pixel of the *original* image (what a budget in bpp means)."""
        return len(self.data) * 8 / (self.original_width * self.original_height)

    @property
    def downscaled(self) -> bool:
        return (self.width, self.height) != (self.original_width, self.original_height)


def _as_image(rgb: np.ndarray | Image.Image) -> Image.Image:
    if isinstance(rgb, Image.Image):
        return rgb if rgb.mode == "RGB" else rgb.convert("RGB")
    arr = np.asarray(rgb)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3 or 0 in arr.shape:
        raise InputImageError(f"baselines need a uint8 HxWx3 RGB array, got {arr.dtype} {arr.shape}")
    return Image.fromarray(arr, "RGB")


def encode_once(img: Image.Image, fmt: str, quality: int, options: Mapping[str, Any] | None = None) -> bytes:
    """Encode ``img`` once at ``quality`` with the format's settings (JPEG: best of baseline/progressive);
    ``options`` replace some of them (e.g. ``{"subsampling": "4:4:4"}`` for AVIF)."""
    spec = _spec(fmt)
    if spec.name == "jxl":
        register_jxl()
    opts = {**spec.options, **(options or {})}

    def save(**extra: Any) -> bytes:
        buf = io.BytesIO()
        img.save(buf, format=spec.pil_format, quality=int(quality), **opts, **extra)
        return buf.getvalue()

    if spec.name == "jpeg":
        return min(save(progressive=False), save(progressive=True), key=len)
    return save()


def _spec(fmt: str) -> FormatSpec:
    try:
        return FORMATS[fmt.lower()]
    except KeyError:
        raise UsageError(f"unknown baseline format {fmt!r} (known: {', '.join(FORMATS)})") from None


def largest_fitting(
    lo: int,
    hi: int,
    size_of: Callable[[int], int],
    budget: int,
    *,
    first: int,
    slope: float,
    log_x: bool = False,
) -> int | None:
    """Largest integer x in [lo, hi] with ``size_of(x) <= budget``, or None if not even ``lo`` fits.

    Assumes size grows with x. A guarded secant search on log(size): it interpolates between the
    tightest fitting / non-fitting probes (extrapolates with the prior ``slope`` = d log(size)/dx, or
    d log(size)/d log(x) with ``log_x``, while it has only one side), and takes a bisection step
    whenever a probe failed to halve the bracket — so it needs ~3–5 encodes where plain bisection
    over 0..100 needs 7–8, and never more than about twice the bisection count.
    """
    sizes: dict[int, int] = {}
    a, b = lo - 1, hi + 1  # a: largest known to fit (lo-1 = none yet); b: smallest known not to fit

    def t(v: int) -> float:
        return math.log(max(v, 1)) if log_x else float(v)

    x = first
    bisect_next = False
    while b - a > 1:
        x = min(max(x, a + 1), b - 1)
        width = b - a
        sizes[x] = size_of(x)
        if sizes[x] <= budget:
            a = x
        else:
            b = x
        if b - a <= 1:
            break
        if bisect_next or (a not in sizes and b not in sizes):
            x, bisect_next = (a + b) // 2, False
            continue
        bisect_next = (b - a) * 2 > width
        if a in sizes and b in sizes and sizes[b] > sizes[a]:
            k = (math.log(sizes[b]) - math.log(sizes[a])) / (t(b) - t(a))
            anchor = a
        else:
            k, anchor = slope, a if a in sizes else b
        target = t(anchor) + (math.log(budget) - math.log(max(sizes[anchor], 1))) / k
        x = math.floor(math.exp(target) if log_x else target)
    return a if a >= lo else None


class _Encodes:
    """Memoised, timed encodes of one image (one size) at several qualities."""

    def __init__(self, img: Image.Image, fmt: str, options: Mapping[str, Any] | None = None) -> None:
        self.img, self.fmt, self.options = img, fmt, options
        self.cache: dict[int, tuple[bytes, float]] = {}

    def __call__(self, q: int) -> bytes:
        if q not in self.cache:
            t0 = time.perf_counter()
            data = encode_once(self.img, self.fmt, q, self.options)
            self.cache[q] = (data, time.perf_counter() - t0)
        return self.cache[q][0]

    def size(self, q: int) -> int:
        return len(self(q))

    def seconds(self, q: int) -> float:
        return self.cache[q][1]


#: Prior d log(bytes) / d quality near the bottom of the range (measured on Kodak), for the search.
_Q_SLOPE = 0.06


def encode_at_budget(
    rgb: np.ndarray | Image.Image,
    fmt: str,
    max_bytes: int,
    *,
    mode: str = "quality",
    min_quality: int | None = None,
    first_quality: int | None = None,
    options: Mapping[str, Any] | None = None,
) -> BaselineResult:
    """Encode ``rgb`` (uint8 HxWx3 or PIL image) as ``fmt`` in at most ``max_bytes`` bytes.

    ``fmt`` is one of ``jpeg``, ``webp``, ``avif``, ``jxl``. See the module docstring for the two
    modes; ``min_quality`` overrides the downscale mode's quality floor. Never raises for a budget
    that is too small: the result says ``fits=False`` and holds the smallest file it could make.
    ``first_quality``: a predicted quality (e.g. what a similar image needed at the same bpp); the
    search starts there instead of at the floor, which saves trials when the guess is close. The
    answer is the same as without it (the largest fitting quality; sizes grow with quality).
    ``options``: save options replacing the format's own (`encode_once`).
    """
    spec = _spec(fmt)
    if mode not in ("quality", "downscale"):
        raise UsageError(f"mode must be 'quality' or 'downscale', got {mode!r}")
    if int(max_bytes) < 1:
        raise UsageError(f"max_bytes must be ≥ 1, got {max_bytes}")
    max_bytes = int(max_bytes)
    img = _as_image(rgb)
    W, H = img.size
    t_start = time.perf_counter()
    sizes: dict[int, _Encodes] = {}  # coded width → encodes at that size

    def at_width(w: int) -> _Encodes:
        if w not in sizes:
            h = max(1, round(H * w / W))
            sizes[w] = _Encodes(img if w == W else img.resize((w, h), Image.Resampling.LANCZOS), spec.name,
                                options)
        return sizes[w]

    def result(enc: _Encodes, q: int, fits: bool, note: str) -> BaselineResult:
        return BaselineResult(
            data=enc(q), fmt=spec.name, quality=q, fits=fits, width=enc.img.width,
            height=enc.img.height, scale=enc.img.width / W, note=note, original_width=W,
            original_height=H, max_bytes=max_bytes, encode_s=time.perf_counter() - t_start,
            final_encode_s=enc.seconds(q), trials=sum(len(e.cache) for e in sizes.values()),
        )

    def best_q(enc: _Encodes, q_lo: int) -> int | None:
        first = q_lo if first_quality is None else min(max(int(first_quality), q_lo), spec.q_max)
        return largest_fitting(q_lo, spec.q_max, enc.size, max_bytes, first=first, slope=_Q_SLOPE)

    full = at_width(W)
    if mode == "quality":
        q = best_q(full, spec.q_min)
        if q is None:
            return result(full, spec.q_min, False, f"does not fit: even quality {spec.q_min} needs "
                          f"{full.size(spec.q_min)} B > {max_bytes} B")
        return result(full, q, True, f"quality {q}")

    floor = spec.downscale_min_quality if min_quality is None else int(min_quality)
    floor = min(max(floor, spec.q_min), spec.q_max)
    predicted = None if first_quality is None else min(max(int(first_quality), floor), spec.q_max)
    if predicted is not None and full.size(predicted) <= max_bytes:  # then the floor fits too
        q = best_q(full, predicted)
        assert q is not None
        return result(full, q, True, f"quality {q}")
    if full.size(floor) <= max_bytes:
        q = best_q(full, floor)
        assert q is not None
        return result(full, q, True, f"quality {q}")
    # The largest coded width at which the floor quality fits; bytes grow roughly with the pixel
    # count (slope 2 in log bytes vs log width), which gives the first guess.
    w_min = max(1, min(W, math.ceil(MIN_SIDE * W / min(W, H))))
    guess = math.floor(W * math.sqrt(max_bytes / full.size(floor)))
    w = largest_fitting(w_min, W - 1, lambda w: at_width(w).size(floor), max_bytes,
                        first=guess, slope=2.0, log_x=True) if w_min < W else None
    if w is None:
        tiny = at_width(w_min)
        return result(tiny, spec.q_min, False,
                      f"does not fit: even {tiny.img.width}×{tiny.img.height} at quality {spec.q_min} "
                      f"needs {tiny.size(spec.q_min)} B > {max_bytes} B")
    chosen = at_width(w)
    q = best_q(chosen, floor)
    assert q is not None  # the floor fits at this width
    w, h = chosen.img.size
    return result(chosen, q, True, f"downscaled to {w}×{h} to fit (quality {q})")


def decode_baseline(
    data: bytes | BaselineResult, size: tuple[int, int] | None = None
) -> np.ndarray:
    """Decode a baseline file to a uint8 HxWx3 RGB array.

    ``size`` = (width, height) to resample to (Lanczos) when the coded size differs — how a
    downscaled file is compared with its original. Given a `BaselineResult`, its original size is
    used by default. Raises `InputImageError` for undecodable or absurdly large files.
    """
    if isinstance(data, BaselineResult):
        if size is None:
            size = (data.original_width, data.original_height)
        data = data.data
    if data[4:8] == b"JXL " or data[:2] == b"\xff\x0a":
        register_jxl()
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.width * im.height > MAX_DECODE_PIXELS:
                raise InputImageError(f"baseline image {im.width}×{im.height} exceeds the decode limit")
            img = im.convert("RGB")
    except InputImageError:
        raise
    except Exception as exc:  # Pillow raises many types for bad data
        raise InputImageError(f"cannot decode baseline image: {exc}") from exc
    if size is not None and tuple(size) != img.size:
        img = img.resize(tuple(size), Image.Resampling.LANCZOS)
    return np.asarray(img, dtype=np.uint8)
