"""Request-level guards: a body cap (413), a clean 503 when the database is down, and the CSP header.

`RequestSizeLimitMiddleware` answers ``413`` from the ``Content-Length`` header alone, before any
part of the body is read or staged: the per-file limit (`gallery.uploadhandlers`) bounds one file,
this bounds a form post of many (``GALLERY_MAX_REQUEST_BYTES``). Django never reads past
``Content-Length``, so a client cannot send more than it declared.

`DatabaseUnavailableMiddleware` turns "the database is unavailable" into a clean 503 page instead of a 500.

A lost or refused database connection (PostgreSQL down or restarting, SQLite locked or missing)
surfaces as ``django.db.OperationalError``/``InterfaceError`` anywhere in a view (the session,
``request.user``, staging an upload). Staging is one transaction, so such a failure leaves nothing
half-written; the client gets ``503 Service Unavailable`` with ``Retry-After`` and can simply retry.
The page is rendered without a request context: it must not touch the database itself.

`ContentSecurityPolicyMiddleware` puts ``settings.GALLERY_CSP`` on every response (pages, JSON,
errors, static files) unless a view set its own. The policy allows scripts and styles only from
our static files: templates must not contain inline ``<script>``, ``<style>``, ``style=""`` or
``on…=""`` attributes.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader
from django.template.defaultfilters import filesizeformat

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30
MESSAGE = "The service is temporarily unavailable (database). Nothing was saved; please try again shortly."


class RequestSizeLimitMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.GALLERY_MAX_REQUEST_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0  # Django treats a malformed length as an empty body
        if limit and length > limit:
            log.warning("refused %s %s: body of %d bytes > %d", request.method, request.path, length, limit)
            message = (
                f"The request is {filesizeformat(length)}; the limit for one request is "
                f"{filesizeformat(limit)}. Nothing was saved. Upload fewer files at a time."
            )
            if "application/json" in request.headers.get("Accept", ""):
                return JsonResponse({"errors": {"files": [{"message": message, "code": "too_large"}]},
                                     "results": []}, status=413)
            return HttpResponse(loader.get_template("413.html").render({"message": message}), status=413)
        return self.get_response(request)


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        log.error("database unavailable during %s %s: %s", request.method, request.path, exception)
        if "application/json" in request.headers.get("Accept", ""):
            response: HttpResponse = JsonResponse({"error": MESSAGE, "results": []}, status=503)
        else:
            response = HttpResponse(loader.get_template("503.html").render(), status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        response["Cache-Control"] = "no-store"
        return response


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        policy = settings.GALLERY_CSP  # read per response: cheap, and follows settings overrides
        if policy and "Content-Security-Policy" not in response:
            report_only = settings.GALLERY_CSP_REPORT_ONLY
            response["Content-Security-Policy" + ("-Report-Only" if report_only else "")] = policy
        return response
