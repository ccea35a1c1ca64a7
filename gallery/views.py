"""HTTP layer only: access checks, forms, rendering. The work is in services/previews/stats.

Every URL of a photo goes through :func:`gallery.privacy.get_photo`: a photo the request may not
see answers 404, signed in or not (a share link's visitor needs no account).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_safe

from . import albums, downloads, exif, presenters, previews, privacy, quotas, services, stats, storage
from .forms import UploadForm
from .models import Comparison, Photo, Visibility

SCOPES = {"all": "All", "mine": "Mine", "shared": "Shared with me"}


def _photo(request: HttpRequest, pk) -> Photo:
    return privacy.get_photo(request, pk)


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


@require_GET
def photo_list(request: HttpRequest) -> HttpResponse:
    """What this viewer may see: own photos, those shared with signed-in users, and those of the
    share links opened in this session (a signed-out visitor without any goes to the sign-in)."""
    signed_in = request.user.is_authenticated
    if not signed_in and not privacy.granted_tokens(request):
        return redirect_to_login(request.get_full_path())
    scope = "mine" if request.GET.get("mine") == "1" else request.GET.get("scope", "all")
    scope = scope if scope in SCOPES else "all"
    sort = request.GET.get("sort", "uploaded")
    sort = sort if sort in presenters.SORTS else "uploaded"
    query = request.GET.get("q", "").strip()[:100]
    photos = presenters.scoped(privacy.photos_for(request), request.user if signed_in else None, scope)
    photos = presenters.ordered(photos, sort, query)
    page = Paginator(photos, settings.GALLERY_PAGE_SIZE).get_page(request.GET.get("page"))
    tiles = presenters.tiles(page)
    return render(
        request,
        "gallery/photo_list.html",
        {
            "page": page,
            "tiles": tiles,
            "scope": scope,
            "scopes": SCOPES,
            "mine": scope == "mine",
            "my_albums": request.user.albums.all() if signed_in else [],
            "sort": sort,
            "sorts": presenters.SORTS,
            "query": query,
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def upload(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return render(request, "gallery/upload.html", {"form": UploadForm(), **_limits(request)})
    files = request.FILES  # parse the body first: the size-limit upload handler records skipped files
    oversize = getattr(request, "gallery_oversize_uploads", [])
    form = UploadForm(request.POST, files, oversize=oversize)
    if not form.is_valid():
        if _wants_json(request):
            return JsonResponse({"errors": form.errors.get_json_data(), "results": []}, status=400)
        return render(request, "gallery/upload.html", {"form": form, **_limits(request)}, status=400)
    results = services.accept_uploads(
        request.user,
        form.cleaned_data["files"],
        form.cleaned_data["size"],
        form.cleaned_data["budget_bytes"],
        oversize=oversize,
    )
    exif.record(results, form.cleaned_data["files"], keep_gps=request.POST.get("keep_location") == "1")
    accepted = [r for r in results if r.ok]
    if _wants_json(request):
        status = 201 if accepted and len(accepted) == len(results) else (400 if not accepted else 200)
        return JsonResponse({"results": [_result_json(r) for r in results]}, status=status)
    for r in results:
        if r.ok:
            messages.success(request, f"“{r.name}” was uploaded and is queued for encoding.")
        else:
            messages.error(request, f"“{r.name}” was not accepted: {r.error}")
    if not accepted:
        return render(request, "gallery/upload.html", {"form": UploadForm(), **_limits(request)}, status=400)
    return redirect("gallery:list")


def _limits(request: HttpRequest) -> dict:
    return {
        "max_upload_bytes": settings.GALLERY_MAX_UPLOAD_BYTES,
        "max_megapixels": settings.GALLERY_MAX_PIXELS / 1e6,
        "max_files": settings.GALLERY_MAX_FILES_PER_REQUEST,
        "quota_meters": quotas.Usage(request.user).meters(),
        "preset_target": settings.GALLERY_PRESET_TARGET,
        "preset_headroom": f"{settings.GALLERY_PRESET_TARGET_HEADROOM:g}",
    }


def _result_json(r: services.UploadResult) -> dict:
    if not r.ok:
        return {"name": r.name, "ok": False, "error": r.error}
    return {
        "name": r.name,
        "ok": True,
        "id": str(r.photo.pk),
        "url": reverse("gallery:detail", args=[r.photo.pk]),
        "status_url": reverse("gallery:status", args=[r.photo.pk]),
        "status": r.photo.status,
    }


@require_GET
def photo_detail(request: HttpRequest, pk) -> HttpResponse:
    photo = _photo(request, pk)
    is_owner = photo.owner_id == request.user.pk
    estimate = presenters.queue_estimate(photo)
    context = {
        "photo": photo,
        "variants": presenters.variants(photo),
        "can_delete": is_owner,
        "is_owner": is_owner,
        "nav": presenters.neighbours(privacy.photos_for(request), photo),
        "visibility_choices": Visibility.choices,
        "share_url": _share_url(request, photo),
        "albums": request.user.albums.all() if is_owner else [],
        "downloads": presenters.downloads(photo),
        "full_url": presenters.full_url(photo),
        "queue_text": presenters.queue_text(estimate),
        "broker_unreachable": bool(estimate and estimate.get("broker_unreachable")),
        "size_note": presenters.size_note(photo),
        "error_text": presenters.error_text(photo),
        "protection": presenters.protection(photo) if photo.is_ready else None,
    }
    return render(request, "gallery/photo_detail.html", context)


def _share_url(request: HttpRequest, obj) -> str:
    if obj.visibility != Visibility.LINK or not obj.share_token:
        return ""
    return request.build_absolute_uri(reverse("gallery:share", args=[obj.share_token]))


@require_http_methods(["POST"])
def photo_title(request: HttpRequest, pk) -> HttpResponse:
    """Owner only: rename the photo."""
    photo = privacy.get_own_photo(request, pk)
    title = albums.clean_title(request.POST.get("title", ""), photo.title)
    Photo.objects.filter(pk=photo.pk).update(title=title)
    messages.success(request, f"Renamed to “{title}”.")
    return redirect("gallery:detail", pk=photo.pk)


@require_http_methods(["POST"])
def photo_sharing(request: HttpRequest, pk) -> HttpResponse:
    """Owner only: who may see the photo; a new link revokes the old one."""
    photo = privacy.get_own_photo(request, pk)
    return change_visibility(request, photo, reverse("gallery:detail", args=[photo.pk]))


def change_visibility(request: HttpRequest, obj, back: str) -> HttpResponse:
    """The sharing form of a photo or an album (the caller checked ownership)."""
    visibility = request.POST.get("visibility", "")
    if visibility not in Visibility.values:
        return HttpResponse("unknown visibility", status=400, content_type="text/plain")
    privacy.set_visibility(obj, visibility, new_link=request.POST.get("new_link") == "1")
    messages.success(request, presenters.visibility_message(obj))
    return redirect(back)


@require_GET
def share(request: HttpRequest, token: str) -> HttpResponse:
    """A share link: remember the token in the session, then show the photo or album."""
    target = privacy.resolve_share(token)
    if target is None:
        raise Http404("This link does not exist or was revoked.")
    privacy.grant(request, token)
    if isinstance(target, Photo):
        return redirect("gallery:detail", pk=target.pk)
    return redirect("gallery:album", pk=target.pk)


@never_cache
@require_GET
def photo_status(request: HttpRequest, pk) -> JsonResponse:
    return JsonResponse(presenters.status_payload(_photo(request, pk), request.user))


@login_required
@require_http_methods(["GET", "POST"])
def photo_delete(request: HttpRequest, pk) -> HttpResponse:
    photo = _photo(request, pk)
    if photo.owner_id != request.user.pk:
        raise PermissionDenied("Only the owner can delete this photo.")
    if request.method == "POST":
        title = str(photo)
        services.delete_photo(photo, request.user)
        messages.success(request, f"“{title}” was deleted.")
        return redirect("gallery:list")
    return render(request, "gallery/photo_confirm_delete.html", {"photo": photo})


@require_safe
def preview(request: HttpRequest, pk, spec: str) -> HttpResponse:
    if spec not in previews.SPECS:
        raise Http404("unknown preview size")
    photo = _photo(request, pk)
    cache_file = previews.request(photo, spec)  # a miss of a ready photo queues the render
    if cache_file is None:
        return _placeholder(photo, previews.SPECS[spec])
    versioned = request.GET.get("v") == cache_file.version
    return storage.storage_response(
        cache_file.name,
        cache_file.spec.content_type,
        max_age=31536000 if versioned else 60,
        immutable=versioned,
    )


def _placeholder(photo: Photo, spec: previews.PreviewSpec) -> HttpResponse:
    scale = min(1.0, spec.max_side / max(photo.original_width, photo.original_height))
    width = max(1, round(photo.original_width * scale))
    height = max(1, round(photo.original_height * scale))
    label = {"failed": "Encoding failed", "ready": "Rendering preview…"}.get(photo.status, "Encoding…")
    svg = render_to_string("gallery/placeholder.svg", {"width": width, "height": height, "label": label})
    response = HttpResponse(svg, content_type="image/svg+xml; charset=utf-8")
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    response["X-Preview"] = "pending"
    return response


@require_GET
def comparison(request: HttpRequest, pk, fmt: str) -> HttpResponse:
    photo = _photo(request, pk)
    comp = get_object_or_404(Comparison, photo=photo, fmt=fmt)
    return storage.storage_response(comp.file.name, comp.content_type, max_age=86400)


@require_GET
def latent_download(request: HttpRequest, pk) -> HttpResponse:
    photo = _photo(request, pk)
    if not photo.is_ready:
        raise Http404("the latent is not ready yet")
    stem = photo.title.rsplit(".", 1)[0] or str(photo.pk)
    return storage.storage_response(
        photo.latent.name,
        storage.LATENT_CONTENT_TYPE,
        download_name=f"{stem}.{storage.LATENT_EXT}",
        max_age=86400,
    )


@never_cache
@require_safe
def decoded_download(request: HttpRequest, pk, fmt: str) -> HttpResponse:
    """The photo decoded from its latent at full resolution, as PNG or JPEG (a cache file made by
    the worker on the first request; until then a page that says so and refreshes itself)."""
    spec_name = presenters.DOWNLOAD_SPECS.get(fmt)
    if spec_name is None:
        raise Http404("unknown download format")
    photo = _photo(request, pk)
    if not photo.is_ready:
        raise Http404("the photo is not encoded yet")
    cache_file = previews.request(photo, spec_name)
    if cache_file is None:
        if _wants_json(request):
            return JsonResponse({"ready": False, "retry_after": 2}, status=202)
        context = {"photo": photo, "fmt": fmt.upper()}
        return downloads.waiting_page(request, "gallery/download_wait.html", context, 2)
    return storage.storage_response(
        cache_file.name,
        cache_file.spec.content_type,
        download_name=presenters.download_name(photo, cache_file.spec.extension),
        max_age=3600,
    )


@login_required
@require_GET
def storage_stats(request: HttpRequest) -> HttpResponse:
    if not request.user.is_staff:
        raise PermissionDenied("The storage statistics are for staff only.")
    return render(request, "gallery/stats.html", {"stats": stats.collect()})
