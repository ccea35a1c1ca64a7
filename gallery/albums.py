"""Albums: a named set of one owner's photos. Visibility rules are in gallery/privacy.py."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from django.db import transaction
from django.http import Http404

from .models import Album, Photo

MAX_TITLE = 200


def clean_title(title: str, default: str) -> str:
    """A display title typed by a user: no control characters, single spaces, at most 200 chars."""
    text = "".join(ch for ch in (title or "") if unicodedata.category(ch)[0] != "C" or ch in " \t\n")
    return " ".join(text.split())[:MAX_TITLE] or default


def create(owner, title: str) -> Album:
    return Album.objects.create(owner=owner, title=clean_title(title, "Untitled album"))


def own_album(owner, album_id: str) -> Album | None:
    """One of ``owner``'s albums by id (None for anything else, including a malformed id)."""
    from .privacy import is_uuid

    return Album.objects.filter(pk=album_id, owner=owner).first() if is_uuid(album_id) else None


def target(owner, album_id: str) -> Album | None:
    """The album a "move" form names: None for "no album"; 404 unless it is one of the owner's."""
    if not album_id:
        return None
    album = own_album(owner, album_id)
    if album is None:
        raise Http404("No such album.")
    return album


def move(owner, photos: Iterable[Photo], album: Album | None) -> int:
    """Put the owner's ``photos`` into ``album`` (or take them out with None); returns how many.

    Photos of other owners, and albums of other owners, are never touched.
    """
    if album is not None and album.owner_id != owner.pk:
        raise ValueError("not your album")
    ids = [p.pk for p in photos if p.owner_id == owner.pk]
    with transaction.atomic():
        return Photo.objects.filter(pk__in=ids, owner=owner).update(album=album)


def delete(album: Album) -> None:
    """Delete the album; its photos stay (they lose the album and with it the album's sharing)."""
    album.delete()
