"""Preview cache files: specs, namer, existence state, strategies, the Celery backend, purge."""

from __future__ import annotations

import io
import time

import pytest
from django.core.files.storage import FileSystemStorage, default_storage
from django.core.management import CommandError, call_command
from PIL import Image

from gallery import previews, resilience

from .conftest import broker_at
from .factories import pending_photo, ready_photo

CLOSED_PORT_URL = "redis://127.0.0.1:1/0"

pytestmark = pytest.mark.django_db


def decoded(width=1000, height=700):
    """Stands in for ``codec.decode`` here; the real decode is exercised by test_tasks.py."""
    calls = []

    def decode(data: bytes) -> Image.Image:
        calls.append(len(data))
        return Image.new("RGB", (width, height), (120, 80, 40))

    return decode, calls


class RecordingBackend:
    """A backend that records what the strategy asked for (the real one needs a broker)."""

    def __init__(self) -> None:
        self.scheduled: list[tuple[str, list[str]]] = []

    def schedule(self, photo, spec_names) -> bool:
        self.scheduled.append((str(photo.pk), sorted(spec_names)))
        return True


class CountingStorage(FileSystemStorage):
    """A real file-system storage that counts ``exists`` calls (an S3 HEAD each on object storage)."""

    exists_calls = 0

    def exists(self, name):
        type(self).exists_calls += 1
        return super().exists(name)


@pytest.fixture
def counting_storage(settings, media_root):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": f"{__name__}.CountingStorage",
            "OPTIONS": {"location": str(media_root), "allow_overwrite": True},
        },
    }
    CountingStorage.exists_calls = 0
    return CountingStorage


def test_namer_depends_on_latent_and_spec(user, media_root, settings):
    photo = ready_photo(user)
    thumb = previews.cache_name(photo, previews.SPECS["thumb"])
    display = previews.cache_name(photo, previews.SPECS["display"])
    assert thumb.startswith(f"previews/{photo.pk}/thumb-") and thumb.endswith(".webp")
    assert thumb != display
    photo.latent_sha256 = "0" * 64
    assert previews.cache_name(photo, previews.SPECS["thumb"]) != thumb
    settings.GALLERY_PREVIEW_FORMAT = "JPEG"
    assert previews.cache_name(photo, previews.SPECS["thumb"]).endswith(".jpg")
    assert previews.CacheFile(photo, previews.SPECS["thumb"]).content_type == "image/jpeg"


def test_registered_spec_is_served_like_the_builtin_ones(user, media_root):
    spec = previews.register(previews.PreviewSpec("test-download", 64, 90, fixed_format="PNG"))
    try:
        photo = ready_photo(user)
        [name] = previews.render(photo, ["test-download"], decoded(200, 100)[0])
        assert name.endswith(".png") and previews.get_spec("test-download") is spec
        with default_storage.open(name) as fh:
            assert Image.open(io.BytesIO(fh.read())).size == (64, 32)
    finally:
        previews.SPECS.pop("test-download")


def test_render_writes_missing_files_once(user, media_root):
    photo = ready_photo(user)
    decode, calls = decoded()
    written = previews.render(photo, ["thumb", "display"], decode)
    assert len(written) == 2 and calls == [photo.latent_bytes]
    with default_storage.open(previews.cache_name(photo, previews.SPECS["thumb"])) as fh:
        thumb = Image.open(io.BytesIO(fh.read()))
    assert thumb.format == "WEBP" and max(thumb.size) == 320 and thumb.size == (320, 224)
    with default_storage.open(previews.cache_name(photo, previews.SPECS["display"])) as fh:
        assert Image.open(io.BytesIO(fh.read())).size == (1000, 700)  # never upscaled
    assert previews.render(photo, ["thumb", "display"], decode) == []  # idempotent: no second decode
    assert len(calls) == 1
    assert previews.lookup(photo, "thumb") is not None


def test_existing_file_costs_no_storage_call_per_poll(user, counting_storage):
    photo = ready_photo(user)
    previews.render(photo, ["thumb"], decoded(200, 100)[0])  # the worker remembers what it wrote
    counting_storage.exists_calls = 0
    for _poll in range(5):
        assert previews.lookup(photo, "thumb") is not None
    assert counting_storage.exists_calls == 0


def test_file_written_elsewhere_is_seen_then_remembered(user, counting_storage):
    """A missing file is asked for each time (another process may write it); once found, never again."""
    photo = ready_photo(user)
    cache_file = previews.CacheFile(photo, previews.SPECS["thumb"])
    assert previews.lookup(photo, "thumb") is None
    assert previews.lookup(photo, "thumb") is None
    assert counting_storage.exists_calls == 2
    default_storage.save(cache_file.name, io.BytesIO(b"written by another process"))
    assert previews.lookup(photo, "thumb") == cache_file
    calls = counting_storage.exists_calls
    assert previews.lookup(photo, "thumb") == cache_file
    assert counting_storage.exists_calls == calls


def test_purge_forgets_the_remembered_state(user, media_root):
    photo = ready_photo(user)
    previews.render(photo, ["thumb"], decoded(200, 100)[0])
    assert previews.lookup(photo, "thumb") is not None
    assert previews.purge(photo.pk)[0] == 1
    assert previews.lookup(photo, "thumb") is None
    assert not (media_root / "previews" / str(photo.pk)).exists()  # the folder went too


