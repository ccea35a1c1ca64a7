"""Server-rendered SVG charts: the geometry is computed here, the markup lives in templates
(``gallery/charts/*.svg``) so every label is escaped by the template engine. No JavaScript."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.template.defaultfilters import filesizeformat

WIDTH, HEIGHT = 640, 260
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 72, 28, 26, 44


@dataclass
class Tick:
    pos: float
    label: str
    anchor: str = "middle"


@dataclass
class Bar:
    x: float
    y: float
    w: float
    h: float
    count: int
    label: str


@dataclass
class Histogram:
    title: str
    bars: list[Bar]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    width: int = WIDTH
    height: int = HEIGHT
    plot_left: float = PAD_LEFT
    plot_bottom: float = HEIGHT - PAD_BOTTOM
    plot_right: float = WIDTH - PAD_RIGHT

    @property
    def empty(self) -> bool:
        return not self.bars


@dataclass
class Series:
    name: str
    css: str
    points: str  # "x,y x,y …" for <polyline>
    last_label: str
    dots: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class LineChart:
    title: str
    series: list[Series]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    width: int = WIDTH
    height: int = HEIGHT
    plot_left: float = PAD_LEFT
    plot_bottom: float = HEIGHT - PAD_BOTTOM
    plot_right: float = WIDTH - PAD_RIGHT
    plot_top: float = PAD_TOP

    @property
    def empty(self) -> bool:
        return not self.series


def _nice_step(span: float, target: int) -> float:
    raw = span / max(1, target)
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for mult in (1, 2, 2.5, 5, 10):
        if raw <= mult * mag:
            return mult * mag
    return 10 * mag


def histogram(values: list[int], title: str = "Latent sizes", bins: int = 12) -> Histogram:
    """Histogram of byte sizes with ``bins`` equal-width (nicely rounded) bins."""
    if not values:
        return Histogram(title, [], [], [])
    lo, hi = min(values), max(values)
    # At least ±10 % around a single size, so equal sizes still get a readable axis.
    span = max(hi - lo, hi * 0.2, 10)
    step = _nice_step(span, bins)
    mid = (lo + hi) / 2
    start = max(0, math.floor(min(lo, mid - span / 2) / step) * step)
    nbins = max(1, math.floor((max(hi, mid + span / 2) - start) / step) + 1)
    counts = [0] * nbins
    for v in values:
        counts[min(nbins - 1, int((v - start) // step))] += 1
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    top = max(counts)
    bar_w = plot_w / nbins
    bars = []
    for i, c in enumerate(counts):
        h = plot_h * c / top
        lo_edge, hi_edge = start + i * step, start + (i + 1) * step
        bars.append(
            Bar(
                x=PAD_LEFT + i * bar_w + 1,
                y=PAD_TOP + plot_h - h,
                w=max(1.0, bar_w - 2),
                h=h,
                count=c,
                label=f"{_bytes_label(lo_edge)}–{_bytes_label(hi_edge)}: {c} photo{'s' * (c != 1)}",
            )
        )
    every = max(1, math.ceil(nbins / 6))
    x_ticks = [
        Tick(PAD_LEFT + i * bar_w, _bytes_label(start + i * step)) for i in range(0, nbins + 1, every)
    ]
    if x_ticks:
        x_ticks[0].anchor = "start" if len(x_ticks) > 1 else "middle"
        if len(x_ticks) > 1 and x_ticks[-1].pos >= WIDTH - PAD_RIGHT - 1:
            x_ticks[-1].anchor = "end"
    ystep = max(1, math.ceil(_nice_step(top, 4)))
    y_ticks = [Tick(PAD_TOP + plot_h - plot_h * k / top, str(k)) for k in range(0, top + 1, ystep)]
    return Histogram(title, bars, x_ticks, y_ticks)


def growth(rows: list[tuple[date, int, int]], title: str = "Storage over time") -> LineChart:
    """Cumulative original vs latent bytes per day on a log scale (they differ by ~100×).

    ``rows``: (day, original bytes added that day, latent bytes added that day), any order. Only
    real data points are drawn: the first point is the first day's total (no invented zero before
    it); a single day is a single dot.
    """
    rows = sorted(r for r in rows if r[1] or r[2])
    if not rows:
        return LineChart(title, [], [], [])
    first, last = rows[0][0], rows[-1][0]
    span_days = max(1, (last - first).days)
    cum_o = cum_l = 0
    pts_o: list[tuple[date, int]] = []
    pts_l: list[tuple[date, int]] = []
    for day, o, lat in rows:
        cum_o += o
        cum_l += lat
        pts_o.append((day, cum_o))
        pts_l.append((day, cum_l))
    positive = [v for _, v in pts_o + pts_l if v > 0]
    lo_exp = math.floor(math.log10(min(positive)))
    hi_exp = max(math.ceil(math.log10(max(positive))), lo_exp + 1)
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM

    one_day = first == last

    def xy(day: date, value: int) -> tuple[float, float]:
        x = PAD_LEFT + (plot_w / 2 if one_day else plot_w * (day - first).days / span_days)
        v = math.log10(max(value, 10**lo_exp))
        y = PAD_TOP + plot_h - plot_h * (v - lo_exp) / (hi_exp - lo_exp)
        return round(x, 1), round(y, 1)

    def series(name: str, css: str, pts: list[tuple[date, int]]) -> Series:
        coords = [xy(d, v) for d, v in pts]
        return Series(
            name, css, " ".join(f"{x},{y}" for x, y in coords), filesizeformat(pts[-1][1]), dots=coords
        )

    y_ticks = [Tick(xy(first, v)[1], _bytes_label(v)) for v in _log_ticks(10**lo_exp, 10**hi_exp)]
    step = max(1, math.ceil(span_days / 6))
    x_ticks = [
        Tick(xy(first + timedelta(days=d), 1)[0], (first + timedelta(days=d)).strftime("%b %d"))
        for d in range(0, (last - first).days + 1, step)
    ]
    x_ticks[0].anchor = "middle" if one_day else "start"
    if len(x_ticks) > 1 and x_ticks[-1].pos >= WIDTH - PAD_RIGHT - 1:
        x_ticks[-1].anchor = "end"
    return LineChart(
        title,
        [series("Originals (uploaded)", "orig", pts_o), series("Latents (stored)", "latent", pts_l)],
        x_ticks,
        y_ticks,
    )


def _bytes_label(n: float) -> str:
    """Compact binary-unit label: 512 B, 1.5 KB, 10 KB, 2 MB (same units as filesizeformat)."""
    for unit, size in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value >= 10 or value == int(value) else f"{value:.1f} {unit}"
    return f"{n:.0f} B"


def _log_ticks(lo: float, hi: float) -> list[float]:
    """1, 10, 100 × powers of 1024 inside [lo, hi] (at least the two ends)."""
    ticks = [m * 1024**k for k in range(0, 5) for m in (1, 10, 100) if lo <= m * 1024**k <= hi]
    return ticks or [lo, hi]
