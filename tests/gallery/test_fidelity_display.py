"""Fidelity-guard numbers (issue 5) on the photo page, in the staff statistics and in pipeline.commit."""

from __future__ import annotations

import pytest
from django.urls import reverse

from gallery import stats
from gallery.models import Photo
from gallery.worker import pipeline

from .factories import pending_photo, ready_photo

pytestmark = pytest.mark.django_db


def _guarded(photo: Photo, **fields) -> Photo:
    Photo.objects.filter(pk=photo.pk).update(**fields)
    photo.refresh_from_db()
    return photo


def test_photo_page_shows_fidelity_and_guard(alice_client, user, media_root):
    photo = _guarded(ready_photo(user), fidelity_min=0.412, fidelity_mean=0.873, fidelity_floor=0.4,
                     fidelity_floor_met=True, fidelity_guard="patches", guard_bytes=525)
    body = alice_client.get(reverse("gallery:detail", args=[photo.pk])).content.decode()
    assert "worst block 0.412, mean 0.873 (floor 0.40)" in body and "floor met" in body
    assert "525-byte patch layer" in body
    assert "a patch layer from the fidelity guard" in body  # the latent variant's note

    avif = _guarded(ready_photo(user), fidelity_min=0.3, fidelity_mean=0.8, fidelity_floor=0.4,
                    fidelity_floor_met=False, fidelity_guard="avif", guard_bytes=4000)
    body = alice_client.get(reverse("gallery:detail", args=[avif.pk])).content.decode()
    assert "below the floor" in body and "stored this photo as AVIF" in body


def test_stats_share_below_floor_and_guard_bytes(client, staff_user, user, media_root):
    _guarded(ready_photo(user), fidelity_min=0.5, fidelity_mean=0.8, fidelity_floor_met=True,
             fidelity_guard="none", guard_bytes=0)
    _guarded(ready_photo(user), fidelity_min=0.45, fidelity_mean=0.8, fidelity_floor_met=True,
             fidelity_guard="patches", guard_bytes=700)
    _guarded(ready_photo(user), fidelity_min=0.2, fidelity_mean=0.7, fidelity_floor_met=False,
             fidelity_guard="avif", guard_bytes=3000)
    _guarded(ready_photo(user), fidelity_min=0.4, fidelity_mean=0.8, fidelity_floor_met=True,
             fidelity_guard="regions", guard_bytes=900)
    ready_photo(user)  # encoded with the guard off: not counted
    s = stats.collect(with_queue=False)
    assert (s.fidelity_measured, s.fidelity_below_floor) == (4, 1)
    assert s.fidelity_below_share == pytest.approx(1 / 4)
    assert (s.guard_bytes, s.guard_patched, s.guard_regions, s.guard_avif) == (4600, 1, 1, 1)
    client.force_login(staff_user)
    body = client.get(reverse("gallery:stats")).content.decode()
    assert "1 of 4 photos below the floor" in body and "4,600 bytes spent on the guard" in body
    assert "1 with faces as region latents" in body


def test_commit_stores_guard_fields_from_codec_info(user, media_root):
    photo = pending_photo(user)
    meta = {
        "model": None,
        "payload_kind": "avif",
        "fidelity_min": 0.31,
        "fidelity_mean": 0.7,
        "fidelity_floor_met": False,
        "fidelity_floor": 0.4,
        "guard": "avif",
        "guard_bytes": 250,
    }
    pipeline.commit(photo.pk, "latents/x.lat", b"x" * 250, meta, [], {}, 1.0)
    photo.refresh_from_db()
    assert photo.status == Photo.Status.READY and photo.codec_model == ""
    assert (photo.fidelity_guard, photo.guard_bytes, photo.fidelity_floor) == ("avif", 250, 0.4)
    assert photo.fidelity_floor_met is False and photo.fidelity_min == pytest.approx(0.31)
