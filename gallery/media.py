"""Streaming stored files to the browser with the right headers.

Local storage: the file is streamed by Django (after the view's access check) with an explicit
Content-Type and ``X-Content-Type-Options: nosniff``. Remote storage (S3-compatible): a redirect
to a short-lived signed URL; the object's Content-Type was set when it was written.
"""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponse, HttpResponseRedirect


def storage_response(
    name: str,
    content_type: str,
    *,
    download_name: str | None = None,
    max_age: int = 3600,
    immutable: bool = False,
) -> HttpResponse:
    try:
        path = default_storage.path(name)
    except NotImplementedError:
        response: HttpResponse = HttpResponseRedirect(default_storage.url(name))
    else:
        try:
            fh = open(path, "rb")  # noqa: SIM115 - FileResponse closes it
        except FileNotFoundError:
            raise Http404("file not found") from None
        response = FileResponse(
            fh,
            content_type=content_type,
            as_attachment=download_name is not None,
            filename=download_name or "",
        )
    response["X-Content-Type-Options"] = "nosniff"
    cache = f"private, max-age={max_age}"
    response["Cache-Control"] = cache + (", immutable" if immutable else "")
    return response
