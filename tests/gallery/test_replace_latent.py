"""The second look's file swap (`pipeline.replace_latent`) never overwrites the file the row points at:
the new latent gets a name of its own, the row moves to it under the row lock, and only after the
commit does the old file go. A commit that fails leaves the photo exactly as it was. Real storage,
real database; the failure is a database error injected into the row's save."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.db import DatabaseError

from gallery import previews
from gallery.models import Photo
from gallery.worker import pipeline

from .factories import ready_photo

pytestmark = pytest.mark.django_db

NEW = b"new latent bytes " * 20
META = {"model": "taesd", "fidelity_floor_met": True, "guard": "none"}


def _read(name: str) -> bytes:
    with default_storage.open(name, "rb") as fh:
        return fh.read()


def _picture(photo: Photo) -> np.ndarray:
    return np.full((photo.original_height, photo.original_width, 3), 90, np.uint8)


def test_the_row_moves_to_a_new_file_and_the_old_one_goes(user, media_root) -> None:
    photo = ready_photo(user)
    old_name, ready_at = photo.latent.name, photo.ready_at
    assert pipeline.replace_latent(photo.pk, NEW, META, _picture(photo)) is True
    photo.refresh_from_db()
    assert photo.latent.name != old_name and _read(photo.latent.name) == NEW
    assert photo.latent_bytes == len(NEW) and photo.ready_at == ready_at
    assert not default_storage.exists(old_name)
    assert previews.lookup(photo, "thumb") is not None


def test_a_failed_commit_leaves_the_photo_as_it_was(user, media_root, monkeypatch) -> None:
    photo = ready_photo(user)
    before = Photo.objects.get(pk=photo.pk)
    old_bytes = _read(before.latent.name)
    files_before = set(default_storage.listdir("latents")[1])

    def broken_save(self, *args, **kwargs):
        raise DatabaseError("could not write the row")

    monkeypatch.setattr(Photo, "save", broken_save)
    with pytest.raises(DatabaseError):
        pipeline.replace_latent(photo.pk, NEW, META, _picture(photo))
    monkeypatch.undo()
    after = Photo.objects.get(pk=photo.pk)
    assert (after.latent.name, after.latent_sha256, after.latent_bytes) == (
        before.latent.name, before.latent_sha256, before.latent_bytes)
    assert _read(after.latent.name) == old_bytes  # never overwritten
    assert set(default_storage.listdir("latents")[1]) == files_before  # the new file is gone again


def test_a_photo_no_longer_ready_keeps_nothing_of_the_replacement(user, media_root) -> None:
    photo = ready_photo(user)
    files_before = set(default_storage.listdir("latents")[1])
    Photo.objects.filter(pk=photo.pk).update(status=Photo.Status.PENDING)  # no longer READY
    assert pipeline.replace_latent(photo.pk, NEW, META, _picture(photo)) is False
    assert set(default_storage.listdir("latents")[1]) == files_before
