"""Every stored name and content type of the gallery, and the few storage operations on them.

One place owns the layout of media storage (names are generated, never derived from user file
names)::

    latents/<photo id>.sdl                    the latent bitstream (the only source of truth)
    comparisons/<photo id>/<fmt>.<ext>        JPEG/WebP/AVIF at the latent's byte budget
    previews/<photo id>/<spec>-<digest>.<ext> preview cache files (gallery/previews)

and the one table of content types (by format and by extension). Streaming a stored file to the
browser (``storage_response``) lives here too, so the view layer never guesses a Content-Type.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponse, HttpResponseRedirect

from codec.container.images import FORMATS as IMAGE_FORMATS

log = logging.getLogger(__name__)

LATENTS = "latents"
COMPARISONS = "comparisons"
PREVIEWS = "previews"
#: folders whose second path part is a photo id (the sweeper collects those of deleted photos)
PHOTO_FOLDERS = (COMPARISONS, PREVIEWS)

LATENT_EXT = "sdl"
LATENT_CONTENT_TYPE = "application/octet-stream"


# format name (as the codec's baselines and the preview specs call it) → (extension, content type):
# the codec's one image-format table (torch-free) plus our latent files
_FORMATS: dict[str, tuple[str, str]] = {
    name: (f.extension.lstrip("."), f.content_type) for name, f in IMAGE_FORMATS.items()
} | {"latent": (LATENT_EXT, LATENT_CONTENT_TYPE)}
_BY_EXTENSION: dict[str, str] = {ext: ctype for ext, ctype in _FORMATS.values()} | {"jpeg": "image/jpeg"}


def extension(fmt: str) -> str:
    """File extension of a format name (``"jpeg"`` → ``"jpg"``); KeyError for an unknown format."""
    return _FORMATS[fmt.lower()][0]


def content_type(fmt: str) -> str:
    """Content type of a format name (``"webp"`` → ``"image/webp"``); KeyError for an unknown format."""
    return _FORMATS[fmt.lower()][1]


def content_type_for_name(name: str) -> str:
    """Content type of a stored name, by its extension (``application/octet-stream`` if unknown)."""
    return _BY_EXTENSION.get(name.rsplit(".", 1)[-1].lower(), "application/octet-stream")


# --- names ------------------------------------------------------------------------------------
def latent_name(photo_id: uuid.UUID | str, version: str | None = None) -> str:
    """The latent file of a photo; ``version`` (a replacement's sha256 prefix) names a second file so the
    one the row points at is never overwritten before the row points elsewhere."""
    return f"{LATENTS}/{photo_id}.{version}.{LATENT_EXT}" if version else f"{LATENTS}/{photo_id}.{LATENT_EXT}"


def comparison_folder(photo_id: uuid.UUID | str) -> str:
    return f"{COMPARISONS}/{photo_id}"


def comparison_name(photo_id: uuid.UUID | str, fmt: str) -> str:
    return f"{comparison_folder(photo_id)}/{fmt}.{extension(fmt)}"


def preview_folder(photo_id: uuid.UUID | str | None = None) -> str:
    return PREVIEWS if photo_id is None else f"{PREVIEWS}/{photo_id}"


def preview_name(photo_id: uuid.UUID | str, spec_name: str, digest: str, fmt: str) -> str:
    return f"{preview_folder(photo_id)}/{spec_name}-{digest}.{extension(fmt)}"


def photo_dirs() -> Iterable[tuple[str, str]]:
    """(folder, name) of every sub-folder of the per-photo folders (the name should be a photo id)."""
    for folder in PHOTO_FOLDERS:
        try:
            dirs, _files = default_storage.listdir(folder)
        except FileNotFoundError:
            continue
        for d in dirs:
            yield f"{folder}/{d}", d


def photo_folders(photo_id: uuid.UUID | str) -> list[str]:
    """Every folder that holds files of one photo only."""
    return [f"{folder}/{photo_id}" for folder in PHOTO_FOLDERS]


# --- writing, walking, deleting ---------------------------------------------------------------
def content_file(data: bytes, ctype: str) -> ContentFile:
    """A ContentFile that tells S3-compatible storages its Content-Type (FileSystemStorage ignores it)."""
    f = ContentFile(data)
    f.content_type = ctype
    return f


def save(name: str, data: bytes, ctype: str | None = None) -> str:
    """Write ``data`` under ``name`` (overwriting); returns the stored name."""
    return default_storage.save(name, content_file(data, ctype or content_type_for_name(name)))


def walk(path: str) -> Iterable[str]:
    """Every file name below ``path`` (nothing when it does not exist)."""
    try:
        dirs, files = default_storage.listdir(path)
    except FileNotFoundError:
        return
    for f in files:
        yield f"{path}/{f}"
    for d in dirs:
        yield from walk(f"{path}/{d}")


def is_local() -> bool:
    """True for a file-system storage (folders exist on their own and must be removed)."""
    try:
        default_storage.path("")
    except NotImplementedError:
        return False
    return True


def remove_folder_if_empty(path: str) -> bool:
    """Remove an empty folder of a local storage; True when it was removed. Object stores have none."""
    if not is_local():
        return False
    import os

    try:
        os.rmdir(default_storage.path(path))
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError:  # not empty (a worker may be writing into it), or not ours to remove
        return False
    return True


def delete_files(names: Iterable[str]) -> list[str]:
    """Delete stored files; returns those that could not be deleted (logged, never raised)."""
    left = []
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:  # a leftover file is harmless: the sweeper collects it later
            log.warning("could not delete %s", name, exc_info=True)
            left.append(name)
    return left


def delete_photo_files(photo_id: uuid.UUID | str, names: Iterable[str] = ()) -> list[str]:
    """Delete ``names`` plus everything in the photo's own folders, then those folders."""
    every = list(names)
    for folder in photo_folders(photo_id):
        every += [n for n in walk(folder) if n not in every]
    left = delete_files(every)
    for folder in photo_folders(photo_id):
        remove_folder_if_empty(folder)
    return left


# --- serving ----------------------------------------------------------------------------------
def storage_response(
    name: str,
    ctype: str | None = None,
    *,
    download_name: str | None = None,
    max_age: int = 3600,
    immutable: bool = False,
) -> HttpResponse:
    """Stream a stored file to the browser with explicit headers.

    Local storage: streamed by Django (after the view's access check) with the Content-Type and
    ``X-Content-Type-Options: nosniff``. Remote storage (S3-compatible): a redirect to a short-lived
    signed URL; the object's Content-Type was set when it was written.
    """
    ctype = ctype or content_type_for_name(name)
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
            content_type=ctype,
            as_attachment=download_name is not None,
            filename=download_name or "",
        )
    response["X-Content-Type-Options"] = "nosniff"
    cache = f"private, max-age={max_age}"
    response["Cache-Control"] = cache + (", immutable" if immutable else "")
    return response
