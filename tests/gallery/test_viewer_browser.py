"""The photo viewer and the responsive pages in a real browser (Debian chromium + Playwright), at a
desktop (1366×900) and a phone (390×844) viewport: fit, zoom to 100 %, pan, wheel, prev/next by
keyboard, split and side-by-side comparison with one zoom, full screen, and no horizontal overflow
on any page. Screenshots go to test-artifacts/viewer/ (git-ignored).

The photos here are rows with real image files (previews and comparisons), not encodes: nothing
in the viewer needs the worker. The decoded downloads are checked against a real worker in
test_downloads.py.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from PIL import Image

from gallery import previews, privacy
from gallery.models import Album

from .browser import chromium, needs_chromium
from .factories import ready_photo

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "viewer"
TRANSFORMS = (
    "() => ['a', 'b'].map(p => document.querySelector('.pane-' + p + ' img:not([hidden])').style.transform)"
)
VIEWPORTS = {"desktop": (1366, 900), "phone": (390, 844)}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    needs_chromium,
]


def _previews_from(photo, source: Image.Image) -> None:
    for name in ("thumb", "display", "full"):
        spec = previews.SPECS[name]
        default_storage.save(previews.CacheFile(photo, spec).name, ContentFile(spec.render(source)))


@pytest.fixture
def photos(user, staff_user, kodak_image, media_root):
    """Three ready photos of ``user`` (2400×1600: 100 % is larger than any screen), one in a shared album."""
    with Image.open(kodak_image(23)) as img:
        source = img.convert("RGB").resize((1536, 1024), Image.Resampling.LANCZOS)
    made = []
    for i in range(3):
        photo = ready_photo(user, title=f"parrots-{i}.png", width=2400, height=1600, comparisons=("jpeg",))
        _previews_from(photo, source)
        comp = photo.comparisons.get()
        out = io.BytesIO()
        source.resize((600, 400)).save(out, "JPEG", quality=30)
        with default_storage.open(comp.file.name, "wb") as fh:
            fh.write(out.getvalue())
        made.append(photo)
    album = Album.objects.create(owner=user, title="Parrots")
    made[0].album = album
    made[0].save()
    privacy.set_visibility(album, "users")
    return made  # newest last: made[1] has both neighbours


def _login_cookie(user, live_server) -> dict:
    client = Client()
    client.force_login(user)
    return {"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}


@pytest.fixture
def browser(monkeypatch):
    with chromium(monkeypatch) as browser:
        yield browser


def _page(browser, viewport, cookie=None):
    w, h = VIEWPORTS[viewport]
    context = browser.new_context(viewport={"width": w, "height": h}, has_touch=viewport == "phone")
    if cookie:
        context.add_cookies([cookie])
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    return page, errors


def _no_overflow(page, label: str) -> None:
    sizes = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert sizes[0] <= sizes[1], f"{label}: horizontal overflow {sizes}"


def _shot(page, viewport: str, name: str, full_page: bool = False) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{viewport}-{name}.png"), full_page=full_page)


def _record_page_weight(page, viewport: str) -> None:
    """Bytes the photo page loaded (document + CSS + JS + images), into test-artifacts."""
    weight = page.evaluate(
        """() => {
          const nav = performance.getEntriesByType('navigation')[0];
          const res = performance.getEntriesByType('resource');
          const by = {};
          for (const r of res) {
            const kind = r.name.endsWith('.js') ? 'js' : r.name.endsWith('.css') ? 'css' : 'image';
            by[kind] = (by[kind] || 0) + r.decodedBodySize;
          }
          by.html = nav.decodedBodySize;
          return by;
        }"""
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"page-weight-{viewport}.json").write_text(json.dumps(weight, indent=1))
    assert weight["js"] < 40_000 and weight["css"] < 30_000  # own small code, no library


def _state(page) -> dict:
    return page.evaluate(
        "() => { const v = document.getElementById('viewer').dataset;"
        " return {scale: +v.scale, tx: +v.tx, ty: +v.ty, split: +(v.split || 0.5), mode: v.mode}; }"
    )


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_viewer_zoom_pan_navigation_compare(live_server, browser, photos, user, viewport):
    page, errors = _page(browser, viewport, _login_cookie(user, live_server))
    base = live_server.url
    middle = photos[1]
    page.goto(f"{base}/photos/{middle.pk}/")
    page.wait_for_function(
        "() => { const i = document.querySelector('.pane-a img[data-key=latent]');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )
    # Fit: the stage fits in the window and the whole photo is inside the stage.
    stage = page.locator("#viewer-stage").bounding_box()
    w, h = VIEWPORTS[viewport]
    assert stage["height"] <= h and stage["width"] <= w
    fit = _state(page)
    assert fit["scale"] == pytest.approx(min(stage["width"] / 2400, stage["height"] / 1600), rel=0.02)
    assert "Fit" in page.inner_text("#zoom-level")
    _no_overflow(page, "photo page")
    _shot(page, viewport, "01-photo-fit")
    _record_page_weight(page, viewport)

    # 100 % with the keyboard: one photo pixel per CSS pixel.
    page.keyboard.press("1")
    assert _state(page)["scale"] == pytest.approx(1.0)
    box = page.locator(".pane-a img[data-key=latent]").bounding_box()
    assert box["width"] == pytest.approx(2400, abs=1) and box["height"] == pytest.approx(1600, abs=1)
    assert page.inner_text("#zoom-level").strip() == "100 %"
    # past the 1600-px display preview the latent switches to the full-resolution rendition
    page.wait_for_function("() => document.getElementById('viewer').dataset.full === 'loaded'")
    assert "/preview/full/" in page.locator(".pane-a img[data-key=latent]").get_attribute("src")
    _shot(page, viewport, "02-photo-100")

    # Pan by dragging.
    before = _state(page)
    cx, cy = stage["x"] + stage["width"] / 2, stage["y"] + stage["height"] / 2
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx - 120, cy - 80, steps=6)
    page.mouse.up()
    after = _state(page)
    assert after["tx"] == pytest.approx(before["tx"] - 120, abs=2)
    assert after["ty"] == pytest.approx(before["ty"] - 80, abs=2)

    # Beyond 100 % (keyboard and wheel), then back to fit.
    page.keyboard.press("+")
    assert _state(page)["scale"] == pytest.approx(1.25)
    page.mouse.move(cx, cy)
    page.mouse.wheel(0, -300)
    page.wait_for_function("() => +document.getElementById('viewer').dataset.scale > 1.3")
    page.keyboard.press("0")
    assert _state(page)["scale"] == pytest.approx(fit["scale"], rel=1e-3)

    # Split comparison: the two panes share one zoom; the handle moves the split.
    page.click("[data-mode-button=split]")
    assert _state(page)["mode"] == "split"
    page.wait_for_function(
        "() => { const i = document.querySelector('.pane-b img[data-key=jpeg]');"
        " return i && !i.hidden && i.complete && i.naturalWidth > 0; }"
    )
    handle = page.locator("#split-handle").bounding_box()
    hx, hy = handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2
    page.mouse.move(hx, hy)
    page.mouse.down()
    page.mouse.move(stage["x"] + stage["width"] * 0.3, hy, steps=5)
    page.mouse.up()
    assert _state(page)["split"] == pytest.approx(0.3, abs=0.03)
    page.keyboard.press("1")
    transforms = page.evaluate(TRANSFORMS)
    assert transforms[0] == transforms[1] and "scale(1)" in transforms[0]
    _shot(page, viewport, "03-split-100")
    page.keyboard.press("0")
    _shot(page, viewport, "04-split-fit")

    page.click("[data-mode-button=side]")
    assert _state(page)["mode"] == "side"
    page.keyboard.press("+")
    transforms = page.evaluate(TRANSFORMS)
    assert transforms[0] == transforms[1]
    _shot(page, viewport, "05-side-by-side")
    _no_overflow(page, "side by side")
    page.click("[data-mode-button=single]")

    # Full screen / lightbox: the stage takes (nearly) the whole window.
    page.click("#fullscreen-button")
    page.wait_for_function("() => document.getElementById('viewer').classList.contains('is-lightbox')")
    page.wait_for_timeout(300)
    big = page.locator("#viewer-stage").bounding_box()
    assert big["width"] >= w - 20 and big["height"] >= h * 0.6
    _shot(page, viewport, "06-lightbox")
    # the next photo opens in the lightbox too, in the same comparison mode
    page.click("[data-mode-button=split]")
    page.click(".stage-go-next")
    page.wait_for_url(f"{base}/photos/{photos[0].pk}/#lightbox&mode=split&vs=jpeg")
    page.wait_for_function("() => document.getElementById('viewer').classList.contains('is-lightbox')")
    assert _state(page)["mode"] == "split"
    assert page.locator(".stage-go-next").is_hidden()  # the oldest photo has no next one
    page.click(".stage-go-prev")
    page.wait_for_url(f"{base}/photos/{middle.pk}/#lightbox&mode=split&vs=jpeg")
    page.click("[data-mode-button=single]")
    page.click("#fullscreen-button")
    page.wait_for_function("() => !document.getElementById('viewer').classList.contains('is-lightbox')")

    # Previous / next with the arrow keys (the grid's order: newest first).
    page.locator("#viewer-stage").focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_url(f"{base}/photos/{photos[0].pk}/")
    page.keyboard.press("ArrowLeft")
    page.wait_for_url(f"{base}/photos/{middle.pk}/")
    page.keyboard.press("ArrowLeft")
    page.wait_for_url(f"{base}/photos/{photos[2].pk}/")
    assert page.locator("#prev-photo").count() == 0  # the newest has no previous

    if viewport == "phone":  # pinch out with two fingers (real touch events through CDP) zooms in
        s = page.locator("#viewer-stage").bounding_box()
        cx, cy = s["x"] + s["width"] / 2, s["y"] + s["height"] / 2
        before = _state(page)["scale"]
        cdp = page.context.new_cdp_session(page)

        def touch(kind: str, spread: float) -> None:
            points = [{"x": cx - spread, "y": cy, "id": 0}, {"x": cx + spread, "y": cy, "id": 1}]
            cdp.send(
                "Input.dispatchTouchEvent",
                {"type": kind, "touchPoints": [] if kind == "touchEnd" else points},
            )

        touch("touchStart", 40)
        for spread in (60, 80, 100, 120):
            touch("touchMove", spread)
        touch("touchEnd", 120)
        assert _state(page)["scale"] == pytest.approx(before * 3, rel=0.1)
        page.keyboard.press("0")

    if viewport == "phone":  # swipe left = next photo
        page.wait_for_function("() => document.getElementById('viewer').dataset.scale")
        s = page.locator("#viewer-stage").bounding_box()
        y = s["y"] + s["height"] / 2
        page.mouse.move(s["x"] + s["width"] * 0.8, y)
        page.mouse.down()
        page.mouse.move(s["x"] + s["width"] * 0.2, y, steps=4)
        page.mouse.up()
        page.wait_for_url(f"{base}/photos/{middle.pk}/")
    assert not errors, errors


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_no_horizontal_overflow_on_any_page(live_server, browser, photos, user, staff_user, viewport):
    base = live_server.url
    album = Album.objects.get()
    page, errors = _page(browser, viewport, _login_cookie(user, live_server))
    pages = {
        "gallery": "/",
        "gallery-mine": "/?scope=mine",
        "photo": f"/photos/{photos[0].pk}/",
        "albums": "/albums/",
        "album": f"/albums/{album.pk}/",
        "upload": "/upload/",
        "delete": f"/photos/{photos[0].pk}/delete/",
        "not-found": "/photos/00000000-0000-0000-0000-000000000000/",
    }
    for name, path in pages.items():
        page.goto(base + path)
        _no_overflow(page, name)
        _shot(page, viewport, f"page-{name}", full_page=True)
    errors.remove("Failed to load resource: the server responded with a status of 404 (Not Found)")
    # justified grid: every tile of the first row is equally tall, and the row is filled
    page.goto(base + "/")
    page.wait_for_function("() => document.getElementById('photo-grid').classList.contains('is-justified')")
    boxes = page.evaluate(
        "() => Array.from(document.querySelectorAll('.tile .tile-image')).map(e => e.getBoundingClientRect())"
        ".map(r => [Math.round(r.top), Math.round(r.height), Math.round(r.right)])"
    )
    first_row = [b for b in boxes if b[0] == boxes[0][0]]
    assert len({b[1] for b in first_row}) == 1, boxes
    if viewport == "phone":  # the menu folds behind a button and opens on demand
        assert not page.locator("#site-nav").is_visible()
        page.click("#menu-toggle")
        assert page.locator("#site-nav").is_visible()
        _shot(page, viewport, "page-menu-open")
        _no_overflow(page, "menu open")

    staff, _ = _page(browser, viewport, _login_cookie(staff_user, live_server))
    staff.goto(base + "/stats/")
    _no_overflow(staff, "statistics")
    _shot(staff, viewport, "page-statistics", full_page=True)

    anon, _ = _page(browser, viewport)
    for name, path in {"login": "/accounts/login/", "signup": "/accounts/signup/"}.items():
        anon.goto(base + path)
        _no_overflow(anon, name)
        _shot(anon, viewport, f"page-{name}", full_page=True)
    assert not errors, errors


def test_select_tiles_and_download_a_zip(live_server, browser, photos, user):
    page, errors = _page(browser, "phone", _login_cookie(user, live_server))
    page.goto(live_server.url + "/")
    assert not page.locator("#bulk-form button[value=zip-latent]").is_visible()  # nothing selected yet
    page.locator(".tile-check input").nth(0).check()
    page.locator(".tile-check input").nth(2).check()
    assert page.inner_text(".bulk-label") == "Selected: 2"
    _no_overflow(page, "selection bar")
    _shot(page, "phone", "page-gallery-selected")
    with page.expect_download() as info:
        page.click("#bulk-form button[value=zip-latent]")
    target = ARTIFACTS / "selection.zip"
    info.value.save_as(str(target))
    assert sorted(zipfile.ZipFile(target).namelist()) == ["parrots-0.sdl", "parrots-2.sdl"]
    assert not errors, errors
