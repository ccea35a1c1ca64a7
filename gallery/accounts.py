"""Self-service sign-up, which staff can turn off with the setting ``GALLERY_SIGNUP_OPEN``.

The setting (or, when it is not in the Django settings, the environment variable of the same
name) is read on every request, so tests and deployments can flip it without code changes.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.forms import UserCreationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

FALSE = {"0", "false", "no", "off", ""}


def signup_open() -> bool:
    value = getattr(settings, "GALLERY_SIGNUP_OPEN", None)
    if value is None:
        value = os.environ.get("GALLERY_SIGNUP_OPEN", "1").strip().lower() not in FALSE
    return bool(value)


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if not signup_open():
        return render(request, "registration/signup_closed.html", status=403)
    if request.user.is_authenticated:
        return redirect("gallery:list")
    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(
            request, f"Welcome, {user.get_username()}. Your photos are private until you share them."
        )
        return redirect("gallery:list")
    return render(request, "registration/signup.html", {"form": form}, status=400 if form.errors else 200)
