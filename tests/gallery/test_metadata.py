"""Organisation: EXIF facts kept as data (GPS only on opt-in), sort by date taken, search over
titles and albums, renaming (owner only)."""

from __future__ import annotations

import io
from datetime import datetime

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from PIL import ExifTags, Image, TiffImagePlugin

from gallery import exif
from gallery.models import Album, Photo

from .factories import ready_photo

pytestmark = pytest.mark.django_db
R = TiffImagePlugin.IFDRational
NAMES = ("tram.png", "beach.png", "scan.png")
BROKEN = [b"", b"not an image", b"\xff\xd8\xff\xe1\x00\x10Exif\x00\x00MM\x00*garbage"]


def jpeg_with_exif(gps: bool = True) -> bytes:
    info = Image.Exif()
    info[ExifTags.Base.Make] = "Canon"
    info[ExifTags.Base.Model] = "Canon EOS 5D Mark IV"
    sub = info.get_ifd(ExifTags.IFD.Exif)
    sub[ExifTags.Base.DateTimeOriginal] = "2024:05:06 07:08:09"
    sub[ExifTags.Base.ExposureTime] = R(1, 250)
    sub[ExifTags.Base.FNumber] = R(28, 10)
    sub[ExifTags.Base.ISOSpeedRatings] = 400
    sub[ExifTags.Base.FocalLength] = R(50, 1)
    sub[ExifTags.Base.LensModel] = "EF50mm f/1.8 STM"
    if gps:
        loc = info.get_ifd(ExifTags.IFD.GPSInfo)
        loc[1], loc[2] = "N", (R(52, 1), R(30, 1), R(0, 1))
        loc[3], loc[4] = "W", (R(13, 1), R(24, 1), R(36, 1))
    out = io.BytesIO()
    Image.new("RGB", (64, 48), "teal").save(out, "JPEG", exif=info)
    return out.getvalue()


def test_extract_reads_what_users_expect():
    fields = exif.extract(jpeg_with_exif())
    assert fields["camera"] == "Canon EOS 5D Mark IV"
    assert timezone.localtime(fields["taken_at"]).replace(tzinfo=None) == datetime(2024, 5, 6, 7, 8, 9)
    assert fields["exif"]["lens"] == "EF50mm f/1.8 STM"
    assert fields["exif"]["exposure"] == "1/250 s, f/2.8, ISO 400, 50 mm"
    assert "gps" not in fields["exif"]  # location only on opt-in
    located = exif.extract(jpeg_with_exif(), keep_gps=True)
    assert located["exif"]["gps"] == {"lat": 52.5, "lon": pytest.approx(-13.41, abs=1e-6)}


@pytest.mark.parametrize(
    "data", [b"", b"not an image", b"\xff\xd8\xff\xe1\x00\x10Exif\x00\x00MM\x00*garbage"]
)
def test_broken_exif_is_ignored(data):
    assert exif.extract(data) == {"taken_at": None, "camera": "", "exif": {}}


def test_upload_keeps_exif_facts_and_gps_only_on_opt_in(client, user):
    client.force_login(user)
    for keep in ("", "1"):
        client.post(
            reverse("gallery:upload"),
            {
                "size": "tiny",
                "keep_location": keep,
                "files": ContentFile(jpeg_with_exif(), name=f"c{keep}.jpg"),
            },
            HTTP_ACCEPT="application/json",
        )
    plain, located = Photo.objects.get(title="c.jpg"), Photo.objects.get(title="c1.jpg")
    assert plain.camera == located.camera == "Canon EOS 5D Mark IV"
    assert plain.taken_at is not None and "gps" not in plain.exif
    assert located.exif["gps"]["lat"] == 52.5


def test_sort_by_date_taken_and_search(client, user, media_root):
    album = Album.objects.create(owner=user, title="Lisbon trip")
    old = ready_photo(user, title="tram.png")
    new = ready_photo(user, title="beach.png")
    undated = ready_photo(user, title="scan.png")
    Photo.objects.filter(pk=old.pk).update(
        taken_at=timezone.now() - timezone.timedelta(days=900), album=album
    )
    Photo.objects.filter(pk=new.pk).update(taken_at=timezone.now() - timezone.timedelta(days=3))
    client.force_login(user)

    def order(query: str) -> list[str]:
        body = client.get(reverse("gallery:list") + query).content.decode()
        found = [(body.index(f'alt="{t}"'), t) for t in NAMES if f'alt="{t}"' in body]
        return [t for _, t in sorted(found)]

    assert order("?sort=taken") == ["beach.png", "tram.png", "scan.png"]  # undated last
    assert order("?sort=uploaded") == ["scan.png", "beach.png", "tram.png"]
    assert order("?q=lisbon") == ["tram.png"]  # the album's title
    assert order("?q=BEACH") == ["beach.png"]
    assert "Nothing matches" in client.get(reverse("gallery:list") + "?q=zzz").content.decode()
    assert undated.taken_at is None


def test_rename_is_owner_only(client, user, other_user, media_root):
    photo = ready_photo(user, title="IMG_0001.JPG")
    client.force_login(user)
    client.post(reverse("gallery:title", args=[photo.pk]), {"title": "  Sunset\x07 over the bay 2024/05 "})
    photo.refresh_from_db()
    assert photo.title == "Sunset over the bay 2024/05"
    bob = Client()
    bob.force_login(other_user)
    assert bob.post(reverse("gallery:title", args=[photo.pk]), {"title": "mine now"}).status_code == 404
    photo.refresh_from_db()
    assert photo.title == "Sunset over the bay 2024/05"
