"""Real Redis + a real Celery worker + the real codec and weights: one Kodak image end to end."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse
from PIL import Image

from gallery import previews, stats
from gallery.models import Photo, StagedUpload

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def wait_for(predicate, timeout: float, what: str, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def test_kodak_upload_to_ready(client, user, gpu_worker, kodak_image, media_root):
    import codec

    path = kodak_image(23)  # 768×512
    client.force_login(user)
    started = time.monotonic()
    with open(path, "rb") as fh:
        response = client.post(
            reverse("gallery:upload"), {"size": "standard", "files": fh}, HTTP_ACCEPT="application/json"
        )
    assert response.status_code == 201, response.content
    [result] = response.json()["results"]
    photo_id = result["id"]
    status_url = result["status_url"]

    def ready():
        data = client.get(status_url).json()
        assert data["status"] != "failed", data["error"]
        return data if data["status"] == "ready" else None

    status = wait_for(ready, 300, "the photo to become ready")
    seconds_to_ready = time.monotonic() - started
    photo = Photo.objects.get(pk=photo_id)

    # The latent is stored, and it is the real codec's bitstream of the right image.
    with default_storage.open(photo.latent.name) as fh:
        latent = fh.read()
    meta = codec.info(latent)
    assert (meta["width"], meta["height"]) == (768, 512) == (photo.original_width, photo.original_height)
    assert len(latent) == photo.latent_bytes == status["latent_bytes"] <= photo.target_bytes == 7372
    assert photo.original_bytes == path.stat().st_size and photo.original_format == "PNG"
    # READY comes with its thumbnail (written from the encoder's reconstruction, issue 13); the
    # comparisons come after READY, and the staged original goes only once they are stored.
    assert previews.lookup(photo, "thumb") is not None
    wait_for(lambda: not StagedUpload.objects.filter(photo_id=photo_id).exists(), 300,
             "the comparisons (then the staged original is deleted)")
    assert not any(default_storage.exists(p) for p in ("originals", "staging"))
    # The JPEG comparison is within the latent's bytes and is served as a JPEG.
    jpeg = photo.comparisons.get(fmt="jpeg")
    assert jpeg.bytes <= photo.latent_bytes
    response = client.get(reverse("gallery:comparison", args=[photo_id, "jpeg"]))
    assert response["Content-Type"] == "image/jpeg" and response["X-Content-Type-Options"] == "nosniff"
    assert Image.open(io.BytesIO(b"".join(response.streaming_content))).format == "JPEG"

    # The preview is rendered by the worker from the latent, then served from the cache.
    def preview_served():
        r = client.get(reverse("gallery:preview", args=[photo_id, "display"]))
        return r if r.get("X-Preview") != "pending" else None

    response = wait_for(preview_served, 120, "the display preview")
    assert response.status_code == 200 and response["Content-Type"] == "image/webp"
    assert response["X-Content-Type-Options"] == "nosniff"
    img = Image.open(io.BytesIO(b"".join(response.streaming_content)))
    assert img.size == (768, 512)
    seconds_to_preview = time.monotonic() - started
    wait_for(lambda: previews.lookup(photo, "thumb"), 60, "the thumbnail")

    # The photo page shows the toggle with the JPEG's byte count.
    body = client.get(reverse("gallery:detail", args=[photo_id])).content.decode()
    assert f"{jpeg.bytes:,} bytes" in body and 'value="jpeg"' in body

    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "integration-kodim23.json").write_text(
        json.dumps(
            {
                "image": path.name,
                "original_bytes": photo.original_bytes,
                "latent_bytes": photo.latent_bytes,
                "latent_bpp": photo.latent_bpp,
                "encode_seconds_in_task": photo.encode_seconds,
                "seconds_upload_to_ready": round(seconds_to_ready, 2),
                "seconds_upload_to_preview": round(seconds_to_preview, 2),
                "comparisons": {
                    c.fmt: {"bytes": c.bytes, "quality": c.quality, "scale": c.scale}
                    for c in photo.comparisons.all()
                },
                "effort": photo.codec_info.get("effort"),
            },
            indent=2,
        )
    )


def test_queue_length_and_preview_dedup(user, purged_queue, media_root):
    """Without a worker: a page's preview miss publishes one render task; a second miss does not,
    and a plain lookup never publishes."""
    from .factories import ready_photo

    photo = ready_photo(user)
    assert previews.lookup(photo, "thumb") is None
    assert stats.collect().queue.length == 0
    assert previews.request(photo, "thumb") is None
    assert previews.request(photo, "thumb") is None
    snap = stats.collect().queue
    assert snap.available and snap.length == 1
    assert snap.workers == []