def test_lookup_never_schedules_request_does(user, media_root):
    photo = ready_photo(user)
    backend = RecordingBackend()
    strategy = previews.JustInTime(backend)
    assert previews.lookup(photo, "thumb") is None
    assert backend.scheduled == []
    assert previews.request(photo, "display", strategy_=strategy) is None
    assert backend.scheduled == [(str(photo.pk), ["display"])]
    previews.render(photo, ["display"], decoded(200, 100)[0])
    assert previews.request(photo, "display", strategy_=strategy) is not None
    assert len(backend.scheduled) == 1  # a hit schedules nothing


def test_request_on_unready_photo_schedules_nothing(user):
    backend = RecordingBackend()
    assert previews.request(pending_photo(user), "thumb", strategy_=previews.Optimistic(backend)) is None
    assert backend.scheduled == []


def test_strategies_decide_when_files_are_made(user, media_root):
    photo = ready_photo(user)
    jit, optimistic = RecordingBackend(), RecordingBackend()
    previews.JustInTime(jit).on_source_ready(photo)
    previews.Optimistic(optimistic).on_source_ready(photo)
    assert jit.scheduled == []  # just in time: nothing until a page asks
    eager = sorted(n for n, spec in previews.SPECS.items() if not getattr(spec, "on_demand", False))
    assert "thumb" in eager and "display" in eager
    assert optimistic.scheduled == [(str(photo.pk), eager)]
    miss = previews.CacheFile(photo, previews.SPECS["thumb"])
    previews.JustInTime(jit).on_missing(miss)
    previews.Optimistic(optimistic).on_missing(miss)
    assert jit.scheduled[-1] == optimistic.scheduled[-1] == (str(photo.pk), ["thumb"])


def test_strategy_setting(settings):
    settings.GALLERY_PREVIEW_STRATEGY = "optimistic"
    assert type(previews.strategy()) is previews.Optimistic
    settings.GALLERY_PREVIEW_STRATEGY = "just_in_time"
    assert type(previews.strategy()) is previews.JustInTime
    settings.GALLERY_PREVIEW_STRATEGY = "sometimes"
    with pytest.raises(ValueError, match="GALLERY_PREVIEW_STRATEGY"):
        previews.strategy()


def test_celery_backend_queues_once_per_marker_period(user, purged_queue, media_root):
    """Real broker: two misses in a row publish one render task."""
    photo = ready_photo(user)
    backend = previews.CeleryBackend()
    assert backend.schedule(photo, ["thumb"]) is True
    assert backend.schedule(photo, ["thumb"]) is False
    assert backend.schedule(photo, ["display"]) is True  # another spec is another render
    with purged_queue.connection_for_read() as conn:
        assert conn.default_channel.client.llen("gpu") == 2


def test_celery_backend_with_cache_down_neither_raises_nor_hangs(user, settings, media_root):
    """CACHE_URL at a closed port (Redis down): nothing queued, nothing raised, fast; and the breaker
    skips the cache for the next calls of the page."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CLOSED_PORT_URL,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    photo = ready_photo(user)
    started = time.monotonic()
    assert previews.CeleryBackend().schedule(photo, ["thumb"]) is False
    assert previews.lookup(photo, "thumb") is None  # falls back to the storage call
    previews.render(photo, ["thumb"], decoded(200, 100)[0])
    assert previews.lookup(photo, "thumb") is not None
    assert time.monotonic() - started < 3
    assert resilience.CACHE.is_open


def test_celery_backend_with_broker_down_releases_its_marker(user, purged_queue, media_root):
    """Broker at a closed port: schedule answers False fast; once it is back the next miss queues."""
    photo = ready_photo(user)
    with broker_at(purged_queue, CLOSED_PORT_URL):
        started = time.monotonic()
        assert previews.CeleryBackend().schedule(photo, ["thumb"]) is False
        assert time.monotonic() - started < 5
    resilience.BROKER.reset()
    assert previews.CeleryBackend().schedule(photo, ["thumb"]) is True  # the marker was released


def test_purge_and_disk_usage(user, media_root):
    a, b = ready_photo(user), ready_photo(user)
    decode, _ = decoded(200, 100)
    previews.render(a, ["thumb", "display"], decode)
    previews.render(b, ["thumb"], decode)
    files, total = previews.disk_usage()
    assert files == 3 and total > 0
    assert previews.purge(a.pk)[0] == 2
    assert previews.disk_usage()[0] == 1
    call_command("purge_previews")
    assert previews.disk_usage() == (0, 0)
    assert default_storage.exists(a.latent.name)  # the latent is never touched


def test_purge_command_by_id(user, media_root, capsys):
    a = ready_photo(user)
    previews.render(a, ["thumb"], decoded()[0])
    call_command("purge_previews", str(a.pk))
    assert "Removed 1 preview file" in capsys.readouterr().out
    with pytest.raises(CommandError):
        call_command("purge_previews", "not-a-uuid")
    with pytest.raises(CommandError):
        call_command("purge_previews", "00000000-0000-0000-0000-000000000000")


def test_lookup_is_none_for_unready_photo(user):
    assert previews.lookup(pending_photo(user), "thumb") is None
