"""Figures of the bench: the rate–distortion plot and the side-by-side crop grids.

matplotlib is used through its object API with the Agg canvas (no pyplot, no global backend switch).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

CROP = 256
LABEL_H = 38
COLORS = {"latent": "#d62728", "seed": "#ff7f0e", "jpeg": "#7f7f7f", "webp": "#2ca02c",
          "avif": "#1f77b4", "jxl": "#9467bd"}


def pick_crop(rgb: np.ndarray, size: int = CROP) -> tuple[int, int, int]:
    """(x, y, side) of the square window with the most detail (gradient energy), where artefacts show."""
    h, w = rgb.shape[:2]
    side = min(size, h, w)
    g = rgb.astype(np.float32).mean(axis=2)
    energy = np.zeros_like(g)
    energy[:, 1:] += np.abs(np.diff(g, axis=1))
    energy[1:, :] += np.abs(np.diff(g, axis=0))
    ii = np.pad(energy.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    best, best_xy = -1.0, (0, 0)
    for y in range(0, h - side + 1, 16):
        for x in range(0, w - side + 1, 16):
            s = ii[y + side, x + side] - ii[y, x + side] - ii[y + side, x] + ii[y, x]
            if s > best:
                best, best_xy = float(s), (x, y)
    return best_xy[0], best_xy[1], side


def _font(size: int = 13) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """DejaVu Sans from matplotlib's data (has ×, –, ≤); Pillow's default font as a fallback."""
    try:
        import matplotlib

        return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts/ttf/DejaVuSans.ttf"), size)
    except (ImportError, OSError):
        pass
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # pragma: no cover - Pillow without FreeType
        return ImageFont.load_default()


def crop_grid(rows: Sequence[Sequence[tuple[np.ndarray, list[str]]]], path: Path, title: str) -> None:
    """Save a grid: one row per image, one labelled panel per (crop, label lines); ``title`` may hold
    line breaks."""
    font, title_font = _font(13), _font(15)
    side = max(p[0].shape[0] for r in rows for p in r)
    ncol = max(len(r) for r in rows)
    top = 8 + 19 * (title.count("\n") + 1)
    grid = Image.new("RGB", (ncol * (side + 6) + 6, top + len(rows) * (side + LABEL_H + 6)), "white")
    draw = ImageDraw.Draw(grid)
    draw.text((6, 5), title, fill="black", font=title_font)
    for i, row in enumerate(rows):
        y = top + i * (side + LABEL_H + 6)
        for j, (crop, lines) in enumerate(row):
            x = 6 + j * (side + 6)
            for k, line in enumerate(lines[:2]):
                draw.text((x, y + 2 + 17 * k), line, fill="black", font=font)
            grid.paste(Image.fromarray(crop), (x, y + LABEL_H))
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path, optimize=True)


def _agg_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def rd_plot(rows: list[dict[str, Any]], codecs: Sequence[str], path: Path, n_images: int) -> None:
    """bpp vs MS-SSIM and bpp vs LPIPS: each codec's rows that fit (dots) and per-budget means (line)."""
    fig = _agg_figure(12, 4.8)
    axes = fig.subplots(1, 2)
    for ax, key, label in ((axes[0], "ms_ssim", "MS-SSIM (higher is better)"),
                           (axes[1], "lpips", "LPIPS-alex (lower is better)")):
        for name in codecs:
            pts = [r for r in rows if r["codec"] == name and r["fits"] and r.get(key) is not None]
            if name == "seed":  # one file per image, repeated per budget: plot each once
                pts = list({r["image"]: r for r in pts}.values())
            if not pts:
                continue
            color = COLORS.get(name)
            ax.scatter([r["bpp"] for r in pts], [r[key] for r in pts], s=9, alpha=0.25, color=color)
            groups: dict[float, list[dict]] = {}
            for r in pts:
                groups.setdefault(-1.0 if name == "seed" else r["target_bpp"], []).append(r)
            xs = [statistics.fmean(g["bpp"] for g in grp) for _, grp in sorted(groups.items())]
            ys = [statistics.fmean(g[key] for g in grp) for _, grp in sorted(groups.items())]
            counts = [len(grp) for _, grp in sorted(groups.items())]
            fit = "/".join(str(c) for c in counts)
            ax.plot(xs, ys, marker="o", color=color, label=f"{name} (n={fit} of {n_images})")
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Rate–distortion: means over the images that fit each budget (dots: single images)",
                 fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
