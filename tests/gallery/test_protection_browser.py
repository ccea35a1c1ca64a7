"""Real chromium: the protection badges are visible on the photo page and the grid, the statistics
page fits a phone, and none of it breaks the Content-Security-Policy (factory rows, no worker)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from gallery import previews
from gallery.models import Photo, StagedUpload

from .browser import chromium, needs_chromium
from .factories import image_bytes, pending_photo, ready_photo

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), needs_chromium]

RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(e.violatedDirective + " " + (e.blockedURI || "inline"));
});
"""
CHANGED = {"faces_found": 2, "faces_kept": False, "worst_identity_distance": 0.523,
           "worst_landmark_shift": 0.071, "protection_bytes": 410, "target": "faithful",
           "target_met": False, "fidelity_floor_met": False, "fidelity_min": 0.31, "fidelity_floor": 0.4,
           "coded_width": 48, "coded_height": 32}
KEPT = {"faces_found": 1, "faces_kept": True, "worst_identity_distance": 0.2, "protection_bytes": 120}


def _with_thumb(photo: Photo) -> None:
    """A real thumbnail cache file, so the tile shows an image."""
    cache_file = previews.CacheFile(photo, previews.SPECS["thumb"])
    default_storage.save(cache_file.name, ContentFile(image_bytes(96, 64, "WEBP")))


def test_badges_and_statistics_in_a_browser(live_server, staff_user, password, monkeypatch, media_root):
    changed = ready_photo(staff_user, title="changed.png", width=96, height=64)
    kept = ready_photo(staff_user, title="kept.png", width=96, height=64)
    Photo.objects.filter(pk=changed.pk).update(codec_info=CHANGED)
    Photo.objects.filter(pk=kept.pk).update(codec_info=KEPT)
    for p in (changed, kept):
        _with_thumb(p)
    pending_photo(staff_user, title="waiting.png")
    assert StagedUpload.objects.count() == 1
    ARTIFACTS.mkdir(exist_ok=True)
    base = live_server.url
    problems: list[str] = []
    with chromium(monkeypatch) as browser:
        for width, height in ((1366, 900), (390, 844)):
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(30_000)
            page.add_init_script(RECORD_VIOLATIONS)
            page.goto(f"{base}/accounts/login/")
            page.fill("#id_username", staff_user.username)
            page.fill("#id_password", password)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/")
            pages = ((f"/photos/{changed.pk}/", "photo-changed"), (f"/photos/{kept.pk}/", "photo-kept"),
                     ("/", "grid"), ("/stats/", "stats"))
            for path, name in pages:
                page.goto(base + path)
                page.wait_for_load_state("networkidle")
                scroll, inner = page.evaluate("() => [document.documentElement.scrollWidth, innerWidth]")
                if scroll > inner:
                    problems.append(f"{path} at {width}px: scrollWidth {scroll} > {inner}")
                problems += [f"{path}: CSP {v}" for v in page.evaluate("window.__cspViolations")]
                page.screenshot(path=str(ARTIFACTS / f"protection-{name}-{width}.png"), full_page=True)
                if name == "photo-changed":
                    for label in ("Faces changed", "Below the fidelity floor", "Target not met"):
                        badge = page.locator("#protection .badge-warn", has_text=label)
                        assert badge.is_visible(), label
                    assert "worst identity distance 0.52" in page.inner_text("#protection")
                if name == "photo-kept":
                    assert page.locator("#protection .badge-ok", has_text="1 face checked: kept").is_visible()
                if name == "grid":
                    tile = page.locator(".tile", has_text="changed.png")
                    assert tile.locator('[data-role="protection"]', has_text="Faces changed").is_visible()
                    kept_tile = page.locator(".tile", has_text="kept.png")
                    assert kept_tile.locator('[data-role="protection"]').count() == 0
                if name == "stats":
                    assert page.locator("#stat-stored-ratio").is_visible()
                    assert "1 staged original" in page.inner_text("#stat-original-sub")
                    assert page.locator("#stat-faces").is_visible()
            page.close()
    assert not problems, "\n".join(problems)


def test_upload_row_shows_the_badge_when_the_photo_becomes_ready(
    live_server, user, password, monkeypatch, media_root, redis_url, _test_broker, tmp_path
):
    """The upload page's JavaScript reads the status JSON: once the photo is READY (here the row
    is updated as the worker's commit would, on a broker database no worker reads), the row
    shows the warning badge and its one-line reason."""
    from urllib.parse import urlparse

    from .conftest import broker_at

    path = tmp_path / "face.png"
    path.write_bytes(image_bytes(96, 64, "PNG"))
    base = live_server.url
    own_db = urlparse(redis_url)._replace(path="/13").geturl()
    with broker_at(_test_broker, own_db), chromium(monkeypatch) as browser:
        page = browser.new_page(viewport={"width": 390, "height": 844})
        page.set_default_timeout(30_000)
        page.add_init_script(RECORD_VIOLATIONS)
        page.goto(f"{base}/accounts/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/")
        page.goto(f"{base}/upload/")
        page.set_input_files("#id_files", str(path))
        page.click("#upload-button")
        page.wait_for_function("() => /waiting for a worker/i.test("
                               "document.querySelector('.upload-item .state-text').textContent)")
        photo = Photo.objects.get()
        Photo.objects.filter(pk=photo.pk).update(
            status=Photo.Status.READY, latent_bytes=250, latent_bpp=250 * 8 / (96 * 64),
            codec_model="taesd", codec_info=CHANGED,
        )
        item = page.locator(".upload-item")
        page.wait_for_selector(".upload-item.is-ready", timeout=30_000)
        badge = item.locator('[data-role="protection"][data-key="faces-changed"]')
        badge.wait_for()
        assert badge.inner_text().strip() == "Faces changed"
        text = item.inner_text()
        assert "Target not met" in text and "worst identity distance 0.52" in text
        item.screenshot(path=str(ARTIFACTS / "protection-upload-row-390.png"))
        assert page.evaluate("window.__cspViolations") == []
        with _test_broker.connection_for_write() as conn:
            for queue in ("gpu", "maintenance"):
                conn.default_channel.queue_purge(queue)
