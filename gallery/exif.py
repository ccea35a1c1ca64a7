"""What EXIF says about a photo, kept as data (the pixels reach the codec without any metadata).

Read at upload in the web process with Pillow (no decode of the pixels): date taken, camera,
lens, exposure. GPS is kept only when the owner opts in. Broken or hostile EXIF is ignored: the
upload never fails because of its metadata.
"""

from __future__ import annotations

import io
import logging
import warnings
from datetime import datetime
from fractions import Fraction

from django.utils import timezone
from PIL import ExifTags, Image

log = logging.getLogger(__name__)

MAX_TEXT = 100
_IFD_EXIF = ExifTags.IFD.Exif
_IFD_GPS = ExifTags.IFD.GPSInfo
_T = ExifTags.Base


def _text(value) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = "".join(ch for ch in str(value or "") if ch.isprintable()).strip().strip("\x00")
    return text[:MAX_TEXT]


def _num(value) -> float | None:
    try:
        number = float(Fraction(value)) if not isinstance(value, int | float) else float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        try:
            number = float(value)
        except (TypeError, ValueError, ZeroDivisionError):
            return None
    return number if number == number and abs(number) < 1e9 else None


def _taken_at(exif_ifd, base) -> datetime | None:
    raw = _text(
        exif_ifd.get(_T.DateTimeOriginal) or exif_ifd.get(_T.DateTimeDigitized) or base.get(_T.DateTime)
    )
    try:
        naive = datetime.strptime(raw[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    if not 1900 <= naive.year <= 2200:
        return None
    # EXIF has no zone (OffsetTimeOriginal is rare): keep the wall-clock time, as cameras show it
    return timezone.make_aware(naive, timezone.get_default_timezone())


def _exposure(exif_ifd) -> str:
    parts = []
    t = _num(exif_ifd.get(_T.ExposureTime))
    if t:
        parts.append(f"1/{round(1 / t)} s" if t < 1 else f"{t:g} s")
    f = _num(exif_ifd.get(_T.FNumber))
    if f:
        parts.append(f"f/{f:.1f}".replace(".0", ""))
    iso = exif_ifd.get(_T.ISOSpeedRatings)
    iso = iso[0] if isinstance(iso, tuple | list) and iso else iso
    if _num(iso):
        parts.append(f"ISO {int(_num(iso))}")
    focal = _num(exif_ifd.get(_T.FocalLength))
    if focal:
        parts.append(f"{focal:g} mm")
    return ", ".join(parts)


def _gps(gps_ifd) -> dict | None:
    def degrees(values, ref) -> float | None:
        try:
            d, m, s = (_num(v) for v in values)
        except (TypeError, ValueError):
            return None
        if d is None or m is None or s is None:
            return None
        value = d + m / 60 + s / 3600
        return -value if _text(ref).upper() in ("S", "W") else value

    lat = degrees(gps_ifd.get(2), gps_ifd.get(1))
    lon = degrees(gps_ifd.get(4), gps_ifd.get(3))
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return {"lat": round(lat, 6), "lon": round(lon, 6)}


def extract(data: bytes, *, keep_gps: bool = False) -> dict:
    """Fields for the Photo row: ``taken_at``, ``camera`` and ``exif`` (lens, exposure, gps)."""
    fields: dict = {"taken_at": None, "camera": "", "exif": {}}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns about corrupt EXIF; it is ignored anyway
            with Image.open(io.BytesIO(data)) as img:
                base = img.getexif()
                exif_ifd = base.get_ifd(_IFD_EXIF)
                gps_ifd = base.get_ifd(_IFD_GPS) if keep_gps else {}
                make, model = _text(base.get(_T.Make)), _text(base.get(_T.Model))
                camera = (
                    model if make and model.lower().startswith(make.lower().split()[0]) else f"{make} {model}"
                )
                fields["camera"] = camera.strip()[:200]
                fields["taken_at"] = _taken_at(exif_ifd, base)
                lens = _text(exif_ifd.get(_T.LensModel))
                exposure = _exposure(exif_ifd)
                gps = _gps(gps_ifd) if gps_ifd else None
    except Exception:  # metadata never blocks an upload
        log.info("unreadable EXIF ignored", exc_info=True)
        return fields
    fields["exif"] = {k: v for k, v in {"lens": lens, "exposure": exposure, "gps": gps}.items() if v}
    return fields


def record(results, files, *, keep_gps: bool = False) -> None:
    """After ``services.accept_uploads``: store each accepted photo's EXIF facts on its row.

    ``results`` lists the oversize files first, then one result per file of ``files`` in order.
    """
    from .models import Photo

    offset = len(results) - len(files)
    for upload, result in zip(files, results[offset:], strict=True):
        if not result.ok:
            continue
        upload.seek(0)
        fields = extract(upload.read(), keep_gps=keep_gps)
        if fields["taken_at"] or fields["camera"] or fields["exif"]:
            Photo.objects.filter(pk=result.photo.pk).update(**fields)
