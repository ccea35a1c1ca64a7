"""Downloads of several photos at once: a zip of the selection (decoded PNG/JPEG or the latents).

The decoded files are the preview-style cache files of the ``png``/``jpeg`` specs (rendered by the
worker on demand, see gallery/previews/specs.py); a zip is assembled only once every one of them
exists. Selections are kept in the session under a random key, so the waiting page can simply
reload a GET URL (no CSRF token or id list in the URL).
"""

from __future__ import annotations

import secrets
import tempfile
import zipfile
from dataclasses import dataclass

from django.core.files.storage import default_storage

from . import presenters, previews

KINDS = {"png": "PNG", "jpeg": "JPEG", "latent": "latent"}
MAX_WAIT_SECONDS = 300  # a waiting page stops refreshing after this (a stopped worker never ends it)
MAX_PHOTOS = 100
SESSION_KEY = "gallery_zip_selections"
KEEP_SELECTIONS = 10


def remember(session, ids: list[str], kind: str) -> str:
    """Store a selection in the session; returns its key (only the newest few are kept)."""
    key = secrets.token_urlsafe(12)
    kept = dict(list(session.get(SESSION_KEY, {}).items())[-(KEEP_SELECTIONS - 1) :])
    kept[key] = {"ids": ids[:MAX_PHOTOS], "kind": kind}
    session[SESSION_KEY] = kept
    return key


def recall(session, key: str) -> dict | None:
    value = session.get(SESSION_KEY, {}).get(key)
    return value if isinstance(value, dict) and value.get("kind") in KINDS else None


def waiting_page(request, template: str, context: dict, seconds: int):
    """202 and a page that reloads itself every ``seconds`` (counting its reloads in ``?try=``);
    503 with a "try again later" once ``MAX_WAIT_SECONDS`` have passed."""
    from django.shortcuts import render

    try:
        tries = max(0, int(request.GET.get("try", "0")))
    except ValueError:
        tries = 0
    if tries * seconds >= MAX_WAIT_SECONDS:
        response = render(request, template, {**context, "gave_up": True}, status=503)
        response["Retry-After"] = "60"
        return response
    refresh = f"{seconds};url={request.path}?try={tries + 1}"
    response = render(request, template, {**context, "refresh": refresh}, status=202)
    response["Retry-After"] = str(seconds)
    return response


@dataclass
class Member:
    arcname: str
    storage_name: str


def members(photos, kind: str) -> tuple[list[Member], int]:
    """(files to zip, how many are still being decoded). Missing decodes are queued."""
    out: list[Member] = []
    waiting = 0
    used: set[str] = set()
    for photo in photos:
        if kind == "latent":
            stem = presenters.download_name(photo, "sdl").removesuffix("-decoded.sdl")
            arc, name = f"{stem}.sdl", photo.latent.name
        else:
            cache_file = previews.request(photo, presenters.DOWNLOAD_SPECS[kind])
            if cache_file is None:
                waiting += 1
                continue
            arc, name = presenters.download_name(photo, cache_file.spec.extension), cache_file.name
        if arc in used:  # two photos with one title
            arc = f"{str(photo.pk)[:8]}-{arc}"
        used.add(arc)
        out.append(Member(arc, name))
    return out, waiting


def build_zip(files: list[Member]):
    """A temporary file holding the zip (stored, not deflated: PNG/JPEG/latents are compressed)."""
    tmp = tempfile.TemporaryFile()  # noqa: SIM115 - FileResponse closes it
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
        for m in files:
            with default_storage.open(m.storage_name, "rb") as src, zf.open(m.arcname, "w") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
    tmp.seek(0)
    return tmp
