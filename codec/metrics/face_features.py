"""Face feature appearance: are the eyes and the mouth of a face still what they were?

The identity embedding (`codec.metrics.identity`) is nearly blind to some failures a person sees at
once: blue eyes decoded brown, eyes filled black ("black holes"), teeth smudged into a grey band. This
module compares the original and the decode *inside the feature regions* located from the original's
5 dlib landmarks (eye corners and nose base; the 68-point model is never used, see IDENTITY.md):

* **eyes** — centre = midpoint of an eye's two corners, ``w`` = their distance. The *iris disc* has
  radius `IRIS_RADIUS` × ``w`` around the centre; the *eye ellipse* has semi-axes
  `EYE_AXES` × ``w`` (the same ellipse the synthetic "eyes filled black" failure fills).
* **mouth** — on the face's midline: from the eyes' midpoint, perpendicular to the eye line (roll),
  (1 + `MOUTH_DROP`) × ``|v|`` down, ``v`` = eye midpoint → nose base (``|v|`` ≈ 0.7 of the inter-ocular
  distance ``iod``; it shortens with the head's pitch as the mouth's drop does); an ellipse of semi-axes
  `MOUTH_AXES` × ``iod``, rotated with the face. (For a frontal face: nose + `MOUTH_DROP` × ``v``.)

Numbers per face (larger = worse; the worse of the two eyes):

* ``eye_delta_e`` / ``mouth_delta_e`` — CIELAB ΔE*ab of the region's *mean* colour (weighted by the
  soft region mask), original vs decode. Mean colour, so that blur and fine texture loss do not count
  but a recoloured iris (blue → brown: ΔE ≈ 30–50) or a darkened mouth does.
* ``eye_chroma`` — the iris's mean chroma difference ``|C*_o − C*_d|`` (colour drained or invented).
* ``eye_hue`` — how far the *hue* of the iris turned (degrees), measured on the iris pixels only: the
  iris is located on the original (the darkest disc near the corners' midpoint: the gaze moves it),
  pupil, lashes, sclera and highlights are dropped by L* percentiles, and the SAME pixels' mean a*b*
  is compared in the decode (`iris_hue`). A blue-grey iris decoded brown-grey turns by ≈ 180° even at
  chroma 4, where the disc's ΔE stays near 5; colour drained along its own hue turns by 0°. Gated off
  for a neutral iris (mean C* < 2 in either image: its hue is noise).
* ``eye_structure`` / ``mouth_structure`` — ``1 − SSIM`` of the luma in the region's bounding box
  (Gaussian window σ = `SSIM_SIGMA` × region size, i.e. a few pixels for a 20-px eye), mask-weighted.
  Catches an eye filled with a flat colour or smeared, and smudged teeth.
* ``eye_shape`` — ``1 − SSIM`` as ``eye_structure`` but of both crops blurred first (σ = `SHAPE_BLUR` ×
  eye width, ≈ 7 px for a 55-px eye): blur-tolerant, so a classical codec's softened eye scores near 0
  while an iris redrawn at full sharpness (part of it turned into sclera, the pupil moved, the gaze
  turned) keeps its difference — at this blur what is compared is the layout of iris, pupil and
  sclera, not their edges. The latent decoder's failure that ``eye_structure`` misses: a reshaped
  iris costs less SSIM than a smear, but a smear costs nothing here (kodim04 at 0.15 bpp: latent 0.018,
  AVIF at the same bytes 0.0008; docs/bench/faces/eyes_kodim04_standard.md).
* ``eye_dark`` — the share of the eye ellipse that became a *dark blob*: decode L* below `DARK_L` where
  the original was at least `DARK_DROP` L* brighter (pupils, already dark, do not count).

Everything is numpy on small crops (≈ 0.3 ms per face); nothing here imports dlib — the caller passes
the landmarks (`codec.metrics.identity.compare_faces` computes them anyway).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: Iris disc radius per eye width (corner to corner): an iris is ≈ 0.4 of the eye width across.
IRIS_RADIUS = 0.22
#: Semi-axes (x, y) of the eye ellipse per eye width.
EYE_AXES = (0.6, 0.4)
#: Mouth centre below the nose base, in units of the eye-midpoint → nose-base distance (see the docstring).
MOUTH_DROP = 0.5
#: Mouth ellipse semi-axes (along the eye line, along the face's vertical) per inter-ocular distance.
MOUTH_AXES = (0.45, 0.22)
#: SSIM window σ per region size (eye width / mouth width), at least 1 px.
SSIM_SIGMA = 0.12
#: Pre-blur of `eye_shape` (σ per eye width): forgives a codec's softening, keeps a redrawn iris. 0.12 =
#: the best separation (Youden's J) of 0.05 / 0.08 / 0.12 on the training faces at 512 px between classical
#: decodes and redrawn irises incl. the milder ones (wedge 0.25, gaze 0.1): J 0.82 / 0.85 / 0.86
#: (scripts/probe_eye_metrics.py, docs/bench/faces/eye_shape_blur.md; 0.05 until 2026-12-02 late).
SHAPE_BLUR = 0.12
#: `eye_shape` only for eyes at least this wide (px): on smaller eyes a codec's blur (a few pixels,
#: whatever the eye's size) is not forgiven by a pre-blur that keeps the iris (≈ 1 px at 20 px), and
#: AVIF/WebP at the latent's bytes scored as high as the latent (training faces, features.md).
SHAPE_MIN_EYE_PX = 32.0
#: Semi-axes (along, across) per eye width of an open eye's opening between the lids (synthetic failures).
APERTURE = (0.45, 0.16)
#: Dark-blob test: decode L* below this, where the original was this much brighter.
DARK_L = 25.0
DARK_DROP = 20.0
#: Regions smaller than this (eye width in px) are not measured (numbers would be noise).
MIN_EYE_PX = 4.0
#: Iris search (the gaze moves the iris off the corners' midpoint): the iris disc's centre is the darkest
#: (mean L* of the original) position within these offsets (along, across the eye axis) per eye width.
IRIS_SEARCH = (0.25, 0.08)
#: Iris pixels: inside the located iris disc, the ORIGINAL's pixels whose L* lies between these
#: percentiles of the disc — darker ones are pupil, lashes and lid shadow, brighter ones sclera,
#: highlights and lid skin.
IRIS_BAND = (25.0, 75.0)
#: Iris hue turn gate (C*): counts fully where both mean chromas reach the upper value, not below the lower.
HUE_CHROMA = (2.0, 4.0)

FEATURE_KEYS = ("eye_delta_e", "eye_chroma", "eye_hue", "eye_structure", "eye_shape", "eye_dark",
                "mouth_delta_e", "mouth_structure")


@dataclass(frozen=True)
class FeatureScores:
    """Feature appearance of one face (larger = worse); ``None`` where a region was too small."""

    eye_delta_e: float | None = None
    eye_chroma: float | None = None
    eye_hue: float | None = None
    eye_structure: float | None = None
    eye_dark: float | None = None
    mouth_delta_e: float | None = None
    mouth_structure: float | None = None
    eye_shape: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Region:
    """An elliptical region: centre, semi-axes (px) and the rotation of its first axis (radians)."""

    cx: float
    cy: float
    ax: float
    ay: float
    angle: float = 0.0

    def bounds(self, h: int, w: int, pad: float = 1.0) -> tuple[int, int, int, int]:
        r = pad * max(self.ax, self.ay)
        x0, x1 = int(np.floor(self.cx - r)), int(np.ceil(self.cx + r)) + 1
        y0, y1 = int(np.floor(self.cy - r)), int(np.ceil(self.cy + r)) + 1
        return max(0, x0), max(0, y0), min(w, x1), min(h, y1)

    def mask(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """Soft mask (1 inside, linear 1-px fall-off at the edge) on the crop ``[y0:y1, x0:x1]``."""
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
        dx, dy = xx - self.cx, yy - self.cy
        c, s = np.cos(self.angle), np.sin(self.angle)
        u, v = c * dx + s * dy, -s * dx + c * dy
        rho = np.sqrt((u / max(self.ax, 0.5)) ** 2 + (v / max(self.ay, 0.5)) ** 2)
        edge = 1.0 / max(min(self.ax, self.ay), 1.0)  # one pixel in normalised radius
        return np.clip((1.0 - rho) / edge + 0.5, 0.0, 1.0)


@dataclass(frozen=True)
class FeatureRegions:
    """Feature regions of one face from its 5 landmarks (see the module docstring)."""

    irises: tuple[Region, Region]
    eyes: tuple[Region, Region]
    mouth: Region
    eye_width: tuple[float, float]
    iod: float


def feature_regions(landmarks: np.ndarray) -> FeatureRegions:
    """Eye, iris and mouth regions from dlib's 5 points (0,1 / 2,3 eye corners, 4 nose base)."""
    p = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    centres = [(p[0] + p[1]) / 2, (p[2] + p[3]) / 2]
    widths = [float(np.linalg.norm(p[0] - p[1])), float(np.linalg.norm(p[2] - p[3]))]
    axis = centres[0] - centres[1]
    if axis[0] < 0:
        axis = -axis
    angle = float(np.arctan2(axis[1], axis[0]))
    iod = float(np.linalg.norm(centres[0] - centres[1]))
    pairs = list(zip(centres, widths, strict=True))
    irises = tuple(Region(c[0], c[1], IRIS_RADIUS * w, IRIS_RADIUS * w, angle) for c, w in pairs)
    eyes = tuple(Region(c[0], c[1], EYE_AXES[0] * w, EYE_AXES[1] * w, angle) for c, w in pairs)
    mid = (centres[0] + centres[1]) / 2
    v = p[4] - mid
    # The mouth lies on the face's midline, perpendicular to the eye line through the eyes' midpoint; not
    # on the extension of v: the nose base protrudes, so a turned head swings v sideways past the mouth.
    down = np.array([-np.sin(angle), np.cos(angle)])
    down = down if float(down @ v) >= 0 else -down
    mc = mid + (1 + MOUTH_DROP) * float(np.linalg.norm(v)) * down
    mouth = Region(float(mc[0]), float(mc[1]), MOUTH_AXES[0] * iod, MOUTH_AXES[1] * iod, angle)
    return FeatureRegions(irises, eyes, mouth, (widths[0], widths[1]), iod)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ colour


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of sRGB ``uint8`` (or 0..255 float) pixels, last axis RGB."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124564, 0.3575761, 0.1804375],
                  [0.2126729, 0.7151522, 0.0721750],
                  [0.0193339, 0.1191920, 0.9503041]])
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def lab_to_srgb(lab: np.ndarray) -> np.ndarray:
    """Inverse of `srgb_to_lab` (float 0..255, clipped): used to make the synthetic failures."""
    lab = np.asarray(lab, dtype=np.float64)
    fy = (lab[..., 0] + 16) / 116
    f = np.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], -1)
    xyz = np.where(f > 6 / 29, f ** 3, 3 * (6 / 29) ** 2 * (f - 4 / 29)) * np.array([0.95047, 1.0, 1.08883])
    m_inv = np.array([[3.2404542, -1.5371385, -0.4985314],
                      [-0.9692660, 1.8760108, 0.0415560],
                      [0.0556434, -0.2040259, 1.0572252]])
    lin = np.clip(xyz @ m_inv.T, 0.0, 1.0)
    c = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)
    return np.clip(c * 255.0, 0.0, 255.0)


