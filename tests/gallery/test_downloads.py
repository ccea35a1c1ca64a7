"""Get it back: the photo decoded from its latent by a real worker, as PNG and JPEG at full size,
served as a cached file; the page says it is decoded, not the original. One small real photo
goes through the real encode (effort fast); a browser then downloads the PNG at both viewports.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from PIL import Image

from gallery import previews
from gallery.models import Photo

from .browser import chromium, needs_chromium
from .test_integration import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "downloads"
W, H = 200, 136  # not a multiple of 8: the decode must be cropped back to the photo's size


@pytest.fixture
def ready_real_photo(client, user, gpu_worker, kodak_image, tmp_path, media_root) -> Photo:
    path = tmp_path / "lighthouse.png"
    with Image.open(kodak_image(19)) as img:
        img.convert("RGB").resize((W, H), Image.Resampling.LANCZOS).save(path)
    client.force_login(user)
    with open(path, "rb") as fh:
        response = client.post(
            reverse("gallery:upload"), {"size": "small", "files": fh}, HTTP_ACCEPT="application/json"
        )
    assert response.status_code == 201, response.content
    photo_id = response.json()["results"][0]["id"]

    def ready():
        photo = Photo.objects.get(pk=photo_id)
        assert photo.status != "failed", photo.error
        return photo if photo.is_ready else None

    return wait_for(ready, 240, "the photo to become ready")


def _fetch_download(client: Client, photo: Photo, fmt: str):
    url = reverse("gallery:download", args=[photo.pk, fmt])

    def served():
        r = client.get(url)
        assert r.status_code in (200, 202), r.status_code
        return r if r.status_code == 200 else None

    return wait_for(served, 120, f"the {fmt} download")


def test_png_and_jpeg_decoded_at_full_size(client, user, other_user, ready_real_photo):
    photo = ready_real_photo
    first = client.get(reverse("gallery:download", args=[photo.pk, "png"]))
    assert first.status_code in (200, 202)
    if first.status_code == 202:  # the worker is decoding: a page that says so and refreshes
        body = first.content.decode()
        assert "Decoding" in body and 'http-equiv="refresh"' in body and "not the original" in body

    png = _fetch_download(client, photo, "png")
    assert png["Content-Type"] == "image/png" and png["X-Content-Type-Options"] == "nosniff"
    assert 'attachment; filename="lighthouse-decoded.png"' in png["Content-Disposition"]
    img = Image.open(io.BytesIO(b"".join(png.streaming_content)))
    img.load()
    assert img.format == "PNG" and img.size == (W, H) and img.mode == "RGB"
    assert len(img.getcolors(1 << 20)) > 500  # a real photo, not a flat placeholder

    jpeg = _fetch_download(client, photo, "jpeg")
    assert jpeg["Content-Type"] == "image/jpeg"
    jimg = Image.open(io.BytesIO(b"".join(jpeg.streaming_content)))
    assert jimg.format == "JPEG" and jimg.size == (W, H)

    # cached as preview-style files of the latent (the second request decodes nothing)
    assert previews.lookup(photo, "png") is not None and previews.lookup(photo, "jpeg") is not None
    page = client.get(reverse("gallery:detail", args=[photo.pk])).content.decode()
    assert "decoded from the latent" in page and reverse("gallery:download", args=[photo.pk, "png"]) in page
    # nobody else gets it
    bob = Client()
    bob.force_login(other_user)
    for fmt in ("png", "jpeg"):
        assert bob.get(reverse("gallery:download", args=[photo.pk, fmt])).status_code == 404
    assert Client().get(reverse("gallery:download", args=[photo.pk, "png"])).status_code == 404
    assert client.get(reverse("gallery:download", args=[photo.pk, "tiff"])).status_code == 404


@pytest.mark.browser
@needs_chromium
def test_browser_downloads_png(live_server, client, user, ready_real_photo, monkeypatch):
    photo = ready_real_photo
    cookie = {"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with chromium(monkeypatch) as browser:
        for name, viewport in (("desktop", (1366, 900)), ("phone", (390, 844))):
            context = browser.new_context(
                viewport={"width": viewport[0], "height": viewport[1]}, accept_downloads=True
            )
            context.add_cookies([cookie])
            page = context.new_page()
            page.goto(f"{live_server.url}/photos/{photo.pk}/")
            page.locator("#downloads").scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / f"{name}-photo-downloads.png"))
            with page.expect_download(timeout=120_000) as info:
                page.click("a[data-download=png]")
            download = info.value
            assert download.suggested_filename == "lighthouse-decoded.png"
            target = ARTIFACTS / f"{name}-{download.suggested_filename}"
            download.save_as(str(target))
            with Image.open(target) as img:
                assert img.format == "PNG" and img.size == (W, H)
            width = page.evaluate("() => [document.documentElement.scrollWidth, innerWidth]")
            assert width[0] <= width[1]
            context.close()
