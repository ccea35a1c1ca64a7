"""Views: access rules, upload answers, status JSON, media headers, delete, designed states."""

from __future__ import annotations

import io

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse
from PIL import Image

from gallery import previews
from gallery.models import Photo, StagedUpload

from .factories import image_bytes, pending_photo, ready_photo

pytestmark = pytest.mark.django_db


def test_pages_need_login(client, user, media_root):
    """Signed out, the pages behind the login redirect there; a photo's own URLs answer 404 (the
    same answer as for a photo that does not exist: nothing is revealed)."""
    photo = ready_photo(user)
    for url in (
        reverse("gallery:list"),
        reverse("gallery:upload"),
        reverse("gallery:delete", args=[photo.pk]),
        reverse("gallery:albums"),
        reverse("gallery:stats"),
    ):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url
    for url in (
        reverse("gallery:detail", args=[photo.pk]),
        reverse("gallery:status", args=[photo.pk]),
        reverse("gallery:preview", args=[photo.pk, "thumb"]),
        reverse("gallery:comparison", args=[photo.pk, "jpeg"]),
        reverse("gallery:latent", args=[photo.pk]),
    ):
        assert client.get(url).status_code == 404, url


def test_stats_staff_only(client, user, staff_user, media_root):
    ready_photo(user)
    client.force_login(user)
    response = client.get(reverse("gallery:stats"))
    assert response.status_code == 403
    assert b"Everything stored" not in response.content
    client.force_login(staff_user)
    response = client.get(reverse("gallery:stats"))
    assert response.status_code == 200
    assert b"Everything stored" in response.content and b"<svg" in response.content


def test_empty_gallery_is_designed(alice_client):
    response = alice_client.get(reverse("gallery:list"))
    assert response.status_code == 200
    assert b"No photos yet" in response.content and b"Upload photos" in response.content


def test_gallery_grid_paginates(alice_client, user, settings):
    settings.GALLERY_PAGE_SIZE = 4
    for i in range(6):
        pending_photo(user, title=f"p{i}.png")
    page1 = alice_client.get(reverse("gallery:list"))
    page2 = alice_client.get(reverse("gallery:list") + "?page=2")
    assert page1.content.count(b'class="tile"') == 4
    assert page2.content.count(b'class="tile"') == 2
    assert b"Page 2 of 2" in page2.content


def test_upload_form_renders(alice_client):
    response = alice_client.get(reverse("gallery:upload"))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'type="file"' in body and "multiple" in body and 'enctype="multipart/form-data"' in body
    assert "Tiny (≈0.05 bpp)" in body and "Explicit byte budget" in body


