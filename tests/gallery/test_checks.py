"""System checks of the gallery settings (gallery/checks.py), web vs worker severity, waiting photos."""

from __future__ import annotations

import pytest
from django.core import checks as django_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from gallery import checks, stats
from gallery.models import Photo
from gallery.worker.pipeline import WAITING_PREFIX

from .factories import pending_photo


def gallery_messages() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for m in django_checks.run_checks(tags=[checks.TAG]):
        out.setdefault(m.id, []).append(m.msg)
    return out


def without_waiting(messages: dict) -> dict:
    return {k: v for k, v in messages.items() if k != "gallery.W012"}


@pytest.mark.django_db
def test_shipped_settings_pass(settings):
    assert without_waiting(gallery_messages()) == {}


@pytest.mark.parametrize(
    ("setting", "value", "check_id"),
    [
        ("GALLERY_ENCODE_EFFORT", "fastest", "gallery.E001"),
        ("GALLERY_CODEC_MODEL", "taesd-typo", "gallery.E002"),
        ("GALLERY_MAX_PIXELS", 60_000_000, "gallery.E003"),  # above what the codec reads
        ("GALLERY_MAX_PIXELS", 0, "gallery.E003"),
        ("GALLERY_MIN_SIDE", 0, "gallery.E003"),
        ("GALLERY_MAX_UPLOAD_BYTES", "30MB", "gallery.E003"),
        ("GALLERY_MAX_ATTEMPTS", 0, "gallery.E003"),
        ("GALLERY_SWEEP_PENDING_AFTER", -5, "gallery.E003"),
        ("GALLERY_MAX_REQUEST_BYTES", 1024, "gallery.E004"),  # smaller than one allowed file
        ("GALLERY_COMPARISON_FORMATS", ["jpeg", "gif"], "gallery.E005"),
        ("GALLERY_COMPARISON_FORMATS", ["jpeg", "jpeg"], "gallery.E005"),
        ("GALLERY_COMPARISON_MIN_QUALITY", 400, "gallery.E006"),
        ("GALLERY_PREVIEW_STRATEGY", "sometimes", "gallery.E007"),
        ("GALLERY_PREVIEW_FORMAT", "GIF", "gallery.E008"),
        ("GALLERY_DECODE_MAX_WORK", "64", "gallery.E013"),
        ("GALLERY_DECODE_MAX_WORK", -1, "gallery.E013"),
        ("GALLERY_DECODE_MAX_WORK", float("inf"), "gallery.E013"),
        ("GALLERY_DECODE_MAX_WORK", 20, "gallery.E014"),  # a 40 MP photo of the site costs ≈ 63
        ("GALLERY_MAX_ENCODE_SECONDS", -1, "gallery.E003"),
        ("GALLERY_MAX_ENCODE_SECONDS", 1, "gallery.E015"),  # under the fixed cost: refuses everything
        ("GALLERY_ADMISSION_SECONDS_PER_MP", {"fastest": 10}, "gallery.E016"),
        ("GALLERY_ADMISSION_SECONDS_PER_MP", {"fast": 0}, "gallery.E016"),
        ("GALLERY_ADMISSION_SECONDS_PER_MP", [("fast", 10)], "gallery.E016"),
        ("GALLERY_TASK_MEMORY_LIMIT", 8, "gallery.E017"),  # GiB meant, bytes read
        ("GALLERY_TASK_MEMORY_LIMIT", "8G", "gallery.E017"),
        ("GALLERY_TASK_TIME_LIMIT", 10, "gallery.E018"),  # not above the soft limit
        ("GALLERY_PRESET_TARGET", "faithfull", "gallery.E019"),
        ("GALLERY_PRESET_TARGET_HEADROOM", 0.5, "gallery.E020"),
    ],
)
@pytest.mark.django_db
def test_each_bad_setting_is_an_error(settings, setting, value, check_id):
    setattr(settings, setting, value)
    messages = without_waiting(gallery_messages())
    assert list(messages) == [check_id], messages
    assert setting in " ".join(messages[check_id])


@pytest.mark.django_db
def test_bad_setting_stops_manage_py_check(settings):
    settings.GALLERY_ENCODE_EFFORT = "fastest"
    with pytest.raises(SystemCheckError, match="GALLERY_ENCODE_EFFORT"):
        call_command("check")


