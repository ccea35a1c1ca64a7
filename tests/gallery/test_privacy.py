"""Privacy: private by default, per-photo and per-album visibility, revocable share links, sign-up.

Every URL of a photo must answer 404 to whoever may not see it (signed in or not), exactly like
a photo that does not exist.
"""

from __future__ import annotations

import io

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import NoReverseMatch, reverse
from PIL import Image

from gallery import previews, privacy
from gallery.models import Album, Photo

from .factories import image_bytes, ready_photo

pytestmark = pytest.mark.django_db


def _with_previews(photo: Photo) -> Photo:
    """Real preview cache files, so preview URLs answer 200 with an image and queue nothing."""
    for spec in previews.SPECS.values():
        out = io.BytesIO()
        Image.new("RGB", (32, 24), "gray").save(out, spec.format)
        default_storage.save(previews.CacheFile(photo, spec).name, ContentFile(out.getvalue()))
    return photo


def photo_urls(photo: Photo) -> list[str]:
    """Every GET URL that serves something of ``photo``."""
    urls = [
        reverse("gallery:detail", args=[photo.pk]),
        reverse("gallery:status", args=[photo.pk]),
        reverse("gallery:latent", args=[photo.pk]),
    ]
    urls += [reverse("gallery:preview", args=[photo.pk, s]) for s in previews.SPECS]
    urls += [reverse("gallery:comparison", args=[photo.pk, c.fmt]) for c in photo.comparisons.all()]
    try:
        urls += [reverse("gallery:download", args=[photo.pk, fmt]) for fmt in ("png", "jpeg")]
    except NoReverseMatch:  # before the decoded downloads exist
        pass
    return urls


def _ok_urls(photo: Photo) -> list[str]:
    # download URLs may answer 202 (render queued) instead of the file; the others serve it
    return [u for u in photo_urls(photo) if "/download/" not in u]


def assert_all_404(client: Client, photo: Photo) -> None:
    for url in photo_urls(photo):
        assert client.get(url).status_code == 404, url


def assert_all_visible(client: Client, photo: Photo) -> None:
    for url in _ok_urls(photo):
        assert client.get(url).status_code == 200, url


def test_upload_is_private_by_default(client, user, other_user, media_root):
    client.force_login(user)
    client.post(
        reverse("gallery:upload"),
        {"size": "tiny", "files": ContentFile(image_bytes(64, 48, "PNG"), name="mine.png")},
        HTTP_ACCEPT="application/json",
    )
    photo = Photo.objects.get()
    assert photo.visibility == "private" and photo.share_token == ""
    client.force_login(other_user)
    assert "mine.png" not in client.get(reverse("gallery:list")).content.decode()
    assert client.get(reverse("gallery:detail", args=[photo.pk])).status_code == 404


def test_second_user_gets_404_on_every_url(client, user, other_user, media_root):
    photo = _with_previews(ready_photo(user, comparisons=("jpeg", "webp")))
    client.force_login(user)
    assert_all_visible(client, photo)
    client.force_login(other_user)
    assert_all_404(client, photo)
    # owner-only actions too: nothing changes
    for name in ("gallery:sharing", "gallery:photo-album", "gallery:delete"):
        response = client.post(reverse(name, args=[photo.pk]), {"visibility": "users", "album": ""})
        assert response.status_code == 404, name
    photo.refresh_from_db()
    assert photo.visibility == "private"
    # and a signed-out visitor
    assert_all_404(Client(), photo)


def test_home_page_shows_what_the_viewer_may_see(client, user, other_user, media_root):
    ready_photo(user, title="alice-private.png")
    hidden = ready_photo(other_user, title="bob-private.png")
    shared = ready_photo(other_user, title="bob-shared.png")
    privacy.set_visibility(shared, "users")
    linked = ready_photo(other_user, title="bob-link.png")
    privacy.set_visibility(linked, "link")
    client.force_login(user)
    body = client.get(reverse("gallery:list")).content.decode()
    assert "alice-private.png" in body and "bob-shared.png" in body
    assert "bob-private.png" not in body and "bob-link.png" not in body  # a link share is not listed
    mine = client.get(reverse("gallery:list") + "?scope=mine").content.decode()
    assert "alice-private.png" in mine and "bob-shared.png" not in mine
    others = client.get(reverse("gallery:list") + "?scope=shared").content.decode()
    assert "bob-shared.png" in others and "alice-private.png" not in others
    assert client.get(reverse("gallery:detail", args=[hidden.pk])).status_code == 404
    assert client.get(reverse("gallery:detail", args=[shared.pk])).status_code == 200


