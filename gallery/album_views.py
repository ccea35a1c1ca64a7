"""Album pages and the owner's album actions (HTTP only; rules in privacy.py, work in albums.py)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import albums, presenters, privacy
from .models import Album, Visibility
from .views import change_visibility


def _own_album(request: HttpRequest, pk) -> Album:
    album = privacy.get_album(request, pk)
    if album.owner_id != request.user.pk:
        raise Http404("Only the owner can change this album.")
    return album


@login_required
@require_http_methods(["GET", "POST"])
def album_list(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        album = albums.create(request.user, request.POST.get("title", ""))
        messages.success(request, f"Album “{album}” was created. It is private until you share it.")
        return redirect("gallery:album", pk=album.pk)
    visible = privacy.albums_for(request)
    photos = privacy.photos_for(request)
    return render(
        request,
        "gallery/album_list.html",
        {
            "own": presenters.album_cards(visible.filter(owner=request.user), photos),
            "shared": presenters.album_cards(visible.exclude(owner=request.user), photos),
        },
    )


@require_GET
def album_detail(request: HttpRequest, pk) -> HttpResponse:
    album = privacy.get_album(request, pk)
    photos = privacy.photos_for(request).filter(album=album)
    tiles = presenters.tiles(photos)
    is_owner = album.owner_id == request.user.pk
    share_url = ""
    if album.visibility == Visibility.LINK and album.share_token:
        share_url = request.build_absolute_uri(reverse("gallery:share", args=[album.share_token]))
    return render(
        request,
        "gallery/album_detail.html",
        {
            "album": album,
            "tiles": tiles,
            "is_owner": is_owner,
            "share_url": share_url,
            "visibility_choices": Visibility.choices,
            "my_albums": request.user.albums.all() if request.user.is_authenticated else [],
        },
    )


@require_POST
def album_sharing(request: HttpRequest, pk) -> HttpResponse:
    album = _own_album(request, pk)
    return change_visibility(request, album, reverse("gallery:album", args=[album.pk]))


@require_POST
def album_delete(request: HttpRequest, pk) -> HttpResponse:
    album = _own_album(request, pk)
    title = str(album)
    albums.delete(album)
    messages.success(request, f"Album “{title}” was deleted; its photos are still in your gallery.")
    return redirect("gallery:albums")


@require_POST
def photo_album(request: HttpRequest, pk) -> HttpResponse:
    """Owner only: put one photo into one of the owner's albums, or take it out."""
    photo = privacy.get_own_photo(request, pk)
    album = albums.target(request.user, request.POST.get("album", ""))
    albums.move(request.user, [photo], album)
    messages.success(request, f"Moved to “{album}”." if album else "Taken out of its album.")
    return redirect("gallery:detail", pk=photo.pk)
