"""A photo deleted by its owner while its task runs (found by the soak, docs/bench/reliability): the
task stores nothing for it (or removes what it stored), and does not retry."""

from __future__ import annotations

import pytest
from django.core.files.storage import default_storage

from gallery import services, storage
from gallery.models import Photo
from gallery.tasks import encode_photo
from gallery.worker import pipeline

from .factories import image_bytes, pending_photo

pytestmark = pytest.mark.django_db


def _files(photo_id) -> list[str]:
    names = [n for n in [storage.latent_name(photo_id)] if default_storage.exists(n)]
    for folder in storage.photo_folders(photo_id):
        names += list(storage.walk(folder))
    return names


def _deleting(monkeypatch, target: str, photo_id, user) -> None:
    real = getattr(pipeline, target)

    def wrapper(*args, **kwargs):
        out = real(*args, **kwargs)
        services.delete_photo(Photo.objects.get(pk=photo_id), user)  # the owner presses "delete" now
        return out

    monkeypatch.setattr(pipeline, target, wrapper)


@pytest.mark.parametrize("moment", ["load_codec", "write_previews", "make_comparisons"])
def test_deleted_mid_task_leaves_no_files_and_no_retry(user, media_root, monkeypatch, moment):
    photo = pending_photo(user, width=96, height=64, staged=image_bytes(96, 64, "PNG"))
    _deleting(monkeypatch, moment, photo.pk, user)
    outcome = encode_photo.apply(args=[str(photo.pk)])
    assert outcome.successful(), outcome.traceback  # no retry: Photo.DoesNotExist is not transient
    assert outcome.get() in {"deleted", "ready"}
    assert not Photo.objects.filter(pk=photo.pk).exists()
    assert _files(photo.pk) == []