def test_upload_json_accepts_and_rejects_per_file(alice_client, user):
    good = ContentFile(image_bytes(64, 48, "PNG"), name="good.png")
    bad = ContentFile(b"<?php echo 1; ?>", name="evil.jpg")
    response = alice_client.post(
        reverse("gallery:upload"), {"size": "tiny", "files": [good, bad]}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 200
    results = {r["name"]: r for r in response.json()["results"]}
    assert results["good.png"]["ok"] and results["good.png"]["status"] == "pending"
    assert not results["evil.jpg"]["ok"] and "not an image" in results["evil.jpg"]["error"]
    photo = Photo.objects.get()
    assert photo.owner == user and photo.size == "tiny"
    assert StagedUpload.objects.filter(photo=photo).exists()


def test_upload_json_single_file_statuses(alice_client):
    ok = alice_client.post(
        reverse("gallery:upload"),
        {
            "size": "budget",
            "budget_bytes": "3000",
            "files": ContentFile(image_bytes(64, 48, "JPEG"), name="a.jpg"),
        },
        HTTP_ACCEPT="application/json",
    )
    assert ok.status_code == 201
    assert Photo.objects.get().target_bytes == 3000
    bad = alice_client.post(
        reverse("gallery:upload"),
        {"size": "standard", "files": ContentFile(b"", name="empty.png")},
        HTTP_ACCEPT="application/json",
    )
    assert bad.status_code == 400


def test_upload_without_js_redirects_with_messages(alice_client):
    response = alice_client.post(
        reverse("gallery:upload"),
        {"size": "standard", "files": [ContentFile(image_bytes(64, 48, "PNG"), name="x.png")]},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == reverse("gallery:list")
    assert "queued for encoding" in response.content.decode()


def test_upload_form_errors_are_shown(alice_client):
    response = alice_client.post(reverse("gallery:upload"), {"size": "budget"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "Enter a byte budget" in body and "Choose at least one photo" in body


def test_upload_size_limit_enforced_by_upload_handler(alice_client, settings):
    settings.GALLERY_MAX_UPLOAD_BYTES = 5000
    big = ContentFile(image_bytes(400, 400, "PNG"), name="big.png")
    assert big.size > 5000
    response = alice_client.post(
        reverse("gallery:upload"), {"size": "standard", "files": big}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 400
    [result] = response.json()["results"]
    assert result["name"] == "big.png" and "larger than the limit" in result["error"]
    assert not Photo.objects.exists()


def test_upload_requires_csrf(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post(
        reverse("gallery:upload"),
        {"size": "standard", "files": ContentFile(image_bytes(32, 32, "PNG"), name="a.png")},
    )
    assert response.status_code == 403
    assert not Photo.objects.exists()


def test_status_json(alice_client, user, media_root):
    pending = pending_photo(user)
    data = alice_client.get(reverse("gallery:status", args=[pending.pk])).json()
    assert data["status"] == "pending" and data["finished"] is False and data["variants"] == []
    ready = ready_photo(user)
    response = alice_client.get(reverse("gallery:status", args=[ready.pk]))
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    data = response.json()
    assert data["status"] == "ready" and data["finished"] and data["can_delete"]
    assert [v["key"] for v in data["variants"]] == ["latent", "jpeg", "webp"]
    latent = data["variants"][0]
    assert latent["bytes"] == ready.latent_bytes and latent["pending"] is True  # preview not rendered yet


def test_photo_page_ready_shows_toggle_with_bytes(alice_client, user, media_root):
    photo = ready_photo(user, comparisons=("jpeg", "webp"))
    jpeg = photo.comparisons.get(fmt="jpeg")
    body = alice_client.get(reverse("gallery:detail", args=[photo.pk])).content.decode()
    assert 'name="variant" value="latent"' in body and 'name="variant" value="jpeg"' in body
    assert f"{jpeg.bytes:,} bytes" in body
    assert "smaller than the original" in body
    assert f"{photo.original_width} × {photo.original_height} px" in body


def test_photo_page_states(alice_client, user):
    pending = pending_photo(user)
    assert (
        "Waiting for a worker"
        in alice_client.get(reverse("gallery:detail", args=[pending.pk])).content.decode()
    )
    failed = pending_photo(
        user, status=Photo.Status.FAILED, error="The codec could not encode this image: boom"
    )
    body = alice_client.get(reverse("gallery:detail", args=[failed.pk])).content.decode()
    assert "could not be encoded" in body and "boom" in body


def test_photo_page_mentions_downscaled_comparison(alice_client, user, media_root):
    photo = ready_photo(user, comparisons=("jpeg",))
    photo.comparisons.update(scale=0.5, width=32, height=24)
    body = alice_client.get(reverse("gallery:detail", args=[photo.pk])).content.decode()
    assert "downscaled to 32×24" in body and "Downscaled to fit." in body


def test_missing_photo_404_page(alice_client):
    response = alice_client.get("/photos/00000000-0000-0000-0000-000000000000/")
    assert response.status_code == 404


def test_delete_owner_only(client, user, other_user, media_root):
    photo = ready_photo(user)
    client.force_login(other_user)
    # A private photo does not exist for anyone else.
    assert client.post(reverse("gallery:delete", args=[photo.pk])).status_code == 404
    photo.visibility = "users"
    photo.save()
    # Visible to signed-in users: others may look, never delete.
    assert client.post(reverse("gallery:delete", args=[photo.pk])).status_code == 403
    assert client.get(reverse("gallery:delete", args=[photo.pk])).status_code == 403
    assert "Delete</a>" not in client.get(reverse("gallery:detail", args=[photo.pk])).content.decode()
    assert Photo.objects.filter(pk=photo.pk).exists()
    client.force_login(user)
    assert "Delete for good" in client.get(reverse("gallery:delete", args=[photo.pk])).content.decode()
    response = client.post(reverse("gallery:delete", args=[photo.pk]))
    assert response.status_code == 302
    assert not Photo.objects.filter(pk=photo.pk).exists()
    assert not default_storage.exists(f"latents/{photo.pk}.sdl")


def test_comparison_served_with_type_and_nosniff(alice_client, user, media_root):
    photo = ready_photo(user, comparisons=("jpeg", "webp"))
    for fmt, ctype in (("jpeg", "image/jpeg"), ("webp", "image/webp")):
        response = alice_client.get(reverse("gallery:comparison", args=[photo.pk, fmt]))
        assert response.status_code == 200
        assert response["Content-Type"] == ctype
        assert response["X-Content-Type-Options"] == "nosniff"
        body = b"".join(response.streaming_content)
        assert len(body) == photo.comparisons.get(fmt=fmt).bytes
    assert alice_client.get(reverse("gallery:comparison", args=[photo.pk, "avif"])).status_code == 404


def test_latent_download(alice_client, user, media_root):
    photo = ready_photo(user, title="holiday.png")
    response = alice_client.get(reverse("gallery:latent", args=[photo.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert 'attachment; filename="holiday.sdl"' in response["Content-Disposition"]
    assert len(b"".join(response.streaming_content)) == photo.latent_bytes


def test_preview_placeholder_then_cached_file(alice_client, user, media_root, settings):
    settings.GALLERY_PREVIEW_STRATEGY = "just_in_time"
    photo = ready_photo(user)
    # Pretend a render was queued recently, so the miss does not publish (the worker path is
    # covered by the integration tests).
    cache_file = previews.CacheFile(photo, previews.SPECS["thumb"])
    from django.core.cache import cache

    cache.add(f"gallery:preview-queued:{photo.pk}:{photo.latent_sha256[:12]}:thumb", 1, 60)
    response = alice_client.get(reverse("gallery:preview", args=[photo.pk, "thumb"]))
    assert response.status_code == 200 and response["Content-Type"].startswith("image/svg+xml")
    assert response["X-Preview"] == "pending" and response["Cache-Control"] == "no-store"
    assert response["X-Content-Type-Options"] == "nosniff"

    out = io.BytesIO()
    Image.new("RGB", (64, 48), "gray").save(out, "WEBP")
    default_storage.save(cache_file.name, ContentFile(out.getvalue()))
    response = alice_client.get(
        reverse("gallery:preview", args=[photo.pk, "thumb"]) + f"?v={cache_file.version}"
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "image/webp" and response["X-Content-Type-Options"] == "nosniff"
    assert "immutable" in response["Cache-Control"]
    assert alice_client.get(reverse("gallery:preview", args=[photo.pk, "huge"])).status_code == 404


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.content == b"ok"


def test_admin_lists_photos(client, staff_user, user, media_root, django_user_model):
    ready_photo(user)
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "x-very-long-pass-1")
    client.force_login(admin)
    for url in ("/admin/gallery/photo/", "/admin/gallery/comparison/", "/admin/gallery/stagedupload/"):
        assert client.get(url).status_code == 200, url
    photo = Photo.objects.get()
    assert client.get(f"/admin/gallery/photo/{photo.pk}/change/").status_code == 200


def test_status_has_queue_position_and_eta(alice_client, user, media_root):
    from django.utils import timezone

    for seconds in (10.0, 20.0, 30.0):
        photo = ready_photo(user)
        Photo.objects.filter(pk=photo.pk).update(encode_seconds=seconds, ready_at=timezone.now())
    first, second = pending_photo(user), pending_photo(user)
    data = alice_client.get(reverse("gallery:status", args=[second.pk])).json()
    assert data["queue"]["ahead"] == 1 and data["queue"]["per_photo_seconds"] == 20.0
    assert data["queue"]["eta_seconds"] == 40  # one ahead + itself, 20 s each (median)
    assert "1 photo ahead in the queue; ready in about 40 s" in data["queue_text"]
    assert alice_client.get(reverse("gallery:status", args=[first.pk])).json()["queue"]["ahead"] == 0
    page = alice_client.get(reverse("gallery:detail", args=[second.pk])).content.decode()
    assert "ready in about 40 s" in page
    assert alice_client.get(reverse("gallery:status", args=[photo.pk])).json()["queue"] is None
    Photo.objects.filter(pk=first.pk).update(status=Photo.Status.ENCODING, encoding_started_at=timezone.now())
    encoding = alice_client.get(reverse("gallery:status", args=[first.pk])).json()
    assert encoding["queue"]["encoding"] and "queue" not in encoding["queue_text"]  # not "next": encoding
    assert encoding["queue_text"].startswith("Ready in about 20 s")


def test_a_photo_whose_message_could_not_be_published_says_so(alice_client, user, media_root):
    from gallery.models import OutboxMessage

    photo = pending_photo(user)
    message = OutboxMessage.objects.create(task="gallery.encode_photo", args=[str(photo.pk)], user=user,
                                           photo_key=str(photo.pk))
    data = alice_client.get(reverse("gallery:status", args=[photo.pk])).json()
    assert not data["queue"]["broker_unreachable"] and data["queue_text"] == "Next in the queue."  # fast path
    OutboxMessage.objects.filter(pk=message.pk).update(attempts=1, last_error="Error 111 connecting")
    data = alice_client.get(reverse("gallery:status", args=[photo.pk])).json()
    assert data["queue"]["broker_unreachable"] and "cannot be reached" in data["queue_text"]
    assert "next in the queue" not in data["queue_text"].lower()
    page = alice_client.get(reverse("gallery:detail", args=[photo.pk])).content.decode()
    assert "task queue cannot be reached" in page and "Waiting for the task queue" in page
    assert "Waiting for a worker" not in page
    OutboxMessage.objects.all().delete()  # published by the relay
    data = alice_client.get(reverse("gallery:status", args=[photo.pk])).json()
    assert data["queue_text"] == "Next in the queue."


def test_photo_page_says_when_the_latent_codes_a_smaller_version(alice_client, user, media_root):
    photo = ready_photo(user, width=64, height=48)
    Photo.objects.filter(pk=photo.pk).update(codec_info={"coded_width": 32, "coded_height": 24})
    body = alice_client.get(reverse("gallery:detail", args=[photo.pk])).content.decode()
    assert "The latent codes a 32×24 version (50%)" in body and "downscaled to 32×24 to fit" in body
    Photo.objects.filter(pk=photo.pk).update(codec_info={"coded_width": 64, "coded_height": 48})
    body = alice_client.get(reverse("gallery:detail", args=[photo.pk])).content.decode()
    assert "The latent codes a" not in body


def test_photo_page_says_why_a_preset_photo_is_larger_than_its_size(alice_client, user, media_root, settings):
    settings.GALLERY_PRESET_TARGET, settings.GALLERY_PRESET_TARGET_HEADROOM = "faithful", 2.0
    photo = ready_photo(user, latent_bytes=300)
    body = alice_client.get(reverse("gallery:detail", args=[photo.pk])).content.decode()
    assert 'id="size-note"' not in body  # at or under its target: nothing to explain
    Photo.objects.filter(pk=photo.pk).update(size=Photo.Size.TINY, target_bytes=200)
    body = alice_client.get(reverse("gallery:detail", args=[photo.pk])).content.decode()
    assert 'id="size-note"' in body and "took 1.5× that to pass the preset" in body
    assert "may use up to 400 bytes" in body
