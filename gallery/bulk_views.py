"""Actions on a selection of photos from the grid: zip download, move to an album, delete."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from . import albums, downloads, privacy, services
from .models import Photo


def _back(request: HttpRequest) -> HttpResponse:
    nxt = request.POST.get("next", "")
    return redirect(nxt if nxt.startswith("/") and not nxt.startswith("//") else "gallery:list")


@login_required
@require_POST
def bulk(request: HttpRequest) -> HttpResponse:
    ids = [i for i in request.POST.getlist("ids") if privacy.is_uuid(i)][: downloads.MAX_PHOTOS]
    action = request.POST.get("action", "")
    photos = list(privacy.photos_for(request).filter(pk__in=ids))
    if not photos:
        messages.error(request, "Select at least one photo first.")
        return _back(request)
    if action.startswith("zip-") and action[4:] in downloads.KINDS:
        key = downloads.remember(request.session, [str(p.pk) for p in photos], action[4:])
        return redirect("gallery:zip", key=key)
    own = [p for p in photos if p.owner_id == request.user.pk]
    skipped = len(photos) - len(own)
    note = f" ({skipped} of the selected photos are not yours and were left alone)" if skipped else ""
    if action == "move":
        album = albums.target(request.user, request.POST.get("album", ""))
        count = albums.move(request.user, own, album)
        where = f"into “{album}”" if album else "out of their albums"
        messages.success(request, f"Moved {count} photo{'s' if count != 1 else ''} {where}{note}.")
    elif action == "delete":
        for photo in own:
            services.delete_photo(photo, request.user)
        messages.success(request, f"Deleted {len(own)} photo{'s' if len(own) != 1 else ''}{note}.")
    else:
        return HttpResponse("unknown action", status=400, content_type="text/plain")
    return _back(request)


@never_cache
@require_GET
def zip_download(request: HttpRequest, key: str) -> HttpResponse:
    selection = downloads.recall(request.session, key)
    if selection is None:
        raise Http404("This selection has expired.")
    kind = selection["kind"]
    photos = privacy.photos_for(request).filter(pk__in=selection["ids"], status=Photo.Status.READY)
    photos = list(photos.order_by("-created_at"))
    if not photos:
        raise Http404("None of these photos can be downloaded.")
    files, waiting = downloads.members(photos, kind)
    if waiting:
        context = {"total": len(photos), "done": len(files), "kind": downloads.KINDS[kind]}
        return downloads.waiting_page(request, "gallery/zip_wait.html", context, 3)
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    return FileResponse(
        downloads.build_zip(files),
        as_attachment=True,
        filename=f"photos-{stamp}-{kind}.zip",
        content_type="application/zip",
    )
