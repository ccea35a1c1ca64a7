"""Web-side work: rate targets, staging uploads, queueing, deleting. No torch, no codec.encode here."""

from __future__ import annotations

import hashlib
import logging
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.template.defaultfilters import filesizeformat

from . import admission as admission_
from . import outbox, previews, quotas, sizes, storage
from .models import Photo, StagedUpload
from .validation import ImageFacts, UploadRejected, inspect_upload

log = logging.getLogger(__name__)

ENCODE_TASK = "gallery.encode_photo"


@dataclass
class UploadResult:
    """What happened to one uploaded file (shown per file by the form and the JSON answer)."""

    name: str
    photo: Photo | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.photo is not None


def display_name(filename: str | None) -> str:
    """A safe display title from a client file name: base name only, no control characters."""
    raw = filename or ""
    base = PureWindowsPath(PurePosixPath(raw).name).name
    cleaned = "".join(ch for ch in unicodedata.normalize("NFC", base) if unicodedata.category(ch)[0] != "C")
    return cleaned.strip()[:200] or "untitled"


def stage_upload(
    owner,
    upload: UploadedFile,
    facts: ImageFacts,
    size: str,
    budget_bytes: int | None,
    admission: admission_.Admission | None = None,
) -> Photo:
    """Create the photo, its staged original and its encode message in one transaction."""
    admission = admission or admission_.admit(facts.width, facts.height)
    upload.seek(0)
    data = upload.read()
    target_bytes, target_bpp = sizes.target_for(size, facts.width, facts.height, budget_bytes)
    with transaction.atomic():
        photo = Photo.objects.create(
            owner=owner,
            title=display_name(upload.name),
            size=size,
            target_bpp=target_bpp,
            target_bytes=target_bytes,
            original_bytes=len(data),
            original_format=facts.format,
            original_width=facts.width,
            original_height=facts.height,
            encode_effort=admission.effort,
            work_estimate=round(admission.seconds, 1),
        )
        StagedUpload.objects.create(
            photo=photo, data=data, size=len(data), sha256=hashlib.sha256(data).hexdigest()
        )
        # the encode message commits with the photo (outbox) and is published right after the commit;
        # with the broker down the upload still succeeds and the relay publishes it later
        # (held there while the owner has GALLERY_USER_MAX_IN_FLIGHT encodes in flight: fair share)
        outbox.add(ENCODE_TASK, photo.pk, user=owner, photo_key=photo.pk)
    return photo


def accept_uploads(
    owner,
    files: Iterable[UploadedFile],
    size: str,
    budget_bytes: int | None = None,
    oversize: Iterable[str] = (),
) -> list[UploadResult]:
    """Validate every file on its own and stage the good ones; one bad file never blocks the others."""
    limit = filesizeformat(settings.GALLERY_MAX_UPLOAD_BYTES)
    too_big = f"The file is larger than the limit of {limit}."
    results = [UploadResult(display_name(n), error=too_big) for n in oversize]
    usage = quotas.Usage(owner)
    for upload in files:
        name = display_name(upload.name)
        try:
            facts = inspect_upload(upload, upload.size)
        except UploadRejected as exc:
            results.append(UploadResult(name, error=str(exc)))
            continue
        # cost control: the user's quotas, then the per-photo work cap (gallery/admission.py)
        refusal = usage.refusal(facts.size)
        admitted = admission_.admit(facts.width, facts.height)
        if refusal or not admitted.ok:
            results.append(UploadResult(name, error=refusal or admitted.message))
            continue
        photo = stage_upload(owner, upload, facts, size, budget_bytes, admitted)
        usage.add(facts.size)
        results.append(UploadResult(name, photo=photo))
    return results


def enqueue_encode(photo_id) -> bool:
    """Queue the encode task (queue ``gpu``); the single entry point for re-queueing, too.

    False when the broker is unreachable: the photo stays pending with its original staged.
    """
    from .queueing import publish
    from .tasks import encode_photo

    return publish(encode_photo, str(photo_id))


def enqueue_comparisons(photo_id) -> bool:
    """Queue the comparisons of a READY photo (``GALLERY_COMPARISONS_QUEUE``). False when the broker
    is unreachable: the photo stays READY with its original staged and the sweeper re-queues it."""
    from .queueing import publish
    from .tasks import make_comparisons

    return publish(make_comparisons, str(photo_id), queue=settings.GALLERY_COMPARISONS_QUEUE or None)


def delete_photo(photo: Photo, user) -> None:
    """Delete a photo and every file derived from it. Only the owner may."""
    if photo.owner_id != user.pk:
        raise PermissionDenied("Only the owner can delete this photo.")
    names = [c.file.name for c in photo.comparisons.all() if c.file]
    if photo.latent:
        names.append(photo.latent.name)
    photo_id = photo.pk
    with transaction.atomic():
        photo.delete()  # cascades to comparisons and the staged original
    previews.purge(photo_id)  # also forgets the cache files' remembered state
    # the latent, the comparisons and the photo's folders; a leftover is logged and swept later
    storage.delete_photo_files(photo_id, names)


def visible_photos(user):
    """Photos a user may browse: own ones and those shared with signed-in users (gallery/privacy.py)."""
    from . import privacy

    return privacy.visible_photos(user)
