"""A real browser (Debian chromium + Playwright) against a live server and a real worker."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gallery.models import Photo

from .browser import chromium, needs_chromium
from .test_integration import wait_for

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    needs_chromium,
]


@pytest.fixture
def browser_page(monkeypatch):
    with chromium(monkeypatch) as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(30_000)
        yield page


@pytest.fixture
def upload_file(tmp_path, kodak_image):
    """A 384×256 downscaled Kodak photo: a real photo, small enough for a quick encode."""
    from PIL import Image

    path = tmp_path / "parrots.png"
    with Image.open(kodak_image(23)) as img:
        img.resize((384, 256), Image.Resampling.LANCZOS).save(path)
    return path


def test_upload_toggle_and_statistics(
    live_server, gpu_worker, browser_page, upload_file, staff_user, password, media_root
):
    page = browser_page
    ARTIFACTS.mkdir(exist_ok=True)
    base = live_server.url

    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", staff_user.username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    assert "No photos yet" in page.content()
    page.screenshot(path=str(ARTIFACTS / "01-empty-gallery.png"))

    page.goto(f"{base}/upload/")
    page.set_input_files("#id_files", str(upload_file))
    page.check("input[name=size][value=standard]")
    page.click("#upload-button")
    item = page.locator(".upload-item").first
    item.locator("progress").wait_for()
    page.wait_for_selector(".upload-item.is-ready, .upload-item.is-error", timeout=180_000)
    page.screenshot(path=str(ARTIFACTS / "02-upload-ready.png"))
    assert "is-ready" in item.get_attribute("class"), item.inner_text()
    assert item.locator("progress").evaluate("p => p.value") == 100
    # the row shows the thumbnail as soon as the worker has rendered it
    page.wait_for_function(
        "() => { const i = document.querySelector('.upload-item img.upload-thumb');"
        " return i && i.complete && i.naturalWidth > 0; }",
        timeout=120_000,
    )

    # READY (with its thumbnail) no longer waits for the JPEG/WebP/AVIF comparisons: the same task
    # makes them right after, so wait for the JPEG row before opening the photo page.
    photo = Photo.objects.get()
    jpeg = wait_for(
        lambda: photo.comparisons.filter(fmt="jpeg").first(), 180, "the JPEG comparison after READY"
    )
    item.locator("a").click()
    page.wait_for_selector("#variant-toggle")
    # The display preview is the real cache file (versioned URL), and it really decoded.
    page.wait_for_function(
        """() => { const i = document.querySelector('.viewer-stage img[data-key=latent]');
                   return i && i.complete && i.naturalWidth > 0 && i.currentSrc.includes('?v='); }""",
        timeout=120_000,
    )
    latent_img = page.locator(".viewer-stage img[data-key=latent]")
    assert latent_img.evaluate("i => i.naturalWidth") == 384
    assert (
        page.evaluate(
            "u => fetch(u).then(r => r.headers.get('content-type'))", latent_img.get_attribute("src")
        )
        == "image/webp"
    )
    page.screenshot(path=str(ARTIFACTS / "03-photo-latent.png"))

    # Keyboard: from the latent radio, the right arrow moves to JPEG.
    page.focus("input[name=variant][value=latent]")
    page.keyboard.press("ArrowRight")
    jpeg_img = page.locator(".viewer-stage img[data-key=jpeg]")
    jpeg_img.wait_for(state="visible")
    assert latent_img.is_hidden()
    page.wait_for_function(
        "() => { const i = document.querySelector('.viewer-stage img[data-key=jpeg]');"
        " return i.complete && i.naturalWidth > 0; }"
    )
    caption = page.inner_text("#viewer-caption")
    assert re.search(rf"JPEG · {jpeg.bytes:,} bytes", caption), caption
    page.screenshot(path=str(ARTIFACTS / "04-photo-jpeg.png"))

    # Mouse: back to the latent, then AVIF if the codec could make one.
    page.click("label.toggle-option:has(input[value=latent])")
    latent_img.wait_for(state="visible")
    assert "Latent" in page.inner_text("#viewer-caption")

    page.goto(f"{base}/stats/")
    assert page.locator("svg.chart").count() == 2
    assert page.inner_text("#stat-latent").strip() != "0\xa0bytes"
    page.screenshot(path=str(ARTIFACTS / "05-statistics.png"), full_page=True)

    page.goto(f"{base}/")
    page.wait_for_function(
        "() => { const i = document.querySelector('.tile img');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )
    page.screenshot(path=str(ARTIFACTS / "06-gallery.png"))
