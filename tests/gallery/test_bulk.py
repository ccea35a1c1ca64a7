"""Selections from the grid: zip downloads (latents, decoded PNG/JPEG), move to an album, delete.
Only what the viewer may see is ever zipped; only the viewer's own photos are moved or deleted."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse
from PIL import Image

from gallery import previews, privacy
from gallery.models import Album, Photo

from .factories import ready_photo

pytestmark = pytest.mark.django_db


def _zip(response) -> zipfile.ZipFile:
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def _post(client, action, photos, **extra):
    data = {"action": action, "ids": [str(p.pk) for p in photos], **extra}
    return client.post(reverse("gallery:bulk"), data)


def test_zip_of_latents_only_what_the_viewer_may_see(client, user, other_user, media_root):
    a = ready_photo(user, title="a.png", latent_bytes=300)
    b = ready_photo(user, title="b.png", latent_bytes=400)
    hidden = ready_photo(other_user, title="secret.png")
    client.force_login(user)
    response = _post(client, "zip-latent", [a, b, hidden])
    assert response.status_code == 302
    zf = _zip(client.get(response["Location"]))
    assert sorted(zf.namelist()) == ["a.sdl", "b.sdl"]
    with default_storage.open(a.latent.name) as fh:
        assert zf.read("a.sdl") == fh.read()
    # the selection lives in this session only
    bob = Client()
    bob.force_login(other_user)
    assert bob.get(response["Location"]).status_code == 404


def test_zip_of_decoded_pngs_waits_for_the_worker(client, user, media_root, purged_queue):
    photos = [ready_photo(user, title=f"p{i}.png") for i in range(2)]
    client.force_login(user)
    location = _post(client, "zip-png", photos)["Location"]
    waiting = client.get(location)
    assert waiting.status_code == 202 and waiting["Retry-After"] == "3"
    assert f'content="3;url={location}?try=1"' in waiting.content.decode()
    # a worker that never answers: the page stops refreshing after five minutes and says so
    gave_up = client.get(location + "?try=100")
    assert gave_up.status_code == 503 and "Not decoded yet" in gave_up.content.decode()
    assert 'http-equiv="refresh"' not in gave_up.content.decode()
    for photo in photos:  # what the worker writes (test_downloads.py covers the real decode)
        out = io.BytesIO()
        Image.new("RGB", (photo.original_width, photo.original_height), "red").save(out, "PNG")
        spec = previews.SPECS["png"]
        default_storage.save(previews.CacheFile(photo, spec).name, ContentFile(out.getvalue()))
    zf = _zip(client.get(location))
    assert sorted(zf.namelist()) == ["p0-decoded.png", "p1-decoded.png"]
    assert Image.open(io.BytesIO(zf.read("p0-decoded.png"))).size == (64, 48)


def test_bulk_move_and_delete_touch_only_own_photos(client, user, other_user, media_root):
    mine = [ready_photo(user, title=f"m{i}.png") for i in range(2)]
    theirs = ready_photo(other_user, title="theirs.png")
    privacy.set_visibility(theirs, "users")  # visible, but not alice's
    album = Album.objects.create(owner=user, title="Best")
    client.force_login(user)
    _post(client, "move", [*mine, theirs], album=str(album.pk))
    assert set(album.photos.all()) == set(mine)
    theirs.refresh_from_db()
    assert theirs.album is None
    bobs = Album.objects.create(owner=other_user, title="Bob's")
    assert _post(client, "move", mine, album=str(bobs.pk)).status_code == 404
    response = _post(client, "delete", [*mine, theirs], next="/?scope=mine")
    assert response.status_code == 302 and response["Location"] == "/?scope=mine"
    assert list(Photo.objects.all()) == [theirs]


def test_bulk_needs_a_selection_and_a_known_action(client, user, media_root):
    photo = ready_photo(user)
    client.force_login(user)
    assert _post(client, "delete", []).status_code == 302  # "select at least one photo"
    assert _post(client, "explode", [photo]).status_code == 400
    assert Photo.objects.filter(pk=photo.pk).exists()
    assert (
        Client().post(reverse("gallery:bulk"), {"action": "delete", "ids": [str(photo.pk)]}).status_code
        == 302
    )
    assert Photo.objects.filter(pk=photo.pk).exists()


def test_grid_has_selection_checkboxes(client, user, media_root):
    photo = ready_photo(user)
    client.force_login(user)
    body = client.get(reverse("gallery:list")).content.decode()
    assert 'id="bulk-form"' in body and f'value="{photo.pk}" form="bulk-form"' in body
