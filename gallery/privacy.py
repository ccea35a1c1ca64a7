"""Who may see which photo: the one place the privacy rules live.

* A photo is **private** to its owner by default.
* ``users``: any signed-in user may see it; ``link``: anyone holding the current share token.
* An album's visibility extends to the photos in it (a photo is visible if it or its album is).
* A share link (``/s/<token>/``) records the token in the visitor's session; every URL of the
  photo (page, status, previews, comparisons, downloads) then checks that the token is still the
  photo's (or its album's) current one. Revoking clears the token, so old links and old session
  grants stop working at once.
* Everything a viewer may not see answers 404, exactly like a photo that does not exist.
"""

from __future__ import annotations

import secrets
import uuid

from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest

from .models import Album, Photo, Visibility

SESSION_KEY = "gallery_share_tokens"
MAX_GRANTS = 50  # tokens remembered per session (oldest dropped first)
TOKEN_BYTES = 24  # 192 bits, URL-safe base64 (32 characters)


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def _signed_in(user) -> bool:
    return bool(getattr(user, "is_authenticated", False))


def _user_q(user) -> Q:
    """Photos a (possibly anonymous) user may see, without share links."""
    if not _signed_in(user):
        return Q(pk__in=[])
    return Q(owner=user) | Q(visibility=Visibility.USERS) | Q(album__visibility=Visibility.USERS)


def visible_photos(user) -> QuerySet[Photo]:
    """Photos a user may see and browse (own, shared with signed-in users, in such an album)."""
    return Photo.objects.select_related("owner").filter(_user_q(user))


def granted_tokens(request: HttpRequest) -> list[str]:
    tokens = request.session.get(SESSION_KEY, []) if hasattr(request, "session") else []
    return [t for t in tokens if isinstance(t, str) and t]


def grant(request: HttpRequest, token: str) -> None:
    tokens = [t for t in granted_tokens(request) if t != token]
    tokens.append(token)
    request.session[SESSION_KEY] = tokens[-MAX_GRANTS:]


def photos_for(request: HttpRequest) -> QuerySet[Photo]:
    """Photos this request may see: :func:`visible_photos` plus those of its share links."""
    q = _user_q(request.user)
    tokens = granted_tokens(request)
    if tokens:
        q |= Q(visibility=Visibility.LINK, share_token__in=tokens)
        q |= Q(album__visibility=Visibility.LINK, album__share_token__in=tokens)
    return Photo.objects.select_related("owner", "album").filter(q)


def albums_for(request: HttpRequest) -> QuerySet[Album]:
    q = Q(pk__in=[])
    if _signed_in(request.user):
        q = Q(owner=request.user) | Q(visibility=Visibility.USERS)
    tokens = granted_tokens(request)
    if tokens:
        q |= Q(visibility=Visibility.LINK, share_token__in=tokens)
    return Album.objects.select_related("owner").filter(q)


def get_photo(request: HttpRequest, pk) -> Photo:
    """The photo if this request may see it; 404 otherwise (same answer as a missing photo)."""
    photo = photos_for(request).filter(pk=pk).first()
    if photo is None:
        raise Http404("No such photo.")
    return photo


def get_album(request: HttpRequest, pk) -> Album:
    album = albums_for(request).filter(pk=pk).first()
    if album is None:
        raise Http404("No such album.")
    return album


def get_own_photo(request: HttpRequest, pk) -> Photo:
    """For owner-only actions: 404 to everyone else (a viewer who may see it gets 404 too)."""
    photo = get_photo(request, pk)
    if photo.owner_id != request.user.pk:
        raise Http404("Only the owner can change this photo.")
    return photo


def resolve_share(token: str) -> Photo | Album | None:
    """The photo or album a share link points at, while that link is live."""
    if not token or len(token) > 64:
        return None
    photo = Photo.objects.filter(visibility=Visibility.LINK, share_token=token).first()
    if photo is not None:
        return photo
    return Album.objects.filter(visibility=Visibility.LINK, share_token=token).first()


def set_visibility(obj: Photo | Album, visibility: str, *, new_link: bool = False) -> None:
    """Change who may see ``obj``. A link gets a fresh token when it has none (or on request);
    leaving ``link`` revokes the token, so an old link never comes back to life."""
    if visibility not in Visibility.values:
        raise ValueError(f"unknown visibility {visibility!r}")
    obj.visibility = visibility
    if visibility == Visibility.LINK:
        if new_link or not obj.share_token:
            obj.share_token = new_token()
    else:
        obj.share_token = ""
    obj.save(update_fields=["visibility", "share_token"])
