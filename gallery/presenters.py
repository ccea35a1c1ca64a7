"""What the photo page and its JSON status endpoint show: the toggle's variants and the status."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from django.conf import settings
from django.urls import reverse

from codec.encoder.faces import SMALL_DETAIL_FLOOR, probes, smallest_face_px  # torch- and dlib-free at import
from codec.encoder.text import TEXT_CER_FLOOR  # torch-free (a constant next to the text check)
from codec.metrics.seams import SEAM_FLOOR  # numpy only

from . import previews, sizes
from .models import Comparison, OutboxMessage, Photo
from .outbox import ENCODE_TASK
from .redact import public_message

FORMAT_ORDER = {"jpeg": 0, "webp": 1, "avif": 2}


@dataclass
class Variant:
    """One option of the latent/JPEG/WebP/AVIF toggle."""

    key: str
    label: str
    url: str
    bytes: int
    bpp: float
    ratio: float | None  # original bytes / these bytes
    width: int
    height: int
    downscaled: bool = False
    fits: bool = True
    note: str = ""
    pending: bool = False  # the image (a preview) is still being rendered


@dataclass
class Tile:
    """One grid tile: the photo, its thumbnail (url, ready) and the warning badges of its encode."""

    photo: Photo
    thumb: tuple[str, bool]
    warnings: list


def tiles(photos) -> list[Tile]:
    out = []
    for p in photos:
        if p.is_ready:
            out.append(Tile(p, preview_url(p, "thumb"), protection(p).warnings))
        else:
            out.append(Tile(p, ("", False), []))
    return out


def preview_url(photo: Photo, spec_name: str) -> tuple[str, bool]:
    """(url, ready): the cache file's versioned URL, or the placeholder URL while it is rendered."""
    base = reverse("gallery:preview", args=[photo.pk, spec_name])
    cache_file = previews.lookup(photo, spec_name)
    if cache_file is None:
        return base, False
    return f"{base}?v={cache_file.version}", True


def _coded_size(photo: Photo) -> tuple[int, int]:
    """The size the latent really encodes (``codec.info``'s coded_width/height; the rate control
    may pick a smaller one), else the photo's own size."""
    info = photo.codec_info or {}
    w, h = info.get("coded_width"), info.get("coded_height")
    if (
        isinstance(w, int)
        and isinstance(h, int)
        and 0 < w <= photo.original_width
        and 0 < h <= photo.original_height
    ):
        return w, h
    return photo.original_width, photo.original_height


def variants(photo: Photo) -> list[Variant]:
    if not photo.is_ready:
        return []
    url, ready = preview_url(photo, "display")
    width, height = _coded_size(photo)
    downscaled = (width, height) != (photo.original_width, photo.original_height)
    note = (
        "stored as AVIF by the fidelity guard (the latent could not keep the floor)"
        if photo.fidelity_guard == "avif"
        else f"decoded from the {photo.codec_model or 'latent'} bitstream"
        + (" + a patch layer from the fidelity guard" if photo.fidelity_guard == "patches" else "")
    )
    if downscaled:
        scale = width / photo.original_width
        note = (
            f"The latent codes a {width}×{height} version ({scale:.0%}): at this budget a smaller latent "
            f"with more levels looked better; decoded and shown enlarged. {note[0].upper()}{note[1:]}"
        )
    out = [
        Variant(
            key="latent",
            label="Latent",
            url=url,
            bytes=photo.latent_bytes,
            bpp=photo.latent_bpp,
            ratio=photo.ratio,
            width=width,
            height=height,
            downscaled=downscaled,
            note=note,
            pending=not ready,
        )
    ]
    comparisons: list[Comparison] = sorted(photo.comparisons.all(), key=lambda c: FORMAT_ORDER.get(c.fmt, 9))
    for c in comparisons:
        note = c.note
        if c.downscaled:
            note = (
                f"{c.get_fmt_display()} could not reach the budget at full size even at its lowest "
                f"quality; downscaled to {c.width}×{c.height} ({c.scale:.0%}) to fit, shown enlarged."
                + (f" {c.note}" if c.note else "")
            )
        out.append(
            Variant(
                key=c.fmt,
                label=c.get_fmt_display(),
                url=reverse("gallery:comparison", args=[photo.pk, c.fmt]),
                bytes=c.bytes,
                bpp=photo.bpp_of(c.bytes),
                ratio=photo.original_bytes / c.bytes if c.bytes else None,
                width=c.width,
                height=c.height,
                downscaled=c.downscaled,
                fits=c.fits,
                note=note,
            )
        )
    return out


