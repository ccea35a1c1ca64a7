"""Issue 12 item 3 in the gallery: the size presets are quality targets ("faithful",
``GALLERY_PRESET_TARGET``) searched upwards from the preset's bytes to a headroom cap
(``GALLERY_PRESET_TARGET_HEADROOM``); an explicit byte budget stays a budget, and what the file says
about the target shows as a badge (tests/gallery/test_protection.py)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from gallery import presenters, sizes
from gallery.models import Photo

from .factories import codec_options_of_encode, image_bytes, pending_photo

pytestmark = pytest.mark.django_db


def test_presets_are_targets_and_budgets_are_not(settings):
    assert settings.GALLERY_PRESET_TARGET == "faithful"  # shipped
    for name in sizes.PRESET_BPP:
        assert sizes.quality_target(name, "faithful") == "faithful"
        assert sizes.quality_target(name, "") is None  # the old behaviour
    assert sizes.quality_target(sizes.BUDGET, "faithful") is None


def test_the_gallerys_target_names_are_the_codecs():
    from codec.encoder.encode import TARGETS

    assert set(sizes.PRESET_TARGETS) <= set(TARGETS)


@pytest.mark.parametrize(
    ("size", "setting", "expected"),
    [("standard", "faithful", "faithful"), ("tiny", "faithful", "faithful"),
     (Photo.Size.BUDGET, "faithful", None), ("standard", "", None)],
)
def test_the_worker_passes_the_target_from_the_presets_bytes_up_to_the_cap(user, settings, monkeypatch,
                                                                          size, setting, expected):
    settings.GALLERY_PRESET_TARGET = setting
    photo = pending_photo(user, size=size)
    options = codec_options_of_encode(photo, monkeypatch)
    assert options.get("target") == expected
    if expected:
        assert options["base_bytes"] == photo.target_bytes
        assert options["max_bytes"] == int(photo.target_bytes * settings.GALLERY_PRESET_TARGET_HEADROOM)
    else:
        assert options["max_bytes"] == photo.target_bytes and "base_bytes" not in options


def test_headroom_cap_bounds():
    assert sizes.target_cap(1000, 2.0) == 2000
    assert sizes.target_cap(1000, 1.0) == 1000
    assert sizes.target_cap(sizes.MAX_BUDGET_BYTES, 2.0) == sizes.MAX_BUDGET_BYTES


def test_real_encode_records_the_target_and_a_miss_is_never_silent(user, media_root, alice_client):
    """A real encode at the 'standard' preset (small image, effort fast): the file carries the
    target and whether the cap met it; a miss shows as a warning badge on the page and in the
    status JSON the upload row reads."""
    from gallery.worker import pipeline

    photo = pending_photo(user, width=96, height=64, staged=image_bytes(96, 64, "PNG"), size="standard")
    assert pipeline.encode(str(photo.pk)) == "ready"
    photo.refresh_from_db()
    info = photo.codec_info
    assert info["target"] == "faithful" and isinstance(info["target_met"], bool)
    assert photo.latent_bytes <= 2 * photo.target_bytes  # the headroom cap (shipped 2×)
    keys = [b.key for b in presenters.protection(photo).badges]
    assert ("target-missed" in keys) == (info["target_met"] is False)
    if info.get("fidelity_floor_met") is False:
        assert "below-floor" in keys
    url = reverse("gallery:status", args=[photo.pk])
    status = alice_client.get(url, HTTP_ACCEPT="application/json").json()
    assert [b["key"] for b in status["protection"]["badges"]] == keys


def test_a_miss_forced_by_a_tiny_cap_shows_the_badges(user, media_root, alice_client, settings):
    """A cap far too small for the floor: target_met false → 'Target not met' (and 'Below the
    fidelity floor' when the block floor is what failed), never a silent READY."""
    from gallery.worker import pipeline

    photo = pending_photo(user, width=128, height=96, staged=image_bytes(128, 96, "PNG"), size="tiny")
    Photo.objects.filter(pk=photo.pk).update(target_bytes=60)  # cap 120 with the shipped 2× headroom
    assert pipeline.encode(str(photo.pk)) == "ready"
    photo.refresh_from_db()
    info = photo.codec_info
    assert info["target"] == "faithful"
    keys = [b["key"] for b in alice_client.get(reverse("gallery:status", args=[photo.pk]),
                                                HTTP_ACCEPT="application/json").json()["protection"]["badges"]]
    assert info["target_met"] is False, info  # 120 bytes cannot hold the floor of a 128×96 picture
    assert "target-missed" in keys
    page = alice_client.get(reverse("gallery:detail", args=[photo.pk])).content.decode()
    assert "Target not met" in page and "badge-warn" in page
    assert ("below-floor" in keys) == (info.get("fidelity_floor_met") is False)


def test_upload_page_says_presets_are_caps(alice_client, settings):
    assert 'id="preset-target"' in alice_client.get(reverse("gallery:upload")).content.decode()
    settings.GALLERY_PRESET_TARGET = ""
    assert 'id="preset-target"' not in alice_client.get(reverse("gallery:upload")).content.decode()
