from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from gallery import previews, services, sizes
from gallery.models import Comparison, Photo, StagedUpload
from gallery.validation import inspect_upload

from .factories import ready_photo


def upload(data: bytes, name: str = "photo.png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


@pytest.mark.parametrize(
    ("size", "w", "h", "expected"),
    [
        # the codec's rounding (codec.options.bpp_to_bytes): a budget rounds down
        ("tiny", 768, 512, 2457),
        ("small", 768, 512, 4915),
        ("standard", 768, 512, 7372),
        ("standard", 800, 600, 9000),  # exact: no float error pushes it to 8999
        ("tiny", 20, 20, 256),
    ],
)
def test_target_for_presets(size, w, h, expected):
    nbytes, bpp = sizes.target_for(size, w, h)
    assert nbytes == expected
    assert bpp == sizes.PRESET_BPP[size]


def test_target_for_explicit_budget():
    assert sizes.target_for("budget", 768, 512, 5000) == (5000, None)
    with pytest.raises(ValueError):
        sizes.target_for("budget", 768, 512)


def test_size_table_is_the_one_the_model_and_form_use():
    from gallery.forms import UploadForm

    assert [c for c, _ in Photo.Size.choices] == [*sizes.PRESET_BPP, sizes.BUDGET]
    assert dict(UploadForm().fields["size"].choices) == {n: sizes.label(n) for n, _ in Photo.Size.choices}
    field = UploadForm().fields["budget_bytes"]
    assert (field.min_value, field.max_value) == (sizes.MIN_BUDGET_BYTES, sizes.MAX_BUDGET_BYTES)


def test_form_does_not_import_the_service_layer(project_root):
    """One-way layers: views → services → models; the form sits beside the services, not above."""
    import ast

    tree = ast.parse((project_root / "gallery" / "forms.py").read_text())
    imported = {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not any(m.rsplit(".", 1)[-1] in ("services", "views") for m in imported), imported


@pytest.mark.django_db
def test_visible_photos_depends_on_the_user(user, other_user, media_root):
    from django.contrib.auth.models import AnonymousUser

    ready_photo(user)
    assert services.visible_photos(user).count() == 1
    assert services.visible_photos(AnonymousUser()).count() == 0


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\IMG_0001.JPG", "IMG_0001.JPG"),
        ("fo\x00to\u202e.png", "foto.png"),
        ("Ünïcødé 写真.jpg", "Ünïcødé 写真.jpg"),
        ("", "untitled"),
        (None, "untitled"),
    ],
)
def test_display_name_is_safe(raw, expected):
    assert services.display_name(raw) == expected


@pytest.mark.django_db
def test_stage_upload_records_facts_and_queues_on_commit(
    user, make_image_bytes, django_capture_on_commit_callbacks
):
    data = make_image_bytes(120, 80, "JPEG")
    f = upload(data, "../../holiday.jpg")
    facts = inspect_upload(f, f.size)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        photo = services.stage_upload(user, f, facts, "small", None)
    assert len(callbacks) == 1  # the encode is queued only after the commit
    photo.refresh_from_db()
    assert photo.title == "holiday.jpg"
    assert (photo.original_format, photo.original_width, photo.original_height) == ("JPEG", 120, 80)
    assert photo.original_bytes == len(data)
    assert photo.target_bytes == 256 and photo.target_bpp == 0.10
    staged = StagedUpload.objects.get(photo=photo)
    assert bytes(staged.data) == data and staged.size == len(data)
    # Nothing was written to media storage: the original lives only in the staging row.
    assert not default_storage.listdir("")[1] and not default_storage.listdir("")[0]


@pytest.mark.django_db
def test_accept_uploads_reports_each_file(user, make_image_bytes):
    good = upload(make_image_bytes(64, 64, "PNG"), "good.png")
    bad = upload(b"GIF89a but not really", "bad.gif")
    results = services.accept_uploads(user, [good, bad], "standard", None, oversize=["huge.tif"])
    by_name = {r.name: r for r in results}
    assert by_name["good.png"].ok
    assert not by_name["bad.gif"].ok and "not an image" in by_name["bad.gif"].error
    assert not by_name["huge.tif"].ok and "larger than the limit" in by_name["huge.tif"].error
    assert Photo.objects.count() == 1 and StagedUpload.objects.count() == 1


@pytest.mark.django_db
def test_delete_photo_owner_only_and_removes_files(user, other_user, media_root):
    photo = ready_photo(user)
    cache_file = previews.CacheFile(photo, previews.SPECS["thumb"])
    default_storage.save(cache_file.name, upload(b"preview"))
    names = [photo.latent.name, cache_file.name] + [c.file.name for c in photo.comparisons.all()]
    assert all(default_storage.exists(n) for n in names)
    with pytest.raises(PermissionDenied):
        services.delete_photo(photo, other_user)
    services.delete_photo(photo, user)
    assert not Photo.objects.exists() and not Comparison.objects.exists()
    assert not any(default_storage.exists(n) for n in names)
    # issue 10 item 9: no empty comparisons/<uuid>/ or previews/<uuid>/ folder is left behind
    assert not (media_root / "comparisons" / str(photo.pk)).exists()
    assert not (media_root / "previews" / str(photo.pk)).exists()
    assert previews.lookup(photo, "thumb") is None  # the remembered "exists" state went too


def test_publish_without_broker_returns_false_quickly(project_root):
    """With the broker down, queueing fails softly (logged) instead of breaking the request."""
    code = (
        "import time, django; django.setup();"
        "from gallery.queueing import publish; from gallery.tasks import encode_photo;"
        "t = time.monotonic(); ok = publish(encode_photo, 'x'); print(ok, round(time.monotonic() - t, 1))"
    )
    env = {**os.environ, "REDIS_URL": "redis://127.0.0.1:1/0", "DJANGO_SETTINGS_MODULE": "config.settings"}
    env.pop("CELERY_BROKER_URL", None)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=project_root, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    ok, seconds = out.stdout.split()
    assert ok == "False" and float(seconds) < 10
