"""The seam score (`codec.metrics.seams`): block edges a patch layer adds, not the original's own edges."""

from __future__ import annotations

import numpy as np
import pytest

from codec.metrics.seams import seam_parts, seam_score


def _photo(h: int = 96, w: int = 128, seed: int = 3) -> np.ndarray:
    """A smooth gradient with mild noise: no block structure of its own."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = 60 + 0.8 * x + 0.5 * y
    rgb = np.stack([base, base * 0.9 + 10, base * 0.7 + 20], -1) + rng.normal(0, 2, (h, w, 3))
    return np.clip(rgb, 0, 255).astype(np.uint8)


RECTS = [(32, 32, 32, 32), (64, 32, 32, 32)]


def test_same_image_scores_zero() -> None:
    rgb = _photo()
    assert seam_score(rgb, rgb, RECTS) == pytest.approx(0.0)


def test_blockiness_inside_the_windows_scores_high() -> None:
    rgb = _photo()
    blocky = rgb.astype(np.float64).copy()
    for y in range(32, 64, 8):  # 8×8 means: what a classical codec shows at its lowest quality
        for x in range(32, 96, 8):
            blocky[y:y + 8, x:x + 8] = blocky[y:y + 8, x:x + 8].mean(axis=(0, 1))
    score = seam_score(rgb, blocky.astype(np.uint8), RECTS)
    assert score > 2.0


def test_a_pasted_window_that_steps_against_its_surround_scores_high() -> None:
    rgb = _photo()
    pasted = rgb.astype(np.int16).copy()
    pasted[32:64, 32:64] += 14  # a patch a few grey levels off the decode around it
    parts = seam_parts(rgb, np.clip(pasted, 0, 255).astype(np.uint8), RECTS[:1])
    assert parts["border"] - parts["control"] > 5.0
    assert seam_score(rgb, np.clip(pasted, 0, 255).astype(np.uint8), RECTS[:1]) > 5.0


def test_a_blur_is_not_a_seam() -> None:
    from scipy.ndimage import uniform_filter

    rgb = _photo()
    blur = np.stack([uniform_filter(rgb[..., c].astype(np.float64), 5) for c in range(3)], -1)
    assert seam_score(rgb, blur.round().astype(np.uint8), RECTS) < 0.5


def test_the_originals_own_edges_on_the_lattice_do_not_count() -> None:
    """An 8-px checkerboard has a strong edge on every lattice line; kept as it is, no seam."""
    y, x = np.mgrid[0:96, 0:128]
    board = (((y // 8) + (x // 8)) % 2 * 160 + 40).astype(np.uint8)
    rgb = np.repeat(board[..., None], 3, axis=2)
    noisy = np.clip(rgb.astype(np.int16) + np.random.default_rng(1).integers(-2, 3, rgb.shape), 0, 255)
    assert seam_score(rgb, noisy.astype(np.uint8), RECTS) < 0.5


def test_nothing_to_judge_and_bad_shapes() -> None:
    rgb = _photo()
    assert seam_score(rgb, rgb, []) == 0.0
    assert seam_score(rgb[:3, :3], rgb[:3, :3], [(0, 0, 3, 3)]) == 0.0
    with pytest.raises(ValueError):
        seam_score(rgb, rgb[:, :-1], RECTS)
    with pytest.raises(ValueError):
        seam_score(rgb[..., 0], rgb[..., 0], RECTS)