@pytest.mark.django_db
def test_media_storage_not_writable(settings, media_root):
    """A real fault: MEDIA_ROOT below a regular file can be neither created nor written. A worker
    (it stores latents there) must not start; the web process (it stages uploads in the DB) warns."""
    (media_root / "a-file").write_bytes(b"x")
    bad = media_root / "a-file" / "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(bad)},
        },
    }
    messages = without_waiting(gallery_messages())
    assert list(messages) == ["gallery.W010"] and "not writable" in messages["gallery.W010"][0]
    assert [m.id for m in checks.worker_errors()] == ["gallery.E010"]


@pytest.fixture
def no_weights(monkeypatch, tmp_path):
    """Weights resolvable nowhere: empty model dir, no ../shared fallback, empty cache, offline."""
    empty = tmp_path / "no-weights"
    empty.mkdir()
    monkeypatch.setenv("CODEC_MODEL_DIR", str(empty))
    monkeypatch.setenv("CODEC_NO_SHARED_FALLBACK", "1")
    monkeypatch.setenv("CODEC_CACHE_DIR", str(empty / "cache"))
    monkeypatch.setenv("CODEC_OFFLINE", "1")
    return empty


@pytest.mark.django_db
def test_missing_weights_warn_on_the_web_and_stop_a_worker(no_weights):
    web = without_waiting(gallery_messages())
    assert list(web) == ["gallery.W011"] and "taesd" in web["gallery.W011"][0]
    worker = checks.worker_errors()
    assert worker and {m.id for m in worker} == {"gallery.E011"}
    assert all(m.level == django_checks.ERROR for m in worker)


@pytest.mark.django_db
def test_damaged_weights_are_reported(monkeypatch, tmp_path, project_root):
    """A truncated copy of the real decoder (sha256 mismatch) is an error for a worker."""
    from codec import resources
    from gallery.worker.runtime import model_files

    good = tmp_path / "weights"
    good.mkdir()
    for name in model_files("taesd"):
        src = resources.resolve_file("models", name, fetch=False)
        data = src.read_bytes()
        (good / name).write_bytes(data[: len(data) // 2] if "decoder" in name else data)
    monkeypatch.setenv("CODEC_MODEL_DIR", str(good))
    errors = checks.worker_errors()
    assert [m.id for m in errors] == ["gallery.E011"] and "decoder" in errors[0].msg


@pytest.mark.django_db
def test_waiting_photos_are_explained_by_check_and_stats(user):
    reason = "missing TAESD weight file 'taesd_decoder.safetensors'"
    waiting = pending_photo(user, error=f"{WAITING_PREFIX}{reason}")
    pending_photo(user)  # an ordinary pending photo is not "waiting on the setup"
    pending_photo(user, status=Photo.Status.FAILED, error="The codec could not encode this image: x")
    messages = gallery_messages()
    assert messages["gallery.W012"] == [f"1 photo(s) wait for a working worker: {reason}"]
    s = stats.collect(with_queue=False)
    assert (s.waiting.count, s.waiting.reason) == (1, reason)
    waiting.status = Photo.Status.READY
    waiting.save()
    assert stats.setup_waiting().count == 0 and "gallery.W012" not in gallery_messages()


@pytest.mark.django_db
def test_cost_settings_accept_off_values_and_overrides(settings):
    settings.GALLERY_DECODE_MAX_WORK = 0  # no limit
    settings.GALLERY_MAX_ENCODE_SECONDS = 0  # no cap
    settings.GALLERY_TASK_MEMORY_LIMIT = 0
    settings.GALLERY_ADMISSION_SECONDS_PER_MP = {"fast": 25.0}
    assert without_waiting(gallery_messages()) == {}
    from gallery import admission

    assert admission.estimate_seconds(1000, 1000, "fast") == pytest.approx(admission.OVERHEAD_SECONDS + 25.0)


def test_bad_decode_limit_hint_names_the_needed_work(settings):
    settings.GALLERY_DECODE_MAX_WORK = 20
    [error] = [m for m in checks.check_cost_settings() if m.id == "gallery.E014"]
    assert "at least 64" in error.hint and "40 MP" in error.msg
