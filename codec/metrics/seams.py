"""Seams: block edges a patch layer adds that the original does not have (issue 12).

A patch layer pastes blocks of a classical codec over the latent's decode. At a low quality the
classical codec's own transform blocks show (WebP's 4×4/16×16 and AVIF's 4–64 px transforms, all on
the 8-px lattice of the atlas, which is the image's block lattice), and a pasted block's border can
step against the latent around it. A person sees a grid of squares across a face; the whole-image
metrics and the identity embedding hardly see it (the astronaut at 0.10 bpp: a WebP q0 layer over the
face scored the same identity as the unprotected file, docs/bench/faces/fallback.md).

The number, per patched window, on the BT.601 luma, for every pixel edge on the 8-px lattice of the
window (its border included) and, as the control, every edge half way between (offset 4):

    excess = max(0, |ΔD| − max(|ΔO|, (|ΔD₋| + |ΔD₊|) / 2))

where ΔD is the step across the edge in the decode, ΔO the same step in the original (a real edge
there is no seam) and ΔD₋, ΔD₊ the steps one pixel before and after it (a step no larger than the
gradient around it is texture, not a block edge). The score is the mean excess on the lattice minus
the mean excess on the control edges, in grey levels (0–255): ≈ 0 for a decode without block
structure, a few grey levels for visible seams. Blockiness measures of this kind (a difference between
block-boundary and in-block steps) are the classical no-reference JPEG measures; here the original is
at hand, so its own edges are not counted.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from codec.metrics.fidelity import luma

#: a patch layer whose windows step more than this on their borders or 8-px lattice than in between
#: shows a grid of squares. Set by eye on the calibration training faces (docs/bench/faces/seams.md):
#: ≥ 4 the squares are plain at 1:1 (WebP ≤ q5, AVIF ≤ q15 on most faces, WebP q20–30 on a
#: high-contrast one), ≈ 3.5 faint, ≤ 3 hardly seen; the plain latent scores ≤ 0.35. The encoder's
#: face guard refuses face layers over it (`codec.encoder.guard`); the gallery names it on the photo page.
SEAM_FLOOR = 3.5

#: the transform lattice of the classical codecs (their smallest block sizes are 4 and 8; 8 keeps the
#: control edges at offset 4 off the 8-px lines)
LATTICE = 8


def _edge_masks(height: int, width: int, rects: Sequence[tuple[int, int, int, int]]
                ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(vertical, horizontal) edge masks, shape (H, W), of the windows ``rects``: ``border`` (a window's
    own edges), ``lattice`` (the 8-px lines inside it) and ``control`` (the lines half way between). A
    vertical edge at x lies between columns x−1 and x; only 2 ≤ x ≤ W − 2 can be judged."""
    masks = {k: (np.zeros((height, width), bool), np.zeros((height, width), bool))
             for k in ("border", "lattice", "control")}
    for x0, y0, w, h in rects:
        x1, y1 = min(width, x0 + w), min(height, y0 + h)
        x0, y0 = max(0, x0), max(0, y0)
        if x1 <= x0 or y1 <= y0:
            continue
        for kind, offsets in (("border", (0, x1 - x0)), ("lattice", range(LATTICE, x1 - x0, LATTICE)),
                              ("control", range(LATTICE // 2, x1 - x0, LATTICE))):
            for dx in offsets:
                if 2 <= x0 + dx <= width - 2:
                    masks[kind][0][y0:y1, x0 + dx] = True
        for kind, offsets in (("border", (0, y1 - y0)), ("lattice", range(LATTICE, y1 - y0, LATTICE)),
                              ("control", range(LATTICE // 2, y1 - y0, LATTICE))):
            for dy in offsets:
                if 2 <= y0 + dy <= height - 2:
                    masks[kind][1][y0 + dy, x0:x1] = True
    return masks


def _excess_vertical(d: np.ndarray, o: np.ndarray) -> np.ndarray:
    """Excess step of every vertical edge (between x−1 and x) of luma ``d`` over ``o``; (H, W), zero
    where the neighbours needed are outside the image (x < 2 or x > W − 2)."""
    out = np.zeros_like(d)
    step_d = np.abs(np.diff(d, axis=1))  # step_d[:, x-1] = |d[:, x] − d[:, x-1]|
    step_o = np.abs(np.diff(o, axis=1))
    # for edge x (2 ≤ x ≤ W−2): step at x-1 index, before = x-2, after = x
    centre = step_d[:, 1:-1]
    around = (step_d[:, :-2] + step_d[:, 2:]) / 2.0
    out[:, 2:-1] = np.maximum(0.0, centre - np.maximum(step_o[:, 1:-1], around))
    return out


def seam_parts(original: np.ndarray, decoded: np.ndarray,
               rects: Sequence[tuple[int, int, int, int]]) -> dict[str, float]:
    """Mean excess step (grey levels) on the windows' borders, their inner 8-px lattice and the control
    lines (see the module docstring); NaN for a kind without an edge to judge."""
    o = np.asarray(original)
    d = np.asarray(decoded)
    if o.shape != d.shape or o.ndim != 3 or o.shape[2] != 3:
        raise ValueError(f"seams need two (H, W, 3) images of one size, got {o.shape} and {d.shape}")
    height, width = o.shape[:2]
    if height < 4 or width < 4 or not rects:
        return {"border": float("nan"), "lattice": float("nan"), "control": float("nan")}
    # only the windows' neighbourhood (a face on a 12 MP photo is a few hundred pixels)
    x0 = max(0, min(r[0] for r in rects) - 2)
    y0 = max(0, min(r[1] for r in rects) - 2)
    x1 = min(width, max(r[0] + r[2] for r in rects) + 2)
    y1 = min(height, max(r[1] + r[3] for r in rects) + 2)
    if x0 > 0 or y0 > 0 or x1 < width or y1 < height:
        o, d = o[y0:y1, x0:x1], d[y0:y1, x0:x1]
        rects = [(x - x0, y - y0, w, h) for x, y, w, h in rects]
        height, width = o.shape[:2]
    lo, ld = luma(o).astype(np.float64), luma(d).astype(np.float64)
    ev = _excess_vertical(ld, lo)
    eh = _excess_vertical(ld.T, lo.T).T
    out = {}
    for kind, (mv, mh) in _edge_masks(height, width, rects).items():
        values = np.concatenate([ev[mv], eh[mh]])
        out[kind] = float(values.mean()) if values.size else float("nan")
    return out


def seam_score(original: np.ndarray, decoded: np.ndarray,
               rects: Sequence[tuple[int, int, int, int]]) -> float:
    """How much more the decode steps on the windows' borders or their 8-px lattice than half way
    between (grey levels, the larger of the two; see the module docstring), over the windows ``rects``
    = (x, y, w, h). ``original`` and ``decoded``: (H, W, 3) uint8 of one size. 0.0 when nothing can be
    judged (windows under 4 px, no windows)."""
    parts = seam_parts(original, decoded, rects)
    control = parts["control"]
    if np.isnan(control):
        return 0.0
    steps = [parts[k] - control for k in ("border", "lattice") if not np.isnan(parts[k])]
    return float(max(steps)) if steps else 0.0
