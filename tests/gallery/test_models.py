from __future__ import annotations

import pytest
from django.db import IntegrityError

from gallery.models import Comparison, Photo

from .factories import pending_photo, ready_photo

pytestmark = pytest.mark.django_db


def test_pending_photo_defaults(user):
    photo = pending_photo(user)
    assert photo.status == Photo.Status.PENDING
    assert not photo.is_ready and not photo.is_finished
    assert photo.ratio is None
    assert photo.staged.size == photo.original_bytes
    assert photo.pixels == 64 * 48


def test_ready_photo_numbers(user, media_root):
    photo = ready_photo(user, width=100, height=80, latent_bytes=500, original_bytes=10_000)
    assert photo.ratio == pytest.approx(20.0)
    assert photo.latent_bpp == pytest.approx(500 * 8 / 8000)
    assert photo.bpp_of(1000) == pytest.approx(1.0)
    assert photo.original_bpp == pytest.approx(10.0)
    assert str(photo) == "pic.png"


def test_photo_ids_are_uuids_and_names_are_generated(user, media_root):
    photo = ready_photo(user, title="../../etc/passwd")
    assert photo.latent.name == f"latents/{photo.pk}.sdl"
    assert all(str(photo.pk) in c.file.name for c in photo.comparisons.all())


def test_one_comparison_per_format(user, media_root):
    photo = ready_photo(user, comparisons=("jpeg",))
    with pytest.raises(IntegrityError):
        Comparison.objects.create(photo=photo, fmt="jpeg", file="x.jpg", bytes=1, width=1, height=1)


def test_comparison_flags(user, media_root):
    photo = ready_photo(user, comparisons=("jpeg",))
    comp = photo.comparisons.get()
    assert not comp.downscaled and comp.content_type == "image/jpeg"
    comp.scale = 0.5
    assert comp.downscaled


def test_deleting_photo_cascades(user):
    photo = pending_photo(user)
    photo.delete()
    from gallery.models import StagedUpload

    assert not StagedUpload.objects.exists()