@dataclass
class Badge:
    """One line about what the encode kept or changed (issue 12): never a silent READY."""

    key: str  # faces-changed | text-changed | below-floor | target-missed | faces-kept
    label: str  # the badge text
    text: str  # one line of explanation with the numbers
    warning: bool


@dataclass
class Protection:
    """What ``codec.info`` says the encoder checked and spent; every field None when absent."""

    badges: list[Badge]
    faces_found: int | None = None
    faces_too_small: int | None = None
    worst_identity_distance: float | None = None
    worst_landmark_shift: float | None = None
    text_cer: float | None = None
    protection_bytes: int | None = None
    notes: list[str] | None = None

    @property
    def warnings(self) -> list[Badge]:
        return [b for b in self.badges if b.warning]


def _second_look_note(photo, audit: dict) -> str:
    """The note for a photo whose encode did not probe for small faces (too costly at its size): what the
    worker's second look after READY found (``audit``: `gallery.worker.pipeline.second_look`), or how
    small a face had to be to go unchecked — never implying there was none."""
    px = audit.get("smallest_px")
    n = audit.get("found")
    if audit.get("probed") is True and isinstance(px, int) and isinstance(n, int):
        looked = f"A second look after upload searched for faces down to {px} px"
        if n == 0:
            return f"{looked}: none found."
        worst = audit.get("worst_detail")
        detail = (f" (worst invented detail {worst:.2f}, floor {SMALL_DETAIL_FLOOR:.2f})"
                  if isinstance(worst, (int, float)) else "")
        verdict = "at least one redrawn with features that are not there" if audit.get("redrawn") \
            else "none redrawn"
        return f"{looked}: {_faces(n)} found, {verdict}{detail}."
    px_min = smallest_face_px(photo.pixels)
    return f"Faces smaller than {px_min} px were not looked for in a photo of this size."


def _num(info: dict, key: str) -> float | None:
    value = info.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return None
    return float(value)


def _count(info: dict, key: str) -> int | None:
    value = info.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _flag(info: dict, key: str) -> bool | None:
    value = info.get(key)
    return value if isinstance(value, bool) else None


def _faces(n: int) -> str:
    return f"{n} face{'s' if n != 1 else ''}"


def _vs(value: float, floor: float | None) -> str:
    return f"{value:.2f}" + (f" (floor {floor:.2f})" if floor is not None else "")


