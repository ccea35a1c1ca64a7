"""Security rules, tested from the outside: CSRF, login, ownership, staff-only data, stored names,
media headers and Django-level upload limits. (``manage.py check --deploy`` for the production
profile is tested in tests/gallery/test_deploy.py; ``make reliability`` runs it with these.)
"""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from PIL import Image

from gallery import previews, storage
from gallery.models import Photo, StagedUpload
from tests.gallery.factories import image_bytes, pending_photo, ready_photo

pytestmark = pytest.mark.django_db


class _Forms(HTMLParser):
    """Collects every <form>: its method, action and whether it carries a CSRF token input."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append(
                {"method": (a.get("method") or "get").lower(), "action": a.get("action"), "csrf": False}
            )
        elif tag == "input" and a.get("name") == "csrfmiddlewaretoken" and self.forms and a.get("value"):
            self.forms[-1]["csrf"] = True


def post_forms(html: str) -> list[dict]:
    parser = _Forms()
    parser.feed(html)
    return [f for f in parser.forms if f["method"] == "post"]


def csrf_client(user=None) -> Client:
    client = Client(enforce_csrf_checks=True)
    if user is not None:
        client.force_login(user)
    return client


def token_of(client: Client, url: str) -> str:
    client.get(url)
    return client.cookies["csrftoken"].value


# --- CSRF --------------------------------------------------------------------------------------
def all_views():
    def walk(patterns, prefix=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                yield prefix + str(p.pattern), p.callback

    return list(walk(get_resolver().url_patterns))


def test_no_view_is_csrf_exempt():
    views = all_views()
    assert len(views) > 20  # gallery + auth + admin
    exempt = [route for route, cb in views if getattr(cb, "csrf_exempt", False)]
    assert exempt == []


def test_every_post_form_on_the_site_carries_a_token(user, staff_user, media_root):
    photo = ready_photo(user)
    owner = csrf_client(user)
    pages = {
        "login": (Client(enforce_csrf_checks=True), reverse("login")),
        "list": (owner, reverse("gallery:list")),
        "upload": (owner, reverse("gallery:upload")),
        "detail": (owner, reverse("gallery:detail", args=[photo.pk])),
        "delete": (owner, reverse("gallery:delete", args=[photo.pk])),
        "stats": (csrf_client(staff_user), reverse("gallery:stats")),
    }
    seen = 0
    for name, (client, url) in pages.items():
        response = client.get(url)
        assert response.status_code == 200, name
        forms = post_forms(response.content.decode())
        assert forms, f"{name}: expected at least one POST form (sign-out is on every page)"
        assert all(f["csrf"] for f in forms), f"{name}: a POST form without a CSRF token: {forms}"
        seen += len(forms)
    assert seen >= 7


@pytest.mark.parametrize("with_token", [False, True], ids=["no-token", "token"])
def test_csrf_enforced_on_upload(user, media_root, with_token):
    client = csrf_client(user)
    data = {"size": "standard", "files": SimpleUploadedFile("a.png", image_bytes(64, 48, "PNG"))}
    if with_token:
        data["csrfmiddlewaretoken"] = token_of(client, reverse("gallery:upload"))
    response = client.post(reverse("gallery:upload"), data, HTTP_ACCEPT="application/json")
    if with_token:
        assert response.status_code == 201
        assert Photo.objects.count() == 1
    else:
        assert response.status_code == 403
        assert Photo.objects.count() == 0 and StagedUpload.objects.count() == 0


def test_csrf_enforced_on_delete(user, media_root):
    photo = ready_photo(user)
    client = csrf_client(user)
    url = reverse("gallery:delete", args=[photo.pk])
    assert client.post(url).status_code == 403
    assert Photo.objects.filter(pk=photo.pk).exists()
    token = token_of(client, url)
    assert client.post(url, {"csrfmiddlewaretoken": token}).status_code == 302
    assert not Photo.objects.filter(pk=photo.pk).exists()


def test_csrf_enforced_on_login_logout_and_admin(user, staff_user, password):
    anon = Client(enforce_csrf_checks=True)
    assert anon.post(reverse("login"), {"username": "alice", "password": password}).status_code == 403
    token = token_of(anon, reverse("login"))
    ok = anon.post(
        reverse("login"), {"username": "alice", "password": password, "csrfmiddlewaretoken": token}
    )
    assert ok.status_code == 302 and "_auth_user_id" in anon.session
    assert anon.post(reverse("logout")).status_code == 403  # a forged sign-out is refused
    assert "_auth_user_id" in anon.session

    admin = Client(enforce_csrf_checks=True)
    login = reverse("admin:login")
    assert admin.post(login, {"username": "carol", "password": password}).status_code == 403
    staff = csrf_client(staff_user)
    changelist = reverse("admin:gallery_photo_changelist")
    assert staff.post(changelist, {"action": "requeue", "_selected_action": []}).status_code == 403


# --- login and ownership -----------------------------------------------------------------------
def test_anonymous_upload_is_refused_and_stores_nothing(client, media_root):
    response = client.post(
        reverse("gallery:upload"),
        {"size": "standard", "files": SimpleUploadedFile("a.png", image_bytes(64, 48, "PNG"))},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert Photo.objects.count() == 0 and StagedUpload.objects.count() == 0
    assert not any(p.is_file() for p in media_root.rglob("*"))


def test_only_the_owner_deletes(client, user, other_user, media_root):
    photo = ready_photo(user)
    Photo.objects.filter(pk=photo.pk).update(visibility="users")  # others may look (private: 404)
    files = [photo.latent.name] + [c.file.name for c in photo.comparisons.all()]
    client.force_login(other_user)
    url = reverse("gallery:delete", args=[photo.pk])
    assert client.get(url).status_code == 403
    assert client.post(url).status_code == 403
    assert Photo.objects.filter(pk=photo.pk).exists()
    assert all(default_storage.exists(n) for n in files)
    # The photo page offers no delete button to others, the status JSON says so too.
    detail = client.get(reverse("gallery:detail", args=[photo.pk])).content.decode()
    assert url not in detail
    assert client.get(reverse("gallery:status", args=[photo.pk])).json()["can_delete"] is False

    client.force_login(user)
    assert client.post(url).status_code == 302
    assert not Photo.objects.filter(pk=photo.pk).exists()
    assert not any(default_storage.exists(n) for n in files)


def test_pending_photo_delete_by_stranger_keeps_the_staged_original(client, user, other_user):
    photo = pending_photo(user)
    client.force_login(other_user)
    assert client.post(reverse("gallery:delete", args=[photo.pk])).status_code == 404  # private
    Photo.objects.filter(pk=photo.pk).update(visibility="users")
    assert client.post(reverse("gallery:delete", args=[photo.pk])).status_code == 403
    assert StagedUpload.objects.filter(photo=photo).exists()


# --- staff-only data ---------------------------------------------------------------------------
def _stats_numbers(photo: Photo) -> list[str]:
    return [f"{photo.original_bytes:,}", f"{photo.latent_bytes:,}"]


@pytest.mark.parametrize("who", ["anonymous", "member"])
def test_statistics_and_admin_give_no_data_to_non_staff(
    client, user, other_user, staff_user, media_root, who
):
    photo = ready_photo(user, original_bytes=987_654, latent_bytes=4_321)
    if who == "member":
        client.force_login(other_user)
    staff = Client()
    staff.force_login(staff_user)
    assert all(n in staff.get(reverse("gallery:stats")).content.decode() for n in _stats_numbers(photo))

    urls = [
        reverse("gallery:stats"),
        reverse("admin:index"),
        reverse("admin:gallery_photo_changelist"),
        reverse("admin:gallery_photo_change", args=[photo.pk]),
        reverse("admin:gallery_stagedupload_changelist"),
        reverse("admin:gallery_comparison_changelist"),
        reverse("admin:auth_user_changelist"),
    ]
    for url in urls:
        response = client.get(url)
        body = response.content.decode()
        if url.startswith("/admin/"):
            assert response.status_code == 302 and "/admin/login/" in response["Location"], url
        elif who == "anonymous":
            assert response.status_code == 302 and response["Location"].startswith(reverse("login")), url
        else:
            assert response.status_code == 403, url
        assert not any(n in body for n in _stats_numbers(photo)), url
        assert str(photo.pk) not in body, url


# --- stored names and media headers ------------------------------------------------------------
def test_storage_names_are_generated():
    pid = "3f2a0c1e-0000-4000-8000-000000000001"
    assert storage.latent_name(pid) == f"latents/{pid}.sdl"
    for fmt in ("jpeg", "webp", "avif"):
        assert re.fullmatch(rf"comparisons/{pid}/{fmt}\.\w+", storage.comparison_name(pid, fmt))
    with pytest.raises(KeyError):
        storage.comparison_name(pid, "../../evil")


def _body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_media_served_with_real_content_type_and_nosniff(client, user, media_root):
    photo = ready_photo(user, comparisons=("jpeg", "webp", "avif"))
    # A real preview cache file, rendered from an image (this factory's latent bytes are a stand-in).
    previews.render(photo, ["thumb"], lambda _data: Image.new("RGB", (64, 48), (10, 200, 30)))
    client.force_login(user)
    pil_format = {"image/jpeg": "JPEG", "image/webp": "WEBP", "image/avif": "AVIF"}
    cases = [reverse("gallery:comparison", args=[photo.pk, f]) for f in ("jpeg", "webp", "avif")]
    cases.append(reverse("gallery:preview", args=[photo.pk, "thumb"]))
    for url in cases:
        response = client.get(url)
        assert response.status_code == 200, url
        assert response["X-Content-Type-Options"] == "nosniff", url
        ctype = response["Content-Type"]
        assert Image.open(io.BytesIO(_body(response))).format == pil_format[ctype], url

    latent = client.get(reverse("gallery:latent", args=[photo.pk]))
    assert latent["Content-Type"] == "application/octet-stream"
    assert latent["X-Content-Type-Options"] == "nosniff"
    assert latent["Content-Disposition"].startswith("attachment;")
    assert _body(latent) == default_storage.open(photo.latent.name).read()

    placeholder = client.get(reverse("gallery:preview", args=[photo.pk, "display"]))
    assert placeholder["Content-Type"].startswith("image/svg+xml")
    assert placeholder["X-Content-Type-Options"] == "nosniff"
    assert b"<script" not in _body(placeholder)

    page = client.get(reverse("gallery:list"))
    assert page["X-Content-Type-Options"] == "nosniff" and page["X-Frame-Options"] == "DENY"


def test_placeholder_svg_escapes_nothing_from_users(client, user):
    photo = pending_photo(user, title="<script>alert(1)</script>.png")
    client.force_login(user)
    body = _body(client.get(reverse("gallery:preview", args=[photo.pk, "thumb"])))
    assert b"<script" not in body
    detail = client.get(reverse("gallery:detail", args=[photo.pk])).content
    assert b"<script>alert(1)</script>" not in detail and b"&lt;script&gt;" in detail


# --- upload limits enforced by Django (settings + upload handler), before any form ------------
def multipart_request(files: dict[str, bytes], fields: dict[str, str] | None = None):
    from django.test.client import encode_multipart

    boundary = "BoUnDaRy"
    data = {**(fields or {}), **{k: SimpleUploadedFile(k, v) for k, v in files.items()}}
    body = encode_multipart(boundary, data)
    return RequestFactory().generic(
        "POST", "/upload/", body, content_type=f"multipart/form-data; boundary={boundary}"
    )


def test_oversize_file_is_dropped_while_the_body_is_parsed(settings):
    settings.GALLERY_MAX_UPLOAD_BYTES = 100_000
    request = multipart_request({"big.png": b"\x89PNG" + b"\x00" * 300_000, "ok.png": b"x" * 1000})
    files = request.FILES  # the parser + SizeLimitUploadHandler, no view and no form involved
    names = [f.name for f in files.getlist("big.png")] + [f.name for f in files.getlist("ok.png")]
    assert names == ["ok.png"]
    assert request.gallery_oversize_uploads == ["big.png"]


def test_oversize_upload_gets_a_per_file_error(alice_client, settings, media_root):
    settings.GALLERY_MAX_UPLOAD_BYTES = 50_000
    big = image_bytes(400, 300, "PNG")
    assert len(big) > 50_000
    small = image_bytes(64, 48, "PNG")
    response = alice_client.post(
        reverse("gallery:upload"),
        {
            "size": "standard",
            "files": [SimpleUploadedFile("big.png", big), SimpleUploadedFile("s.png", small)],
        },
        HTTP_ACCEPT="application/json",
    )
    results = {r["name"]: r for r in response.json()["results"]}
    assert results["s.png"]["ok"] and not results["big.png"]["ok"]
    assert "larger than the limit" in results["big.png"]["error"]
    assert Photo.objects.count() == 1


def test_too_many_files_and_oversized_fields_are_refused(alice_client, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 3
    files = [SimpleUploadedFile(f"{i}.png", image_bytes(32, 32, "PNG")) for i in range(4)]
    response = alice_client.post(reverse("gallery:upload"), {"size": "standard", "files": files})
    assert response.status_code == 400
    response = alice_client.post(reverse("gallery:upload"), {"size": "standard", "title": "x" * 2_000_000})
    assert response.status_code == 400
    assert Photo.objects.count() == 0


def test_whole_request_over_the_cap_gets_413_before_anything_is_staged(alice_client, settings, media_root):
    settings.GALLERY_MAX_REQUEST_BYTES = 60_000
    files = [SimpleUploadedFile(f"{i}.png", image_bytes(200, 150, "PNG")) for i in range(4)]
    assert sum(f.size for f in files) > 60_000
    response = alice_client.post(reverse("gallery:upload"), {"size": "standard", "files": files},
                                 HTTP_ACCEPT="application/json")
    assert response.status_code == 413
    assert "limit for one request" in response.json()["errors"]["files"][0]["message"]
    one = SimpleUploadedFile("one.png", image_bytes(200, 150, "PNG"))
    response = alice_client.post(reverse("gallery:upload"), {"size": "standard", "files": [one]})
    assert response.status_code == 302  # one file is under the cap
    files = [SimpleUploadedFile(f"{i}.png", image_bytes(200, 150, "PNG")) for i in range(4)]
    response = alice_client.post(reverse("gallery:upload"), {"size": "standard", "files": files})
    assert response.status_code == 413 and b"too large" in response.content
    assert Photo.objects.count() == StagedUpload.objects.count() == 1  # only the single-file post


def test_upload_limit_settings_are_set():
    from django.conf import settings

    assert settings.FILE_UPLOAD_HANDLERS[0] == "gallery.uploadhandlers.SizeLimitUploadHandler"
    assert 0 < settings.DATA_UPLOAD_MAX_MEMORY_SIZE <= 2 * 1024 * 1024
    assert 0 < settings.DATA_UPLOAD_MAX_NUMBER_FILES <= 100
    assert 0 < settings.GALLERY_MAX_UPLOAD_BYTES <= 100 * 1024 * 1024
    assert settings.GALLERY_MAX_UPLOAD_BYTES <= settings.GALLERY_MAX_REQUEST_BYTES <= 1024 * 1024 * 1024
    assert "gallery.middleware.RequestSizeLimitMiddleware" in settings.MIDDLEWARE


@pytest.mark.parametrize(
    "title",
    ['x"; filename=evil.exe; a=b.png', 'x"; filename=evil.exe\r\nX-Evil: 1; a=ü.png'],
    ids=["ascii-quotes", "crlf-unicode"],
)
def test_download_name_from_a_hostile_title_cannot_break_the_header(client, user, media_root, title):
    from email.message import Message

    photo = ready_photo(user)
    Photo.objects.filter(pk=photo.pk).update(title=title)  # bypass the upload's name cleaning
    client.force_login(user)
    response = client.get(reverse("gallery:latent", args=[photo.pk]))
    disposition = response["Content-Disposition"]
    assert "\r" not in disposition and "\n" not in disposition and "X-Evil" not in response
    parsed = Message()
    parsed["Content-Disposition"] = disposition
    assert parsed.get_content_disposition() == "attachment"
    assert parsed.get_filename() == title.rsplit(".", 1)[0] + ".sdl"  # one name, the whole title
