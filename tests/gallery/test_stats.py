"""Statistics numbers and the server-rendered SVG charts."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone

from gallery import charts, previews, stats
from gallery.models import Photo

from .factories import pending_photo, ready_photo


def test_histogram_counts_every_value():
    values = [100, 150, 180, 900, 1000, 5000, 5100, 5200]
    hist = charts.histogram(values)
    assert sum(b.count for b in hist.bars) == len(values)
    assert not hist.empty and hist.x_ticks and hist.y_ticks
    tallest = max(hist.bars, key=lambda b: b.count)
    assert tallest.h == pytest.approx(charts.HEIGHT - charts.PAD_TOP - charts.PAD_BOTTOM)
    assert all(b.x >= charts.PAD_LEFT for b in hist.bars)


def test_histogram_single_value_and_empty():
    assert charts.histogram([]).empty
    hist = charts.histogram([700, 700, 700])
    assert [b.count for b in hist.bars if b.count] == [3]


def _points(series) -> list[tuple[float, float]]:
    return [tuple(map(float, p.split(","))) for p in series.points.split()]


def test_growth_is_cumulative_on_log_scale_from_real_points_only():
    d0 = date(2026, 1, 1)
    rows = [(d0 + timedelta(days=2), 2_000_000, 20_000), (d0, 1_000_000, 10_000)]
    chart = charts.growth(rows)
    orig, latent = chart.series
    assert orig.last_label == "2.9\xa0MB" and latent.last_label == "29.3\xa0KB"
    # One point per day with data, no invented zero before the first: the first point is the
    # first day's own total, at the left edge, above the baseline.
    o_pts, l_pts = _points(orig), _points(latent)
    assert len(o_pts) == len(l_pts) == len(rows) and len(orig.dots) == len(rows)
    assert o_pts[0][0] == charts.PAD_LEFT and o_pts[-1][0] == charts.WIDTH - charts.PAD_RIGHT
    assert all(y < charts.HEIGHT - charts.PAD_BOTTOM for _, y in o_pts)
    # Cumulative: originals rise (smaller y) and stay above the latents.
    assert o_pts[-1][1] < o_pts[0][1] and l_pts[-1][1] < l_pts[0][1]
    assert all(o[1] < lat[1] for o, lat in zip(o_pts, l_pts, strict=True))
    assert chart.y_ticks[0].label.endswith("KB") and chart.y_ticks[-1].label.endswith("MB")
    assert charts.growth([]).empty


def test_growth_of_a_single_day_is_one_dot():
    chart = charts.growth([(date(2026, 3, 4), 50_000, 700)])
    for s in chart.series:
        assert len(_points(s)) == 1 and len(s.dots) == 1
    assert [t.label for t in chart.x_ticks] == ["Mar 04"]


@pytest.mark.django_db
def test_collect_totals(user, media_root):
    a = ready_photo(user, latent_bytes=400, original_bytes=40_000, comparisons=("jpeg", "webp"))
    b = ready_photo(
        user,
        latent_bytes=600,
        original_bytes=30_000,
        comparisons=("jpeg",),
        when=timezone.now() - timedelta(days=3),
    )
    pending_photo(user)
    pending_photo(user, status=Photo.Status.FAILED, error="bad")
    cache_file = previews.CacheFile(a, previews.SPECS["thumb"])
    default_storage.save(cache_file.name, ContentFile(b"x" * 1234))
    s = stats.collect(with_queue=False)
    assert s.by_status == {"pending": 1, "encoding": 0, "ready": 2, "failed": 1}
    assert s.total_photos == 4
    assert s.latent_bytes == 1000 and s.ready_original_bytes == 70_000
    assert s.ratio == pytest.approx(70.0)
    assert s.mean_bpp == pytest.approx((a.latent_bpp + b.latent_bpp) / 2)
    comp_total = sum(c.bytes for p in (a, b) for c in p.comparisons.all())
    assert s.comparison_bytes == comp_total
    assert {c.fmt: c.count for c in s.comparisons} == {"jpeg": 2, "webp": 1}
    assert (s.preview_files, s.preview_bytes) == (1, 1234)
    assert s.staged_count == 2 and s.staged_bytes > 0
    assert s.stored_total == 1000 + comp_total + 1234 + s.staged_bytes
    assert sum(bar.count for bar in s.histogram.bars) == 2
    assert len(s.growth.series) == 2
    assert [f.error for f in s.failures] == ["bad"]


@pytest.mark.django_db
def test_stats_page_renders_charts_and_queue_state(client, staff_user, user, media_root, settings):
    ready_photo(user, latent_bytes=500)
    ready_photo(user, latent_bytes=900, when=timezone.now() - timedelta(days=1))
    client.force_login(staff_user)
    body = client.get(reverse("gallery:stats")).content.decode()
    assert body.count('class="bar"') >= 2 and "polyline" in body
    assert "Photos by status" in body and "Preview cache" in body
    assert 'id="queue-length"' in body or "broker cannot be reached" in body


@pytest.mark.django_db
def test_stats_page_empty_state(client, staff_user):
    client.force_login(staff_user)
    body = client.get(reverse("gallery:stats")).content.decode()
    assert "No ready photos yet" in body and "No failed encodes." in body
