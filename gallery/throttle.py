"""Login throttling: django-axes, with our backend wrapper and lockout page.

django-axes records failed sign-ins in the database (shared by every web process and host, and
kept across restarts) and refuses further attempts for a (username, client address) pair after
``AXES_FAILURE_LIMIT`` failures until ``AXES_COOLOFF_TIME`` has passed. Both the site's login page
and the admin's go through it. While locked, even the right password is refused, and the answer
is a 429 with a plain message instead of another "wrong password".

Staff unlock an account early in the admin ("Access attempts") or with
``manage.py axes_reset_username USERNAME``.

Behind a reverse proxy every request comes from the proxy's address; with
``GALLERY_TRUSTED_PROXIES=N`` the client address is taken from ``X-Forwarded-For`` as the N-th
entry from the right (the one the outermost trusted proxy saw), so entries a client adds itself
are ignored.
"""

from __future__ import annotations

from axes.backends import AxesStandaloneBackend
from axes.helpers import get_cool_off
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render


class LoginThrottleBackend(AxesStandaloneBackend):
    """Axes' check before the password backends; a call without a request is not a web login.

    ``authenticate()`` without a request (the test client's ``login()``, scripts, management
    commands) cannot be attributed to a client, so it is passed on to the next backend instead of
    failing as axes does by default.
    """

    def authenticate(self, request: HttpRequest | None, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def client_ip(request: HttpRequest) -> str | None:
    """The client's address for throttling (``AXES_CLIENT_IP_CALLABLE``)."""
    remote = request.META.get("REMOTE_ADDR")
    hops = getattr(settings, "GALLERY_TRUSTED_PROXIES", 0)
    if hops <= 0:
        return remote
    chain = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    return chain[-hops] if len(chain) >= hops else remote


def lockout_message(request: HttpRequest | None = None) -> str:
    cool_off = get_cool_off(request)
    if cool_off:
        minutes = max(1, round(cool_off.total_seconds() / 60))
        wait = f"Try again in {minutes} minute{'s' if minutes != 1 else ''}"
    else:
        wait = "Ask an administrator to unlock the account"
    return (
        "Too many failed sign-in attempts for this account from your address, so sign-in is "
        f"blocked for now (even with the right password). {wait}."
    )


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """429 with the message: JSON for API clients, else the lockout page
    (templates/registration/locked_out.html) saying when to try again."""
    message = lockout_message(request)
    if "application/json" in request.headers.get("Accept", ""):
        response: HttpResponse = JsonResponse({"error": message, "code": "locked_out"}, status=429)
    else:
        cool_off = get_cool_off(request)
        minutes = max(1, round(cool_off.total_seconds() / 60)) if cool_off else None
        context = {"message": message, "retry_minutes": minutes}
        response = render(request, "registration/locked_out.html", context, status=429)
    cool_off = get_cool_off(request)
    if cool_off:
        response["Retry-After"] = str(int(cool_off.total_seconds()))
    return response