def test_signed_in_users_visibility(client, user, other_user, media_root):
    photo = _with_previews(ready_photo(user))
    privacy.set_visibility(photo, "users")
    client.force_login(other_user)
    assert_all_visible(client, photo)
    page = client.get(reverse("gallery:detail", args=[photo.pk])).content.decode()
    assert 'id="sharing"' not in page  # not the owner: no sharing controls
    assert_all_404(Client(), photo)  # signed out: still nothing


def test_public_link_works_signed_out_and_stops_after_revocation(client, user, media_root):
    photo = _with_previews(ready_photo(user))
    owner = client
    owner.force_login(user)
    response = owner.post(reverse("gallery:sharing", args=[photo.pk]), {"visibility": "link"})
    assert response.status_code == 302
    photo.refresh_from_db()
    token = photo.share_token
    assert photo.visibility == "link" and len(token) >= 32
    share_url = reverse("gallery:share", args=[token])
    assert share_url in owner.get(reverse("gallery:detail", args=[photo.pk])).content.decode()

    visitor = Client()
    assert_all_404(visitor, photo)  # the photo's URL alone is not enough
    response = visitor.get(share_url)
    assert response.status_code == 302 and response["Location"] == reverse("gallery:detail", args=[photo.pk])
    assert_all_visible(visitor, photo)
    assert 'id="sharing"' not in visitor.get(reverse("gallery:detail", args=[photo.pk])).content.decode()
    other = ready_photo(user, title="not-shared.png")
    assert_all_404(visitor, other)  # the link opens this photo only

    # a new link revokes the old one
    owner.post(reverse("gallery:sharing", args=[photo.pk]), {"visibility": "link", "new_link": "1"})
    photo.refresh_from_db()
    assert photo.share_token != token
    assert visitor.get(share_url).status_code == 404
    assert_all_404(visitor, photo)

    # revoking the link (back to private) stops the new one as well, for everyone who used it
    second = Client()
    assert second.get(reverse("gallery:share", args=[photo.share_token])).status_code == 302
    assert_all_visible(second, photo)
    new_token = photo.share_token
    owner.post(reverse("gallery:sharing", args=[photo.pk]), {"visibility": "private"})
    photo.refresh_from_db()
    assert photo.visibility == "private" and photo.share_token == ""
    assert_all_404(second, photo)
    assert second.get(reverse("gallery:share", args=[new_token])).status_code == 404
    # sharing by link again makes a fresh token: the revoked one never comes back
    privacy.set_visibility(photo, "link")
    assert photo.share_token not in ("", token, new_token)
    assert_all_404(second, photo)


def test_unknown_share_tokens_are_404(client):
    for token in ("x", "a" * 32, "a" * 100):
        assert client.get(reverse("gallery:share", args=[token])).status_code == 404


def test_album_visibility_extends_to_its_photos(client, user, other_user, media_root):
    album = Album.objects.create(owner=user, title="Holiday")
    inside = _with_previews(ready_photo(user, title="inside.png"))
    outside = ready_photo(user, title="outside.png")
    client.force_login(user)
    assert (
        client.post(reverse("gallery:photo-album", args=[inside.pk]), {"album": str(album.pk)}).status_code
        == 302
    )
    inside.refresh_from_db()
    assert inside.album == album

    bob = Client()
    bob.force_login(other_user)
    assert bob.get(reverse("gallery:album", args=[album.pk])).status_code == 404
    assert_all_404(bob, inside)

    client.post(reverse("gallery:album-sharing", args=[album.pk]), {"visibility": "users"})
    assert bob.get(reverse("gallery:album", args=[album.pk])).status_code == 200
    assert_all_visible(bob, inside)
    assert_all_404(bob, outside)

    client.post(reverse("gallery:album-sharing", args=[album.pk]), {"visibility": "link"})
    album.refresh_from_db()
    visitor = Client()
    response = visitor.get(reverse("gallery:share", args=[album.share_token]))
    assert response.status_code == 302 and response["Location"] == reverse("gallery:album", args=[album.pk])
    page = visitor.get(reverse("gallery:album", args=[album.pk])).content.decode()
    assert "inside.png" in page and "outside.png" not in page
    assert_all_visible(visitor, inside)
    assert_all_404(visitor, outside)
    assert_all_404(bob, inside)  # no longer shared with signed-in users, and bob has no link

    # taking the photo out of the album ends its sharing through the album
    client.post(reverse("gallery:photo-album", args=[inside.pk]), {"album": ""})
    assert_all_404(visitor, inside)
    # only the owner manages the album
    assert (
        bob.post(reverse("gallery:album-sharing", args=[album.pk]), {"visibility": "users"}).status_code
        == 404
    )
    assert bob.post(reverse("gallery:album-delete", args=[album.pk])).status_code == 404