# ------------------------------------------------------------------------------------------ structure


def _gauss_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur with reflected borders (small crops only)."""
    r = max(1, int(np.ceil(2.5 * sigma)))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    out = x
    for axis in (0, 1):
        pad = [(0, 0), (0, 0)]
        pad[axis] = (r, r)
        p = np.pad(out, pad, mode="reflect" if out.shape[axis] > r else "edge")
        n = out.shape[axis]
        acc = np.zeros_like(out)
        for i, kv in enumerate(k):
            acc += kv * (p[i:i + n] if axis == 0 else p[:, i:i + n])
        out = acc
    return out


def _ssim_map(a: np.ndarray, b: np.ndarray, sigma: float) -> np.ndarray:
    """SSIM map of two luma crops in 0..255 (K1 0.01, K2 0.03, Gaussian window)."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = _gauss_blur(a, sigma), _gauss_blur(b, sigma)
    va = _gauss_blur(a * a, sigma) - mu_a ** 2
    vb = _gauss_blur(b * b, sigma) - mu_b ** 2
    cov = _gauss_blur(a * b, sigma) - mu_a * mu_b
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (va + vb + c2))


def _luma(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(rgb, dtype=np.float64) @ np.array([0.299, 0.587, 0.114])


# ------------------------------------------------------------------------------------------ metrics


def _crop(img: np.ndarray, b: tuple[int, int, int, int]) -> np.ndarray:
    x0, y0, x1, y1 = b
    return img[y0:y1, x0:x1]


def _mean_lab(lab: np.ndarray, m: np.ndarray) -> np.ndarray:
    return (lab * m[..., None]).sum(axis=(0, 1)) / max(float(m.sum()), 1e-9)


def _window(orig: np.ndarray, region: Region, min_side: int, pad: float | None = None,
            ) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """Bounds and soft mask of ``region`` in the image (None when too small or empty to measure)."""
    h, w = orig.shape[:2]
    b = region.bounds(h, w) if pad is None else region.bounds(h, w, pad=pad)
    if b[2] - b[0] < min_side or b[3] - b[1] < min_side:
        return None
    m = region.mask(*b)
    return None if m.sum() < 1.0 else (b, m)


def _colour(orig: np.ndarray, dec: np.ndarray, region: Region) -> tuple[float, float] | None:
    win = _window(orig, region, 2)
    if win is None:
        return None
    b, m = win
    lo, ld = _mean_lab(srgb_to_lab(_crop(orig, b)), m), _mean_lab(srgb_to_lab(_crop(dec, b)), m)
    chroma = abs(float(np.hypot(lo[1], lo[2]) - np.hypot(ld[1], ld[2])))
    return float(np.linalg.norm(lo - ld)), chroma


def _structure(orig: np.ndarray, dec: np.ndarray, region: Region, size: float, blur: float = 0.0,
               ) -> float | None:
    """``1 − SSIM`` of the luma in ``region`` (mask-weighted); ``blur`` > 0 blurs both crops first
    (σ = ``blur`` × ``size``)."""
    win = _window(orig, region, 3, pad=1.3)
    if win is None:
        return None
    b, m = win
    lo, ld = _luma(_crop(orig, b)), _luma(_crop(dec, b))
    if blur > 0:
        lo, ld = _gauss_blur(lo, blur * size), _gauss_blur(ld, blur * size)
    s = _ssim_map(lo, ld, max(1.0, SSIM_SIGMA * size))
    return float(1.0 - (s * m).sum() / m.sum())


def _dark(orig: np.ndarray, dec: np.ndarray, region: Region) -> float | None:
    win = _window(orig, region, 2)
    if win is None:
        return None
    b, m = win
    lo, ld = srgb_to_lab(_crop(orig, b))[..., 0], srgb_to_lab(_crop(dec, b))[..., 0]
    blob = (ld < DARK_L) & (lo - ld > DARK_DROP)
    return float((blob * m).sum() / m.sum())


def _worst(values: list[float | None]) -> float | None:
    v = [x for x in values if x is not None]
    return max(v) if v else None


def compare_features(original: np.ndarray, decoded: np.ndarray, landmarks: np.ndarray) -> FeatureScores:
    """Feature appearance numbers of the face with ``landmarks`` (of the ORIGINAL) in ``decoded``.

    Both images are RGB ``uint8`` of the same size; eyes narrower than `MIN_EYE_PX` are not measured.
    """
    reg = feature_regions(landmarks)
    eye_de: list[float | None] = []
    eye_c: list[float | None] = []
    eye_h: list[float | None] = []
    eye_s: list[float | None] = []
    eye_p: list[float | None] = []
    eye_k: list[float | None] = []
    for iris, eye, ew in zip(reg.irises, reg.eyes, reg.eye_width, strict=True):
        if ew < MIN_EYE_PX:
            continue
        col = _colour(original, decoded, iris)
        eye_de.append(None if col is None else col[0])
        eye_c.append(None if col is None else col[1])
        hue = iris_hue(original, decoded, iris, ew)
        eye_h.append(None if hue is None else hue[0])
        eye_s.append(_structure(original, decoded, eye, ew))
        big = ew >= SHAPE_MIN_EYE_PX
        eye_p.append(_structure(original, decoded, eye, ew, blur=SHAPE_BLUR) if big else None)
        eye_k.append(_dark(original, decoded, eye))
    mouth_de = mouth_s = None
    if reg.iod >= 2 * MIN_EYE_PX:
        col = _colour(original, decoded, reg.mouth)
        mouth_de = None if col is None else col[0]
        mouth_s = _structure(original, decoded, reg.mouth, 2 * reg.mouth.ax)
    return FeatureScores(_worst(eye_de), _worst(eye_c), _worst(eye_h), _worst(eye_s), _worst(eye_k), mouth_de,
                         mouth_s, _worst(eye_p))


# ------------------------------------------------------------------ synthetic failures (calibration, tests)


def _blend_region(img: np.ndarray, new: np.ndarray, region: Region, grow: float = 1.0) -> np.ndarray:
    h, w = img.shape[:2]
    r = Region(region.cx, region.cy, region.ax * grow, region.ay * grow, region.angle)
    b = r.bounds(h, w)
    m = r.mask(*b)[..., None]
    out = np.asarray(img, dtype=np.float64).copy()
    x0, y0, x1, y1 = b
    out[y0:y1, x0:x1] = out[y0:y1, x0:x1] * (1 - m) + np.asarray(new, np.float64)[y0:y1, x0:x1] * m
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _hue_turned(img: np.ndarray, min_chroma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``img`` with every pixel's CIELAB hue turned by 180° and chroma raised to ≥ ``min_chroma``
    (lightness kept), the original chroma per pixel, and the original in CIELAB."""
    lab = srgb_to_lab(img)
    c = np.hypot(lab[..., 1], lab[..., 2])
    hue = np.arctan2(lab[..., 2], lab[..., 1]) + np.pi
    c2 = np.maximum(c, min_chroma)
    return lab_to_srgb(np.stack([lab[..., 0], c2 * np.cos(hue), c2 * np.sin(hue)], -1)), c, lab


def recolour_irises(img: np.ndarray, landmarks: np.ndarray, min_chroma: float = 25.0) -> np.ndarray:
    """Synthetic failure: both irises' hue rotated by 180° in CIELAB (blue ↔ brown), chroma at least
    ``min_chroma`` (so a grey iris gets a visible colour too); lightness and texture kept."""
    reg = feature_regions(landmarks)
    new, _c, _lab = _hue_turned(img, min_chroma)
    out = np.asarray(img)
    for iris in reg.irises:
        out = _blend_region(out, new, iris, grow=1.1)
    return out


def fill_eyes_black(img: np.ndarray, landmarks: np.ndarray, level: float = 10.0) -> np.ndarray:
    """Synthetic failure: both eye ellipses filled near-black (the fidelity bench's ``eyes_black``)."""
    reg = feature_regions(landmarks)
    out = np.asarray(img)
    for eye in reg.eyes:
        out = _blend_region(out, np.full(out.shape, level), eye)
    return out


def smear_eyes(img: np.ndarray, landmarks: np.ndarray, sigma: float = 0.3) -> np.ndarray:
    """Synthetic failure: both eyes blurred (σ = ``sigma`` × eye width): iris and pupil smeared away."""
    reg = feature_regions(landmarks)
    out = np.asarray(img)
    for eye, ew in zip(reg.eyes, reg.eye_width, strict=True):
        s = max(1.0, sigma * ew)
        blurred = np.stack([_gauss_blur(out[..., k].astype(np.float64), s) for k in range(3)], -1)
        out = _blend_region(out, blurred, eye, grow=1.2)
    return out


def smear_mouth(img: np.ndarray, landmarks: np.ndarray, sigma: float = 0.08) -> np.ndarray:
    """Synthetic failure: the mouth blurred (σ = ``sigma`` × inter-ocular distance): teeth smudged."""
    reg = feature_regions(landmarks)
    arr = np.asarray(img)
    s = max(1.0, sigma * reg.iod)
    blurred = np.stack([_gauss_blur(arr[..., k].astype(np.float64), s) for k in range(3)], -1)
    return _blend_region(arr, blurred, reg.mouth, grow=1.2)


# ------------------------------------------------------------------------------------------ iris hue


def locate_iris(orig_lab: np.ndarray, iris: Region, width: float) -> Region:
    """The iris disc moved to where the iris is: the position within `IRIS_SEARCH` of the corners'
    midpoint whose disc has the lowest mean L* in the original (iris and pupil are darker than the
    sclera; the narrow search across the eye keeps it off the lashes and brows)."""
    h, w = orig_lab.shape[:2]
    c, s = np.cos(iris.angle), np.sin(iris.angle)
    step = max(1.0, width / 24)
    best, best_l = iris, np.inf
    for du in np.arange(-IRIS_SEARCH[0] * width, IRIS_SEARCH[0] * width + 1e-9, step):
        for dv in np.arange(-IRIS_SEARCH[1] * width, IRIS_SEARCH[1] * width + 1e-9, step):
            cand = Region(iris.cx + c * du - s * dv, iris.cy + s * du + c * dv, iris.ax, iris.ay, iris.angle)
            b = cand.bounds(h, w)
            if b[2] - b[0] < 2 or b[3] - b[1] < 2:
                continue
            m = cand.mask(*b)
            if m.sum() < 1.0:
                continue
            lum = float((_crop(orig_lab[..., 0], b) * m).sum() / m.sum())
            if lum < best_l:
                best, best_l = cand, lum
    return best


def iris_weights(orig_lab: np.ndarray, disc: np.ndarray) -> np.ndarray:
    """Weights of the iris pixels in a crop: the soft ``disc`` mask times a 0/1 band of the ORIGINAL's L*
    (`IRIS_BAND` percentiles of the disc's pixels; pupil, lashes, sclera and highlights are outside)."""
    inside = disc > 0.5
    if inside.sum() < 4:
        return np.zeros_like(disc)
    lo, hi = np.percentile(orig_lab[..., 0][inside], IRIS_BAND)
    band = (orig_lab[..., 0] >= lo) & (orig_lab[..., 0] <= hi)
    return disc * band


def iris_hue(orig: np.ndarray, dec: np.ndarray, iris: Region,
             width: float) -> tuple[float, float, float] | None:
    """(hue turn in degrees, chroma-gated; original chroma; decode chroma) of the iris pixels' mean colour.

    The iris is located on the original (`locate_iris`, ``width`` = the eye's corner distance) and the
    SAME pixel set (`iris_weights`) is averaged in both images; the angle between the two mean a*b*
    vectors is taken: a blue-grey iris decoded brown-grey turns by ≈ 180° however low its chroma, while
    colour drained or boosted along the iris's own hue turns by 0°. The angle counts in full where both
    chromas are at least ``HUE_CHROMA[1]`` and not at all below ``HUE_CHROMA[0]`` (linear in between):
    the hue of a neutral grey iris is noise, not a colour.
    """
    h, w = orig.shape[:2]
    pad = Region(iris.cx, iris.cy, iris.ax + IRIS_SEARCH[0] * width, iris.ay + IRIS_SEARCH[0] * width)
    x0, y0, x1, y1 = pad.bounds(h, w)
    if x1 - x0 < 3 or y1 - y0 < 3:
        return None
    lab_o = srgb_to_lab(orig[y0:y1, x0:x1])
    local = Region(iris.cx - x0, iris.cy - y0, iris.ax, iris.ay, iris.angle)
    r = locate_iris(lab_o, local, width)
    b = r.bounds(y1 - y0, x1 - x0)
    if b[2] - b[0] < 2 or b[3] - b[1] < 2:
        return None
    lo = _crop(lab_o, b)
    wts = iris_weights(lo, r.mask(*b))
    if wts.sum() < 2.0:
        return None
    ab_o = _mean_lab(lo, wts)[1:]
    ab_d = _mean_lab(srgb_to_lab(_crop(dec[y0:y1, x0:x1], b)), wts)[1:]
    c_o, c_d = float(np.hypot(*ab_o)), float(np.hypot(*ab_d))
    cross = float(ab_o[0] * ab_d[1] - ab_o[1] * ab_d[0])
    deg = float(np.degrees(np.arctan2(abs(cross), float(ab_o @ ab_d))))
    gate = float(np.clip((min(c_o, c_d) - HUE_CHROMA[0]) / (HUE_CHROMA[1] - HUE_CHROMA[0]), 0.0, 1.0))
    return deg * gate, c_o, c_d


def iris_low_chroma(img: np.ndarray, landmarks: np.ndarray, chroma: float = 10.0) -> bool:
    """Whether a located iris disc of ``img`` has a median C* ≤ ``chroma`` (a grey-ish iris: the
    synthetic `recolour_irises_subtle` changes it; a saturated one it leaves alone)."""
    reg = feature_regions(landmarks)
    lab = srgb_to_lab(img)
    h, w = img.shape[:2]
    for iris, ew in zip(reg.irises, reg.eye_width, strict=True):
        disc = locate_iris(lab, iris, ew)
        b = disc.bounds(h, w)
        m = disc.mask(*b) > 0.5
        if m.sum() < 4:
            continue
        crop = _crop(lab, b)
        if float(np.median(np.hypot(crop[..., 1], crop[..., 2])[m])) <= chroma:
            return True
    return False


def recolour_irises_subtle(img: np.ndarray, landmarks: np.ndarray, min_chroma: float = 4.0,
                           skin_chroma: tuple[float, float] = (10.0, 16.0)) -> np.ndarray:
    """Synthetic failure, the quiet kind: the hue of the irises' LOW-chroma pixels rotated by 180°
    (blue-grey ↔ brown-grey), their chroma raised to at least ``min_chroma``; pixels of chroma above
    ``skin_chroma[1]`` (lid skin, a saturated iris) are kept, with a linear fade from ``skin_chroma[0]``.
    Lightness and texture kept. Made on the whole located iris disc (`locate_iris`), independent of
    `iris_weights`' choice of pixels."""
    reg = feature_regions(landmarks)
    new, c, lab = _hue_turned(img, min_chroma)
    keep = np.clip((c - skin_chroma[0]) / (skin_chroma[1] - skin_chroma[0]), 0.0, 1.0)[..., None]
    new = keep * np.asarray(img, np.float64) + (1 - keep) * new
    out = np.asarray(img)
    for iris, ew in zip(reg.irises, reg.eye_width, strict=True):
        out = _blend_region(out, new, locate_iris(lab, iris, ew), grow=1.1)
    return out


def _sclera(lab: np.ndarray, eye: Region) -> np.ndarray:
    """Mean CIELAB of the eye ellipse's brightest pixels (L* above its 85th percentile): the sclera."""
    b = eye.bounds(*lab.shape[:2])
    m = eye.mask(*b) > 0.5
    crop = _crop(lab, b)[m]
    if crop.shape[0] < 4:
        return crop.mean(0) if crop.size else np.array([80.0, 0.0, 0.0])
    return crop[crop[:, 0] >= np.percentile(crop[:, 0], 85)].mean(0)


def reshape_irises(img: np.ndarray, landmarks: np.ndarray, share: float = 0.5) -> np.ndarray:
    """Synthetic failure, the latent decoder's kind (kodim04, docs/bench/faces/eyes_kodim04_standard.md):
    the irises redrawn at full sharpness with a wedge of sclera where iris was — the part of each located
    iris disc beyond ``1 − 2·share`` of its radius toward the outer corner painted the eye's sclera colour
    (`_sclera`), the rest kept. A chord, not a blur: nothing gets softer."""
    reg = feature_regions(landmarks)
    lab = srgb_to_lab(img)
    h, w = img.shape[:2]
    out = np.asarray(img, np.float64).copy()
    c, s = np.cos(reg.eyes[0].angle), np.sin(reg.eyes[0].angle)
    mid = (reg.eyes[0].cx + reg.eyes[1].cx) / 2
    for iris, eye, ew in zip(reg.irises, reg.eyes, reg.eye_width, strict=True):
        disc = locate_iris(lab, iris, ew)
        x0, y0, x1, y1 = disc.bounds(h, w)
        m = disc.mask(x0, y0, x1, y1)
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
        outward = 1.0 if eye.cx >= mid else -1.0  # along the eye axis, away from the face's midline
        u = outward * (c * (xx - disc.cx) + s * (yy - disc.cy)) / max(disc.ax, 1.0)
        v = np.abs(-s * (xx - eye.cx) + c * (yy - eye.cy))  # across the eye axis: stay inside the lids
        cut = (np.clip((u - (1 - 2 * share)) * disc.ax + 0.5, 0.0, 1.0) * m
               * np.clip(APERTURE[1] * ew - v + 0.5, 0.0, 1.0))
        white = lab_to_srgb(_sclera(lab, eye)[None, None, :]).reshape(3).astype(np.float64)
        out[y0:y1, x0:x1] = out[y0:y1, x0:x1] * (1 - cut[..., None]) + white * cut[..., None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def turn_gaze(img: np.ndarray, landmarks: np.ndarray, shift: float = 0.2) -> np.ndarray:
    """Synthetic failure: the gaze turned — each eye's content moved ``shift`` eye widths along the eye
    axis inside the eye ellipse (iris and pupil slide toward one corner), at full sharpness."""
    from scipy import ndimage  # calibration and tests only: not on the encoder's import path

    reg = feature_regions(landmarks)
    arr = np.asarray(img)
    out = arr
    for eye, ew in zip(reg.eyes, reg.eye_width, strict=True):
        dx, dy = shift * ew * np.cos(eye.angle), shift * ew * np.sin(eye.angle)
        opening = Region(eye.cx, eye.cy, APERTURE[0] * ew, APERTURE[1] * ew, eye.angle)
        moved = ndimage.shift(arr.astype(np.float64), (dy, dx, 0), order=1, mode="nearest")  # bilinear
        out = _blend_region(out, moved, opening)
    return out
