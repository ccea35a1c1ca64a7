"""Preview cache files: namer, rendering from a decoded image, purge, the management command."""

from __future__ import annotations

import io

import pytest
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from PIL import Image

from gallery import previews

from .factories import ready_photo

pytestmark = pytest.mark.django_db


def decoded(width=1000, height=700):
    """Stands in for ``codec.decode`` here; the real decode is exercised by test_tasks.py."""
    calls = []

    def decode(data: bytes) -> Image.Image:
        calls.append(len(data))
        return Image.new("RGB", (width, height), (120, 80, 40))

    return decode, calls


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
    from .factories import pending_photo

    assert previews.lookup(pending_photo(user), "thumb") is None


def test_strategy_setting(settings):
    settings.GALLERY_PREVIEW_STRATEGY = "optimistic"
    assert isinstance(previews.strategy(), previews.Optimistic)
    settings.GALLERY_PREVIEW_STRATEGY = "just_in_time"
    assert type(previews.strategy()) is previews.JustInTime
    settings.GALLERY_PREVIEW_STRATEGY = "sometimes"
    with pytest.raises(ValueError):
        previews.strategy()
