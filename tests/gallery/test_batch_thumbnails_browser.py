"""Issue 11: a batch of 10 uploads gets thumbnails as each photo becomes ready, not after the batch.

Real chromium on the upload page, a real worker (one solo process: the encodes of the batch queue
behind each other), real encodes of small photos. The page records when each row's thumbnail has
loaded; the database records when each photo became READY (same machine clock).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gallery.models import Photo

from .browser import chromium, needs_chromium
from .factories import image_bytes

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
BATCH = 10
#: the row polls its status every 1.5–2 s; allow for a loaded 2-core machine
THUMB_LAG_S = 20.0

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    needs_chromium,
]

# Each upload row gets data-thumb-at (ms since the epoch) once its thumbnail image has loaded.
RECORD_THUMBS = """
new MutationObserver(function () {
  document.querySelectorAll('.upload-item img.upload-thumb').forEach(function (img) {
    const row = img.closest('.upload-item');
    if (row.dataset.thumbAt) return;
    const mark = function () {
      if (!row.dataset.thumbAt && img.naturalWidth > 0) row.dataset.thumbAt = String(Date.now());
    };
    if (img.complete) mark(); else img.addEventListener('load', mark);
  });
}).observe(document, { childList: true, subtree: true });
"""


@pytest.fixture
def _no_address_space_limit(settings):
    """The in-process (solo) worker would cap this whole process's address space
    (GALLERY_TASK_MEMORY_LIMIT, RLIMIT_AS), and chromium started from it crashes at launch."""
    settings.GALLERY_TASK_MEMORY_LIMIT = 0


@pytest.fixture
def own_worker(_no_address_space_limit, redis_url, _test_broker):
    """A real worker on a broker database of this test alone: on the shared test database another
    test process's worker could take one of the batch's messages."""
    from .conftest import private_broker, running_worker

    with private_broker(_test_broker, redis_url, 12) as app, running_worker(app) as worker:
        yield worker


def test_batch_of_ten_gets_each_thumbnail_when_ready(
    own_worker, live_server, user, password, monkeypatch, media_root, tmp_path
):
    files = []
    for i in range(BATCH):
        path = tmp_path / f"batch-{i:02d}.png"
        path.write_bytes(image_bytes(96 + 8 * i, 64, "PNG"))
        files.append(str(path))
    base = live_server.url
    with chromium(monkeypatch) as browser:
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        page.set_default_timeout(30_000)
        page.add_init_script(RECORD_THUMBS.replace("\n", " "))
        page.goto(f"{base}/accounts/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/")
        page.goto(f"{base}/upload/")
        page.set_input_files("#id_files", files)
        page.check("input[name=size][value=standard]")
        page.click("#upload-button")
        page.wait_for_function(
            f"() => document.querySelectorAll('.upload-item[data-thumb-at]').length === {BATCH}"
            " || document.querySelector('.upload-item.is-error')",
            timeout=600_000,
        )
        page.screenshot(path=str(ARTIFACTS / "batch-thumbnails.png"), full_page=True)
        rows = page.evaluate(
            "() => Array.from(document.querySelectorAll('.upload-item')).map(r => "
            "[r.querySelector('.name').textContent, r.dataset.thumbAt || '', r.className, r.innerText])"
        )
    errors = [r for r in rows if "is-error" in r[2]]
    assert not errors, errors
    thumb_at = {name.split(" (")[0]: int(at) / 1000 for name, at, _, _ in rows}
    photos = {p.title: p for p in Photo.objects.all()}
    assert len(photos) == BATCH and all(p.status == Photo.Status.READY for p in photos.values())
    ready_at = {title: p.ready_at.timestamp() for title, p in photos.items()}
    last_ready = max(ready_at.values())
    lags = {t: thumb_at[t] - ready_at[t] for t in photos}
    # Each thumbnail follows its own READY by a few seconds…
    assert all(lag < THUMB_LAG_S for lag in lags.values()), lags
    # …so every photo that became ready well before the last one had its thumbnail before the
    # batch was over (the old behaviour: every thumbnail after the last encode).
    early = [t for t in photos if ready_at[t] < last_ready - THUMB_LAG_S]
    assert all(thumb_at[t] < last_ready for t in early), {t: (ready_at[t], thumb_at[t]) for t in early}
    first = min(photos, key=lambda t: ready_at[t])
    assert thumb_at[first] < last_ready, (first, thumb_at[first], last_ready)
