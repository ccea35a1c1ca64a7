"""Statistics numbers and the server-rendered SVG charts."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone

from gallery import charts, previews, stats
from gallery.models import Photo, StagedUpload

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


def _bytes_under(root) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


@pytest.mark.django_db
def test_stored_total_is_what_is_on_disk_and_both_ratios(user, media_root):
    """Everything stored = the files under the media root (latents, comparisons, preview cache)
    + the staged originals in the database; the two ratios follow from the rows."""
    a = ready_photo(user, latent_bytes=400, original_bytes=40_000, comparisons=("jpeg", "webp"))
    b = ready_photo(user, latent_bytes=700, original_bytes=25_000, comparisons=("jpeg",))
    waiting = pending_photo(user)
    default_storage.save(previews.CacheFile(a, previews.SPECS["thumb"]).name, ContentFile(b"p" * 3000))
    s = stats.collect(with_queue=False)
    staged = len(bytes(StagedUpload.objects.get(photo=waiting).data))
    assert s.stored_total == _bytes_under(media_root) + staged
    assert s.ratio == pytest.approx((a.original_bytes + b.original_bytes) / (a.latent_bytes + b.latent_bytes))
    everything = a.original_bytes + b.original_bytes + waiting.original_bytes
    assert s.stored_ratio == pytest.approx(everything / s.stored_total)
    assert s.stored_ratio < s.ratio  # comparisons, previews and the staged original cost something


@pytest.mark.django_db
def test_staged_originals_are_shown_as_what_they_are(client, staff_user, user, media_root):
    pending_photo(user)
    pending_photo(user)
    ready_photo(user)
    client.force_login(staff_user)
    body = client.get(reverse("gallery:stats")).content.decode()
    assert "not kept" not in body
    assert "2 staged originals" in body and "still on disk, waiting for a worker" in body
    assert "Everything stored" in body and 'id="stat-stored-ratio"' in body


@pytest.mark.django_db
def test_downscaled_latents_are_counted(client, staff_user, user, media_root):
    photos = [ready_photo(user, width=64, height=48) for _ in range(3)]
    coded = [(32, 24), (64, 48), None]  # downscaled, full size, no info (older row)
    for photo, size in zip(photos, coded, strict=True):
        info = {"coded_width": size[0], "coded_height": size[1]} if size else {}
        Photo.objects.filter(pk=photo.pk).update(codec_info=info)
    expected = sum(1 for size in coded if size and size != (64, 48))
    assert stats.collect(with_queue=False).latents_downscaled == expected
    client.force_login(staff_user)
    assert f"{expected} coded downscaled" in client.get(reverse("gallery:stats")).content.decode()


FACE_INFOS = [
    {"faces_found": 2, "faces_kept": True, "protection_bytes": 300, "target": "faithful", "target_met": True},
    {"faces_found": 1, "faces_kept": False, "protection_bytes": 120, "target": "faithful",
     "target_met": False},
    {"faces_found": 0, "text_checked": False, "target": "faithful", "target_met": True},
    {"faces_found": 3, "faces_kept": True, "protection_bytes": 0},
    {},  # encoded before the identity check
]


@pytest.mark.django_db
def test_faces_target_and_protection_shares(client, staff_user, user, media_root):
    for info in FACE_INFOS:
        photo = ready_photo(user)
        Photo.objects.filter(pk=photo.pk).update(codec_info=info)
    pending = pending_photo(user)  # not ready: not counted
    Photo.objects.filter(pk=pending.pk).update(codec_info={"faces_found": 5})
    checked = [i for i in FACE_INFOS if "faces_found" in i]
    with_faces = [i for i in checked if i["faces_found"] > 0]
    kept = [i for i in with_faces if i.get("faces_kept")]
    targeted = [i for i in FACE_INFOS if "target" in i]
    met = [i for i in targeted if i["target_met"]]
    spent = sum(i.get("protection_bytes", 0) for i in FACE_INFOS)
    f = stats.collect(with_queue=False).faces
    assert (f.checked, f.with_faces, f.faces_kept) == (len(checked), len(with_faces), len(kept))
    assert (f.targeted, f.target_met) == (len(targeted), len(met))
    assert f.protection_bytes == spent
    assert f.protected_photos == sum(1 for i in FACE_INFOS if i.get("protection_bytes"))
    assert f.faces_share == pytest.approx(len(with_faces) / len(checked))
    assert f.kept_share == pytest.approx(len(kept) / len(with_faces))
    assert f.target_share == pytest.approx(len(met) / len(targeted))
    client.force_login(staff_user)
    body = client.get(reverse("gallery:stats")).content.decode()
    assert f"{len(with_faces)} of {len(checked)} checked photos with faces" in body
    assert f"quality target met by {len(met)} of {len(targeted)}" in body
    assert f"{spent:,} bytes spent on protection" in body
    assert "Second look" not in body  # none ran


TEXT_INFOS = [
    {"faces_found": 0, "text_cer": 0.0, "text_numbers_kept": True, "text_words_kept": True},  # kept
    {"faces_found": 0, "text_cer": 0.5},  # over the CER floor
    {"faces_found": 0, "text_cer": 0.0, "text_numbers_kept": False},  # a number changed
    {"faces_found": 0, "text_cer": 0.02, "text_words_kept": False},  # a word changed
    {"faces_found": 1, "faces_kept": True, "text_cer": 0.01},  # kept
    {"faces_found": 0, "text_cer": "0.1"},  # odd value: not counted
    {"faces_found": 0},  # no readable text
]


@pytest.mark.django_db
def test_text_verdicts_are_counted(client, staff_user, user, media_root):
    for info in TEXT_INFOS:
        photo = ready_photo(user)
        Photo.objects.filter(pk=photo.pk).update(codec_info=info)
    f = stats.collect(with_queue=False).faces
    assert (f.with_text, f.text_kept) == (5, 2)
    assert f.text_kept_share == pytest.approx(0.4)
    client.force_login(staff_user)
    body = client.get(reverse("gallery:stats")).content.decode()
    assert "Text: 5 photos with readable text, reading the same in 2 (40 %)." in body


@pytest.mark.django_db
def test_residual_layers_are_counted(client, staff_user, user, media_root):
    for info in ({"residual_layer_bytes": 7000}, {"residual_layer_bytes": 3000}, {},
                 {"residual_layer_bytes": "9"}):  # odd value: not counted
        photo = ready_photo(user)
        Photo.objects.filter(pk=photo.pk).update(codec_info=info)
    s = stats.collect(with_queue=False)
    assert (s.residual_photos, s.residual_bytes) == (2, 10_000)
    client.force_login(staff_user)
    body = client.get(reverse("gallery:stats")).content.decode()
    assert "2 photos, 10,000 bytes of their latent files." in body


@pytest.mark.django_db
def test_second_looks_are_counted(client, staff_user, user, media_root):
    audits = [{"probed": True, "found": 0, "re_encoded": False},
              {"probed": True, "found": 2, "re_encoded": True},
              {"probed": True, "found": 1, "re_encoded": False}, {"probed": False, "found": 0}, None]
    for audit in audits:
        photo = ready_photo(user)
        Photo.objects.filter(pk=photo.pk).update(codec_info={"faces_found": 0}, small_faces_audit=audit)
    f = stats.collect(with_queue=False).faces
    assert (f.second_looks, f.second_look_found, f.second_look_recoded) == (3, 2, 1)
    client.force_login(staff_user)
    body = client.get(reverse("gallery:stats")).content.decode()
    assert ("Second look for small faces after upload: 3 photos probed, faces found in 2, coded again: 1."
            in body)


@pytest.mark.django_db
def test_setup_waiting_and_outbox_on_the_page(client, staff_user, user, media_root):
    from gallery.models import OutboxMessage
    from gallery.worker.pipeline import WAITING_PREFIX

    pending_photo(user, error=f"{WAITING_PREFIX}the model weights are missing (fetch-weights)")
    OutboxMessage.objects.create(task="gallery.encode_photo", args=["x"])
    client.force_login(staff_user)
    body = client.get(reverse("gallery:stats")).content.decode()
    assert "1 photo waiting on a setup problem" in body and "the model weights are missing" in body
    assert "1 task message not yet published" in body


@pytest.mark.django_db
def test_queue_split_by_task_with_a_real_broker(redis_url, _test_broker):
    """Messages published to a Redis database of this test alone (no worker consumes them)."""
    from urllib.parse import urlparse

    from .conftest import broker_at

    url = urlparse(redis_url)._replace(path="/13").geturl()
    app = _test_broker
    sent = {"gallery.encode_photo": 3, "gallery.render_previews": 2, "gallery.sweep": 1,
            "gallery.relay_outbox": 1, "gallery.make_comparisons": 2}
    def purge() -> None:
        with app.connection_for_write() as conn:
            for queue in ("gpu", "maintenance"):
                conn.default_channel.queue_purge(queue)

    with broker_at(app, url):
        purge()
        try:
            for name, n in sent.items():
                for _ in range(n):
                    app.send_task(name, args=["00000000-0000-0000-0000-000000000000"])
            split = stats.queue_split()
        finally:
            purge()
    assert split.available, split.error
    kinds = {}
    for name, n in sent.items():
        kinds[stats.TASK_KINDS[name]] = kinds.get(stats.TASK_KINDS[name], 0) + n
    assert (split.encodes, split.previews, split.maintenance, split.comparisons) == (
        kinds["encodes"], kinds["previews"], kinds["maintenance"], kinds["comparisons"])
    assert split.other == split.unread == 0 and split.total == sum(sent.values())