def protection(photo: Photo) -> Protection:
    """Badges and numbers from the photo's stored ``codec.info`` (keys of docs/ARCHITECTURE.md).

    Written defensively: photos encoded before the identity check (or by another codec version)
    lack the keys, and a missing or malformed key shows nothing rather than a guess.
    """
    info = photo.codec_info if isinstance(photo.codec_info, dict) else {}
    found = _count(info, "faces_found")
    small = _count(info, "faces_too_small")
    kept = _flag(info, "faces_kept")
    distance = _num(info, "worst_identity_distance")
    shift = _num(info, "worst_landmark_shift")
    id_floor = _num(info, "identity_floor")
    shift_floor = _num(info, "landmark_floor")
    badges: list[Badge] = []
    measured = []
    if distance is not None:
        measured.append(f"worst identity distance {_vs(distance, id_floor)}")
    if shift is not None:
        measured.append(f"landmark shift {_vs(shift, shift_floor)}")
    small_detail = _num(info, "worst_small_face_detail")
    if small_detail is not None:
        measured.append(f"small-face invented detail {_vs(small_detail, SMALL_DETAIL_FLOOR)}")
    numbers = ", ".join(measured)
    if kept is False:
        who = f"{_faces(found)} checked" if found else "Faces checked"
        if small_detail is not None and small_detail > SMALL_DETAIL_FLOOR + 1e-6:
            of = f"of {_faces(small)} " if small and small > 1 else ""
            who += f"; at least one {of}under 40 px redrawn with features that are not there"
        badges.append(Badge(
            "faces-changed",
            "Faces changed",
            f"{who}: at least one is lost in the decode or no longer looks like the same person"
            + (f" ({numbers}; 0 = the same face)" if numbers else "") + ".",
            True,
        ))
    cer = _num(info, "text_cer")
    numbers_changed = _flag(info, "text_numbers_kept") is False
    words_changed = _flag(info, "text_words_kept") is False
    over = cer is not None and cer > TEXT_CER_FLOOR + 1e-6  # (float32 in the file)
    if over or numbers_changed or words_changed:
        why = (f"OCR character error rate {cer:.0%} against the original on its worst line "
               f"(floor {TEXT_CER_FLOOR:.0%})" if cer is not None else "")
        if words_changed:
            why = "a word reads differently" + (f"; {why}" if why else "")
        if numbers_changed:
            why = "a number reads differently" + (f"; {why}" if why else "")
        badges.append(Badge(
            "text-changed",
            "Text may have changed",
            f"The photo's text reads differently in the decode: {why}.",
            True,
        ))
    floor_met = _flag(info, "fidelity_floor_met")
    if floor_met is None:
        floor_met = photo.fidelity_floor_met
    if floor_met is False:
        worst = _num(info, "fidelity_min")
        worst = worst if worst is not None else photo.fidelity_min
        floor = _num(info, "fidelity_floor")
        floor = floor if floor is not None else photo.fidelity_floor
        detail = "some blocks are under the floor"
        if worst is not None:
            detail = f"the worst block scores {worst:.2f}"
            detail += f" against a floor of {floor:.2f}" if floor is not None else ""
        badges.append(Badge(
            "below-floor",
            "Below the fidelity floor",
            f"Some detail was lost or changed: {detail} (best file within the budget).",
            True,
        ))
    target = info.get("target") if isinstance(info.get("target"), str) else None
    if target and _flag(info, "target_met") is False:
        badges.append(Badge(
            "target-missed",
            "Target not met",
            f"The “{target}” quality target could not be reached within the cap of "
            f"{_cap(photo):,} bytes; this is the closest file that fits.",
            True,
        ))
    if kept is True and found:
        badges.append(Badge(
            "faces-kept",
            f"{_faces(found)} checked: kept",
            "Every detected face is still found in the decode and keeps its identity"
            + (f" ({numbers})" if numbers else "") + ".",
            False,
        ))
    notes = []
    if small and small_detail is not None and small_detail <= SMALL_DETAIL_FLOOR + 1e-6:
        notes.append(f"{_faces(small)} under 40 px checked for invented detail only (too small for "
                     f"identity): worst {small_detail:.2f}, floor {SMALL_DETAIL_FLOOR:.2f}.")
    elif small and small_detail is None:
        notes.append(f"{_faces(small)} too small to check (under the face detector's minimum size).")
    audit = photo.small_faces_audit if isinstance(photo.small_faces_audit, dict) else {}
    if found is not None and not probes(photo.pixels) and audit.get("re_encoded") is not True:
        notes.append(_second_look_note(photo, audit))
    if audit.get("redrawn") is True and audit.get("re_encoded") is not True \
            and not any(b.key == "faces-changed" for b in badges):
        badges.append(Badge(
            "faces-changed",
            "Faces changed",
            "A second look after upload found a face too small for the identity check redrawn with "
            "features that are not there, and the photo could not be coded again.",
            True,
        ))
    if audit.get("re_encoded") is True:
        notes.append("Coded a second time after upload: a second look found a small face the first file "
                     "had redrawn; this file checks and protects it.")
    regions = info.get("regions")
    if isinstance(regions, list) and regions:
        spent = sum(r["bytes"] for r in regions if isinstance(r, dict) and isinstance(r.get("bytes"), int))
        one = len(regions) == 1
        notes.append(f"{'1 face region' if one else f'{len(regions)} face regions'} coded once more as "
                     f"{'a small latent of its' if one else 'small latents of their'} own ({spent:,} bytes).")
    seams = _num(info, "patch_seams")
    if seams is not None:
        size = _count(info, "patch_layer_bytes")
        what = f"{size:,} bytes of" if size is not None else "Some"
        look = ("its squares can show at 1:1" if seams > SEAM_FLOOR + 1e-6
                else "hardly visible at 1:1")
        notes.append(f"{what} blocks copied from the original as a classical image where the latent lost "
                     f"detail: seam score {seams:.1f} (floor {SEAM_FLOOR:.1f}; {look}).")
    if cer is not None and cer <= TEXT_CER_FLOOR + 1e-6 and not numbers_changed and not words_changed:
        notes.append(f"Text checked: OCR character error rate {cer:.0%} on the worst line (decoded against "
                     "the original).")
    return Protection(
        badges=badges,
        faces_found=found,
        faces_too_small=small,
        worst_identity_distance=distance,
        worst_landmark_shift=shift,
        text_cer=cer,
        protection_bytes=_count(info, "protection_bytes"),
        notes=notes,
    )


