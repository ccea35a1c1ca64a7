"""Hostile and awkward uploads through the real upload view (Django test client).

Each file either gets a clear per-file error, with nothing staged, stored or left in the upload
temp folder, or becomes a correct photo: the real encode task runs with the real codec and the
latent is decoded again to check size, orientation and colours. Decision for animated images
(GIF/APNG): rejected with a clear message (the gallery shows stills; picking frame one silently
would surprise the uploader).
"""

from __future__ import annotations

import io
import re
import time

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image, ImageOps

from gallery.models import Photo, StagedUpload
from gallery.tasks import encode_photo

from . import hostile_files as hf
from .memory import PeakRSS

pytestmark = pytest.mark.django_db

UPLOAD = "gallery:upload"
GENERATED_LATENT = re.compile(r"^latents/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.sdl$")


def post(client, files: list[tuple[str, bytes]], size: str = "standard", budget: int | None = None):
    data: dict = {"size": size, "files": [SimpleUploadedFile(n, b, "image/jpeg") for n, b in files]}
    if budget is not None:
        data["budget_bytes"] = budget
    return client.post(reverse(UPLOAD), data, HTTP_ACCEPT="application/json")


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the JPEG header, without Pillow's pixel-limit guard in the way."""
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        return Image.open(io.BytesIO(data)).size
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def stored_files(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def assert_rejected(response, media_root, upload_tmp, *, message: str) -> str:
    """One file, rejected with a per-file error containing ``message``; nothing left anywhere."""
    assert response.status_code == 400, response.content
    [result] = response.json()["results"]
    assert result["ok"] is False
    assert re.search(message, result["error"], re.I), result["error"]
    assert Photo.objects.count() == 0 and StagedUpload.objects.count() == 0
    assert stored_files(media_root) == []
    assert list(upload_tmp.iterdir()) == []
    return result["error"]


def accept_and_encode(client, name: str, data: bytes, budget: int = 6000) -> tuple[Photo, Image.Image]:
    """Upload one file, run the real encode task, return the ready photo and its decoded latent."""
    import codec

    response = post(client, [(name, data)], size="budget", budget=budget)
    assert response.status_code == 201, response.content
    [result] = response.json()["results"]
    assert encode_photo.apply(args=[result["id"]]).get() == "ready"
    photo = Photo.objects.get(pk=result["id"])
    assert photo.status == Photo.Status.READY, photo.error
    assert not StagedUpload.objects.filter(photo=photo).exists()
    assert GENERATED_LATENT.match(photo.latent.name)
    with default_storage.open(photo.latent.name) as fh:
        latent = fh.read()
    meta = codec.info(latent)
    assert (meta["width"], meta["height"]) == (photo.original_width, photo.original_height)
    decoded = codec.decode(latent)
    assert decoded.size == (photo.original_width, photo.original_height)
    return photo, decoded


def assert_colours(decoded: Image.Image, expected_rgb: np.ndarray, tol: float = 28.0) -> None:
    got = hf.quadrant_means(np.asarray(decoded.convert("RGB")))
    want = hf.quadrant_means(expected_rgb)
    assert np.abs(got - want).max() <= tol, f"decoded quadrant colours {got.round()} vs {want.round()}"


# --- rejected with a clear per-file error ------------------------------------------------------
def test_zero_bytes(alice_client, media_root, upload_tmp):
    response = post(alice_client, [("empty.jpg", b"")])
    assert_rejected(response, media_root, upload_tmp, message="empty")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_image(alice_client, media_root, upload_tmp, fmt):
    full = hf.encode_pil(
        Image.fromarray(hf.quadrants_rgb(256, 192)), fmt, **({"quality": 90} if fmt == "JPEG" else {})
    )
    cut = full[: len(full) // 2]
    response = post(alice_client, [(f"cut.{fmt.lower()}", cut)])
    assert_rejected(response, media_root, upload_tmp, message="damaged or truncated")


def test_png_claiming_100000_squared(alice_client, media_root, upload_tmp, reliability_record):
    data = hf.png_claiming(100_000, 100_000)
    with PeakRSS() as mem:
        response = post(alice_client, [("huge.png", data)])
    assert_rejected(response, media_root, upload_tmp, message=r"pixels|limit.*MP")
    reliability_record(rss_growth_mib=round(mem.growth_mib, 1))
    assert mem.growth_mib < 64, f"RSS grew by {mem.growth_mib:.0f} MiB for a header-only rejection"


def test_pixel_decompression_bomb(alice_client, media_root, upload_tmp, reliability_record):
    data = hf.png_pixel_bomb(20_000)  # ~400 KB file, 400 MP of pixels
    assert len(data) < 1_000_000
    with PeakRSS() as mem:
        response = post(alice_client, [("bomb.png", data)])
    assert_rejected(response, media_root, upload_tmp, message="limit")
    reliability_record(file_bytes=len(data), claimed_mp=400, rss_growth_mib=round(mem.growth_mib, 1))
    assert mem.growth_mib < 64, f"RSS grew by {mem.growth_mib:.0f} MiB on a 400 MP bomb"


@pytest.mark.parametrize("kind", [b"iCCP", b"zTXt"])
def test_chunk_decompression_bomb(alice_client, media_root, upload_tmp, kind, reliability_record):
    """An ancillary chunk that inflates to 200 MB: refused or ignored, never inflated in full."""
    base = hf.encode_pil(Image.fromarray(hf.quadrants_rgb(64, 48)), "PNG")
    data = hf.png_with_chunk_bomb(base, kind)
    with PeakRSS() as mem:
        response = post(alice_client, [("bomb.png", data)])
    reliability_record(answer=response.status_code, rss_growth_mib=round(mem.growth_mib, 1))
    assert mem.growth_mib < 96, f"RSS grew by {mem.growth_mib:.0f} MiB on a {kind.decode()} bomb"
    if response.status_code == 400:
        assert_rejected(response, media_root, upload_tmp, message="damaged|too large|not an image")
    else:  # Pillow skipped the chunk: then it must be an ordinary, correct photo
        assert response.status_code == 201
        photo = Photo.objects.get()
        assert (photo.original_width, photo.original_height) == (64, 48)


def test_100_megapixel_real_image_rejected_without_decoding(
    alice_client, media_root, upload_tmp, tmp_path_factory, reliability_record
):
    path = hf.make_100mp_jpeg(tmp_path_factory.getbasetemp() / "100mp.jpg")
    data = path.read_bytes()
    assert jpeg_size(data) == (10_000, 10_000)
    started = time.monotonic()
    with PeakRSS() as mem:
        response = post(alice_client, [("big.jpg", data)])
    seconds = time.monotonic() - started
    assert_rejected(response, media_root, upload_tmp, message=r"limit of 40\.0 MP")
    reliability_record(
        file_mib=round(len(data) / 2**20, 1),
        rss_growth_mib=round(mem.growth_mib, 1),
        seconds=round(seconds, 2),
    )
    # Decoding it would take 300 MB of RGB; the check reads the header only. The upload itself is
    # a few MB and is buffered once by the test client and once by the parser.
    assert mem.growth_mib < 4 * len(data) / 2**20 + 48, f"RSS grew by {mem.growth_mib:.0f} MiB"
    assert seconds < 10


@pytest.mark.parametrize(
    ("name", "data"),
    [("page.jpg", hf.HTML_AS_JPG), ("drawing.jpg", hf.SVG_AS_JPG), ("run.jpg", hf.SCRIPT_AS_JPG)],
    ids=["html", "svg", "shell-script"],
)
def test_not_an_image_named_jpg(alice_client, media_root, upload_tmp, name, data):
    response = post(alice_client, [(name, data)])
    assert_rejected(response, media_root, upload_tmp, message="not an image")


@pytest.mark.parametrize("maker", [hf.animated_gif, hf.apng], ids=["gif", "apng"])
def test_animated_rejected(alice_client, media_root, upload_tmp, maker):
    response = post(alice_client, [("anim.png", maker())])
    assert_rejected(response, media_root, upload_tmp, message="Animated images are not supported")


def test_bad_files_do_not_block_good_ones(alice_client, media_root, upload_tmp):
    good = hf.encode_pil(Image.fromarray(hf.quadrants_rgb(64, 48)), "PNG")
    response = post(
        alice_client,
        [("a.png", good), ("empty.jpg", b""), ("page.jpg", hf.HTML_AS_JPG), ("b.png", good)],
    )
    assert response.status_code == 200, response.content
    results = {r["name"]: r for r in response.json()["results"]}
    assert results["a.png"]["ok"] and results["b.png"]["ok"]
    assert not results["empty.jpg"]["ok"] and "empty" in results["empty.jpg"]["error"]
    assert not results["page.jpg"]["ok"]
    assert Photo.objects.count() == 2 == StagedUpload.objects.count()
    assert list(upload_tmp.iterdir()) == []


# --- accepted: the photo must come out right ---------------------------------------------------
def test_exif_rotated_photo_is_upright(alice_client, media_root):
    upright = hf.quadrants_rgb(64, 96)  # what the viewer must see: portrait
    # Stored landscape, with orientation 6 ("rotate 90° clockwise to display").
    stored = np.asarray(Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90))
    data = hf.oriented_jpeg(stored, 6)
    assert ImageOps.exif_transpose(Image.open(io.BytesIO(data))).size == (64, 96)
    photo, decoded = accept_and_encode(alice_client, "rotated.jpg", data)
    assert (photo.original_width, photo.original_height) == (64, 96)
    assert_colours(decoded, upright)
    for comp in photo.comparisons.all():  # the comparisons are upright too, and carry no EXIF
        with default_storage.open(comp.file.name) as fh:
            img = Image.open(io.BytesIO(fh.read()))
        assert img.width * 96 == img.height * 64 or comp.downscaled
        assert 0x0112 not in img.getexif()


def test_cmyk_jpeg(alice_client, media_root):
    rgb = hf.quadrants_rgb(64, 48)
    data = hf.cmyk_jpeg(rgb)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    expected = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    _photo, decoded = accept_and_encode(alice_client, "cmyk.jpg", data)
    assert_colours(decoded, expected)


def test_16bit_gray_png(alice_client, media_root):
    g16 = np.zeros((48, 64), np.uint16)
    g16[:, :32] = 10_000
    g16[:, 32:] = 50_000
    data = hf.encode_pil(Image.fromarray(g16), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    _photo, decoded = accept_and_encode(alice_client, "gray16.png", data)
    expected = np.repeat(np.round(g16 / 65535 * 255).astype(np.uint8)[..., None], 3, axis=2)
    assert_colours(decoded, expected)


def test_48bit_rgb_png(alice_client, media_root):
    rgb = hf.quadrants_rgb(64, 48)
    data = hf.png_rgb48(rgb.astype(np.uint16) * 257)
    _photo, decoded = accept_and_encode(alice_client, "rgb48.png", data)
    assert_colours(decoded, rgb)


def test_grayscale_with_alpha(alice_client, media_root):
    data = hf.gray_alpha_png(64, 48)
    _photo, decoded = accept_and_encode(alice_client, "la.png", data)
    expected = np.zeros((48, 64, 3), np.uint8)
    expected[:, :32] = 60  # opaque dark gray
    expected[:, 32:] = 255  # transparent → composited over white (codec.imageio policy)
    assert_colours(decoded, expected)


def test_huge_exif_jpeg(alice_client, media_root):
    rgb = hf.quadrants_rgb(64, 48)
    data = hf.huge_exif_jpeg(rgb)
    assert len(data) > 65_000
    photo, decoded = accept_and_encode(alice_client, "exif.jpg", data)
    assert_colours(decoded, rgb)
    assert photo.original_bytes == len(data)


def test_huge_exif_chunk_png(alice_client, media_root, upload_tmp):
    """A PNG with an 8 MB eXIf chunk: a clear rejection or a correct photo, quickly and in bounded memory."""
    rgb = hf.quadrants_rgb(64, 48)
    base = hf.encode_pil(Image.fromarray(rgb), "PNG")
    data = hf.png_with_exif(base, hf.huge_exif_tiff_block(8 * 1024 * 1024))
    started = time.monotonic()
    with PeakRSS() as mem:
        response = post(alice_client, [("exif.png", data)], size="budget", budget=6000)
    assert time.monotonic() - started < 10
    assert mem.growth_mib < 10 * len(data) / 2**20 + 48
    if response.status_code == 400:
        assert_rejected(response, media_root, upload_tmp, message="damaged|limit")
        return
    assert response.status_code == 201, response.content
    [result] = response.json()["results"]
    assert encode_photo.apply(args=[result["id"]]).get() == "ready"


def raw_multipart(client, filename: str, data: bytes):
    """POST one file part with exactly this ``filename`` (the test client would refuse some names)."""
    boundary = "----hostile-boundary-7MA4YWxkTrZu0gW"
    quoted = filename.replace("\\", "\\\\").replace('"', '\\"')
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="size"\r\n\r\nstandard\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{quoted}"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return client.generic(
        "POST",
        reverse(UPLOAD),
        body,
        content_type=f"multipart/form-data; boundary={boundary}",
        HTTP_ACCEPT="application/json",
    )


@pytest.mark.parametrize(
    "name",
    [
        "../../../../etc/passwd.png",
        "..\\..\\windows\\system32\\ünïcödé 写真.png",
        "foto\x01.sh\u202egnp.png",
        "/absolute/path/x.png",
        "x" * 600 + ".png",
    ],
    ids=["dotdot-posix", "dotdot-windows-unicode", "control-rtl", "absolute", "very-long"],
)
def test_hostile_filenames(alice_client, media_root, tmp_path, name):
    data = hf.encode_pil(Image.fromarray(hf.quadrants_rgb(48, 32)), "PNG")
    before_outside = set(tmp_path.parent.rglob("*"))
    response = raw_multipart(alice_client, name, data)
    assert response.status_code == 201, response.content
    photo = Photo.objects.get()
    assert "/" not in photo.title and "\\" not in photo.title
    assert all(ch.isprintable() for ch in photo.title) and "\u202e" not in photo.title
    assert 0 < len(photo.title) <= 200
    assert encode_photo.apply(args=[str(photo.pk)]).get() == "ready"
    photo.refresh_from_db()
    names = [photo.latent.name] + [c.file.name for c in photo.comparisons.all()]
    for stored in names:
        assert str(photo.pk) in stored and photo.title not in stored
        assert (media_root / stored).resolve().is_relative_to(media_root.resolve())
    # Nothing appeared outside the media folder (the tmp tree of this test session).
    new_outside = {p for p in set(tmp_path.parent.rglob("*")) - before_outside if media_root not in p.parents}
    assert new_outside == set(), new_outside


@pytest.mark.parametrize("name", ["..", ".", "", "../.."])
def test_filename_without_a_base_name(alice_client, media_root, upload_tmp, name):
    """Django drops a part whose name has no base name; the answer is a clear error, nothing stored."""
    data = hf.encode_pil(Image.fromarray(hf.quadrants_rgb(48, 32)), "PNG")
    response = raw_multipart(alice_client, name, data)
    assert response.status_code == 400
    assert "Choose at least one photo" in str(response.json()["errors"])
    assert Photo.objects.count() == 0 and StagedUpload.objects.count() == 0
    assert stored_files(media_root) == [] and list(upload_tmp.iterdir()) == []