def test_cannot_move_into_someone_elses_album(client, user, other_user, media_root):
    theirs = Album.objects.create(owner=other_user, title="Bob's")
    photo = ready_photo(user)
    client.force_login(user)
    response = client.post(reverse("gallery:photo-album", args=[photo.pk]), {"album": str(theirs.pk)})
    assert response.status_code == 404
    photo.refresh_from_db()
    assert photo.album is None


def test_album_pages(client, user, media_root):
    client.force_login(user)
    response = client.post(reverse("gallery:albums"), {"title": "  Trip   2026 "})
    album = Album.objects.get()
    assert album.title == "Trip 2026" and album.visibility == "private" and album.owner == user
    assert response["Location"] == reverse("gallery:album", args=[album.pk])
    assert "Trip 2026" in client.get(reverse("gallery:albums")).content.decode()
    photo = ready_photo(user)
    client.post(reverse("gallery:photo-album", args=[photo.pk]), {"album": str(album.pk)})
    cards = client.get(reverse("gallery:albums")).content.decode()
    assert "1 photo · Only me" in cards and reverse("gallery:preview", args=[photo.pk, "thumb"]) in cards
    client.post(reverse("gallery:album-delete", args=[album.pk]))
    assert not Album.objects.exists()
    photo.refresh_from_db()
    assert photo.album is None


def test_signup_open_and_closed(client, settings, django_user_model):
    settings.GALLERY_SIGNUP_OPEN = True
    assert "Create an account" in client.get(reverse("login")).content.decode()
    response = client.post(
        reverse("gallery:signup"),
        {"username": "dora", "password1": "a-long-pass-phrase-77", "password2": "a-long-pass-phrase-77"},
    )
    assert response.status_code == 302 and response["Location"] == reverse("gallery:list")
    dora = django_user_model.objects.get(username="dora")
    assert not dora.is_staff
    assert client.get(reverse("gallery:list")).status_code == 200  # signed in right away
    bad = Client().post(reverse("gallery:signup"), {"username": "eve", "password1": "x", "password2": "y"})
    assert bad.status_code == 400 and not django_user_model.objects.filter(username="eve").exists()

    settings.GALLERY_SIGNUP_OPEN = False
    closed = Client()
    assert "Create an account" not in closed.get(reverse("login")).content.decode()
    response = closed.post(
        reverse("gallery:signup"),
        {"username": "fred", "password1": "a-long-pass-phrase-77", "password2": "a-long-pass-phrase-77"},
    )
    assert response.status_code == 403 and "Sign-up is closed" in response.content.decode()
    assert not django_user_model.objects.filter(username="fred").exists()


def test_share_tokens_are_unguessable():
    tokens = {privacy.new_token() for _ in range(100)}
    assert len(tokens) == 100 and all(len(t) >= 32 for t in tokens)


def test_home_page_of_a_signed_out_visitor_lists_the_opened_links(client, user, media_root):
    assert client.get(reverse("gallery:list"))["Location"].startswith("/accounts/login/")
    shared = ready_photo(user, title="shared.png")
    ready_photo(user, title="private.png")
    privacy.set_visibility(shared, "link")
    client.get(reverse("gallery:share", args=[shared.share_token]))
    body = client.get(reverse("gallery:list")).content.decode()
    assert "shared.png" in body and "private.png" not in body and 'id="bulk-form"' not in body
    assert "shared.png" not in client.get(reverse("gallery:list") + "?scope=mine").content.decode()
    privacy.set_visibility(shared, "private")  # revoked: the link's photo leaves the home page
    assert "shared.png" not in client.get(reverse("gallery:list")).content.decode()