RECENT_ENCODES = 20


def queue_estimate(photo: Photo) -> dict | None:
    """Where a waiting photo stands: photos queued before it (everyone's, FIFO) and an ETA from the
    measured encode times of the last ``RECENT_ENCODES`` photos (one worker assumed; None until
    something was measured). None once the photo is finished."""
    if photo.is_finished:
        return None
    waiting = (Photo.Status.PENDING, Photo.Status.ENCODING)
    ahead = Photo.objects.filter(status__in=waiting, created_at__lt=photo.created_at).count()
    recent = list(
        Photo.objects.filter(status=Photo.Status.READY, encode_seconds__isnull=False)
        .order_by("-ready_at")
        .values_list("encode_seconds", flat=True)[:RECENT_ENCODES]
    )
    per_photo = sorted(recent)[len(recent) // 2] if recent else None
    eta = None
    if per_photo is not None:
        mine = per_photo
        if photo.status == Photo.Status.ENCODING and photo.encoding_started_at:
            from django.utils import timezone

            spent = (timezone.now() - photo.encoding_started_at).total_seconds()
            mine = max(per_photo - spent, 1.0)
        eta = round(ahead * per_photo + mine)
    return {"ahead": ahead, "per_photo_seconds": per_photo, "eta_seconds": eta, "measured_on": len(recent),
            "encoding": photo.status == Photo.Status.ENCODING, "broker_unreachable": _stuck_in_outbox(photo)}


def _stuck_in_outbox(photo: Photo) -> bool:
    """Whether the photo's encode message is still in the outbox after a failed publish (the broker
    was unreachable): the photo is safe and waits for the relay, not for a worker."""
    return photo.status == Photo.Status.PENDING and OutboxMessage.objects.filter(
        task=ENCODE_TASK, photo_key=str(photo.pk), attempts__gt=0).exists()


def queue_text(estimate: dict | None) -> str:
    """One sentence for the waiting photo; a photo being encoded has no queue place (not "next")."""
    if not estimate:
        return ""
    if estimate.get("broker_unreachable"):  # "next in the queue" would be untrue: it is not queued yet
        return ("The task queue cannot be reached right now; the upload is stored and is encoded as soon as "
                "the queue is back.")
    ahead = estimate["ahead"]
    plural = "s" if ahead != 1 else ""
    parts = []
    if not estimate.get("encoding") or ahead:  # an older encode ahead of it still counts
        parts.append("next in the queue" if ahead == 0 else f"{ahead} photo{plural} ahead in the queue")
    if estimate["eta_seconds"] is not None:
        eta = estimate["eta_seconds"]
        when = f"{eta} s" if eta < 90 else f"{round(eta / 60)} min"
        parts.append(f"ready in about {when} (median encode {estimate['per_photo_seconds']:.0f} s)")
    if not parts:
        return ""
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def status_payload(photo: Photo, user) -> dict:
    """JSON for the live status endpoint (polled by the photo page, the grid and the uploader)."""
    thumb_url, thumb_ready = preview_url(photo, "thumb") if photo.is_ready else ("", False)
    estimate = queue_estimate(photo)
    return {
        "id": str(photo.pk),
        "status": photo.status,
        "status_label": photo.get_status_display(),
        "error": error_text(photo),
        "finished": photo.is_finished,
        "attempts": photo.attempts,
        "url": reverse("gallery:detail", args=[photo.pk]),
        "latent_bytes": photo.latent_bytes,
        "latent_bpp": photo.latent_bpp,
        "thumb": {"url": thumb_url, "ready": thumb_ready},
        "variants": [asdict(v) for v in variants(photo)],
        "can_delete": photo.owner_id == getattr(user, "pk", None),
        "queue": estimate,
        "queue_text": queue_text(estimate),
        "protection": asdict(protection(photo)) if photo.is_ready else None,
    }


def error_text(photo: Photo) -> str:
    """The photo's error as users may see it (old rows may hold server paths; gallery.redact)."""
    return public_message(photo.error or "")


SORTS = {"uploaded": "Upload date", "taken": "Date taken"}


def ordered(photos, sort: str, query: str = ""):
    """The grid's sort (upload date, or date taken with undated photos last) and search (words
    in the title or the album's title, all of them must match)."""
    from django.db.models import F, Q

    for word in query.split()[:8]:
        photos = photos.filter(Q(title__icontains=word) | Q(album__title__icontains=word))
    if sort == "taken":
        return photos.order_by(F("taken_at").desc(nulls_last=True), "-created_at")
    return photos.order_by("-created_at")


@dataclass
class AlbumCard:
    album: object
    count: int
    cover_url: str  # the newest ready photo's thumbnail, "" when there is none


def album_cards(albums, photos) -> list[AlbumCard]:
    """Albums with how many photos the viewer sees in each and a cover thumbnail."""
    cards = []
    for album in albums:
        inside = photos.filter(album=album)
        cover = inside.filter(status=Photo.Status.READY).order_by("-created_at").first()
        cards.append(AlbumCard(album, inside.count(), preview_url(cover, "thumb")[0] if cover else ""))
    return cards


def scoped(photos, user, scope: str):
    """The home grid's filters over what the viewer may see: all, mine, or shared with me."""
    if user is None:  # a signed-out visitor with share links: nothing is "mine"
        return photos.none() if scope == "mine" else photos
    if scope == "mine":
        return photos.filter(owner=user)
    if scope == "shared":
        return photos.exclude(owner=user)
    return photos


@dataclass
class Neighbours:
    """The previous (newer) and next (older) photo in the grid's order, among what the viewer may see."""

    prev_url: str = ""
    next_url: str = ""


def neighbours(photos, photo: Photo) -> Neighbours:
    when = photo.created_at
    prev_pk = photos.filter(created_at__gt=when).order_by("created_at").values_list("pk", flat=True).first()
    next_pk = photos.filter(created_at__lt=when).order_by("-created_at").values_list("pk", flat=True).first()
    return Neighbours(
        prev_url=reverse("gallery:detail", args=[prev_pk]) if prev_pk else "",
        next_url=reverse("gallery:detail", args=[next_pk]) if next_pk else "",
    )


def visibility_message(obj) -> str:
    what = "album" if obj.__class__.__name__ == "Album" else "photo"
    return {
        "private": f"Only you can see this {what} now; any earlier link no longer works.",
        "users": f"Every signed-in user can see this {what} now.",
        "link": f"Anyone with the link can see this {what} now (it is not listed anywhere).",
    }[obj.visibility]


@dataclass
class Download:
    key: str
    label: str
    url: str
    note: str


#: download format in the URL → preview spec that renders it (gallery/previews/specs.py)
DOWNLOAD_SPECS = {"png": "png", "jpeg": "jpeg"}


def downloads(photo: Photo) -> list[Download]:
    """The decoded-photo downloads offered on the photo page (the latent link is in the template)."""
    if not photo.is_ready:
        return []
    size = f"{photo.original_width} × {photo.original_height} px"
    return [
        Download("png", "PNG", reverse("gallery:download", args=[photo.pk, "png"]), f"lossless, {size}"),
        Download("jpeg", "JPEG", reverse("gallery:download", args=[photo.pk, "jpeg"]), f"quality 92, {size}"),
    ]


def download_name(photo: Photo, extension: str) -> str:
    stem = photo.title.rsplit(".", 1)[0] if "." in photo.title else photo.title
    return f"{stem or photo.pk}-decoded.{extension}"


def full_url(photo: Photo) -> str:
    """URL of the full-resolution rendition the viewer loads when zoomed past the display preview
    (rendered on demand by the worker; versioned once it exists)."""
    if not photo.is_ready or max(photo.original_width, photo.original_height) <= 1600:
        return ""
    url, _ready = preview_url(photo, "full")
    return url


def size_note(photo: Photo) -> str:
    """Why a ready photo is larger than its size choice (a preset's check may grow it up to the cap);
    empty when it is not."""
    if not photo.is_ready or not photo.latent_bytes or not photo.target_bytes \
            or photo.latent_bytes <= photo.target_bytes:
        return ""
    return (f"took {photo.latent_bytes / photo.target_bytes:.1f}× that to pass the preset's check of its "
            f"detail, faces and text (which may use up to {_cap(photo):,} bytes)")


def _cap(photo: Photo) -> int:
    """The byte cap the photo was encoded under (the preset's headroom cap for a target)."""
    budget = sizes.encode_budget(photo.size, photo.target_bytes, settings.GALLERY_PRESET_TARGET,
                                 settings.GALLERY_PRESET_TARGET_HEADROOM)
    return int(budget["max_bytes"])  # type: ignore[call-overload]
