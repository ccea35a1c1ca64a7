"""Invented detail: is the decode's fine structure in a region further from the original than no fine
structure at all? (issue 12: small faces)

For a face of 20–39 px (below the identity check's 40 px, where dlib's embedding distance is ≈ 0.65 for
every codec, docs/bench/faces/small_faces.md) the latent codec and a classical codec fail differently:
AVIF or WebP at a few hundred bytes *blur* the face (right layout, no detail), the latent *redraws* it
(sharp eyes and mouth in the wrong places, a melted face). A person sees the second as a different
face; blur-blind metrics (the embedding, a low-pass colour difference) score the two alike.

The number is the energy of the decode's high-pass error relative to the original's high-pass energy,
on the luma inside the box:

    r = Σ (HP(decoded) − HP(original))² / Σ HP(original)²,   HP(x) = x − G_σ * x,  σ = box size / 10

A decode without any detail (a blur of the original) scores r ≈ 1; detail that matches the original
lowers it towards 0; detail that does not (invented) raises it above 1 — it adds its own energy to the
error. σ = size/10 keeps the features of a face (eyes ≈ size/5, mouth) in the high-pass part and the
head's layout and shading in the low-pass part, which the block guard already checks.
"""

from __future__ import annotations

import numpy as np

from codec.metrics.fidelity import luma

#: σ of the low-pass as a share of the box size
SIGMA_FRACTION = 0.1
#: the original's high-pass energy is at least this per pixel (grey levels²) in the denominator, so a
#: flat region (no detail to keep) does not divide by ~0
MIN_ENERGY_PER_PX = 4.0


def detail_error(original: np.ndarray, decoded: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """``r`` (see the module docstring) of ``decoded`` against ``original`` (both (H, W, 3) uint8 of the
    same size) inside ``box`` = (left, top, right, bottom), clipped to the image.

    Computed on a crop grown by 3σ + 2 px so the blur sees the same context as on the whole image."""
    from scipy.ndimage import gaussian_filter  # here, not at import: the web process imports the floor

    if original.shape != decoded.shape or original.ndim != 3:
        raise ValueError(f"images must be (H, W, 3) of one shape, got {original.shape} and {decoded.shape}")
    h, w = original.shape[:2]
    left, top, right, bottom = (int(v) for v in box)
    left, top, right, bottom = max(0, left), max(0, top), min(w, right), min(h, bottom)
    if right <= left or bottom <= top:
        raise ValueError(f"box {box} is empty inside a {w}×{h} image")
    sigma = SIGMA_FRACTION * max(right - left, bottom - top)
    m = int(np.ceil(3 * sigma)) + 2
    y0, y1, x0, x1 = max(0, top - m), min(h, bottom + m), max(0, left - m), min(w, right + m)
    a, b = luma(original[y0:y1, x0:x1]), luma(decoded[y0:y1, x0:x1])
    hp_a = a - gaussian_filter(a, sigma, mode="reflect")
    hp_b = b - gaussian_filter(b, sigma, mode="reflect")
    inner = (slice(top - y0, bottom - y0), slice(left - x0, right - x0))
    err = float(((hp_b[inner] - hp_a[inner]) ** 2).sum())
    ref = float((hp_a[inner] ** 2).sum())
    return err / max(ref, MIN_ENERGY_PER_PX * hp_a[inner].size)
