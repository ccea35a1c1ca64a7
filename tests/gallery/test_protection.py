"""Issue 12 in the gallery: never a silent READY. What ``codec.info`` says about faces, the fidelity
floor and the quality target shows as a badge on the photo page, the grid tile and in the status
JSON the upload rows read (factory rows with a stored codec_info; no worker needed)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from gallery import presenters
from gallery.models import Photo

from .factories import ready_photo

pytestmark = pytest.mark.django_db

FACES_CHANGED = {"faces_found": 2, "faces_kept": False, "worst_identity_distance": 0.523,
                 "worst_landmark_shift": 0.071, "protection_bytes": 410}
BELOW_FLOOR = {"fidelity_min": 0.31, "fidelity_floor": 0.4, "fidelity_floor_met": False, "guard": "none"}
TARGET_MISSED = {"target": "faithful", "target_met": False, "fidelity_floor_met": True}
FACES_KEPT = {"faces_found": 2, "faces_kept": True, "worst_identity_distance": 0.214,
              "worst_landmark_shift": 0.018, "faces_too_small": 1, "protection_bytes": 321,
              "text_cer": 0.05, "text_checked": True}


def _photo(user, info: dict, **kw) -> Photo:
    photo = ready_photo(user, **kw)
    Photo.objects.filter(pk=photo.pk).update(codec_info=info)
    photo.refresh_from_db()
    return photo


def _page(client, photo) -> str:
    return client.get(reverse("gallery:detail", args=[photo.pk])).content.decode()


def _status(client, photo) -> dict:
    return client.get(reverse("gallery:status", args=[photo.pk]), HTTP_ACCEPT="application/json").json()


def test_faces_changed_badge_everywhere(alice_client, user, media_root):
    photo = _photo(user, FACES_CHANGED, title="portrait.png")
    body = _page(alice_client, photo)
    assert 'id="protection"' in body and "Faces changed" in body
    assert "2 faces checked: at least one is lost in the decode or no longer looks like the same" in body
    assert "worst identity distance 0.52" in body and "landmark shift 0.07" in body
    assert "410 bytes spent on protection" in body
    badges = _status(alice_client, photo)["protection"]["badges"]
    expected = [("faces-changed", "Faces changed", True)]
    assert [(b["key"], b["label"], b["warning"]) for b in badges] == expected
    assert "0.52" in badges[0]["text"]
    grid = alice_client.get(reverse("gallery:list")).content.decode()
    assert 'data-role="protection"' in grid and ">Faces changed</span>" in grid


def test_below_floor_badge_with_the_numbers(alice_client, user, media_root):
    photo = _photo(user, BELOW_FLOOR)
    body = _page(alice_client, photo)
    assert "Below the fidelity floor" in body
    assert "the worst block scores 0.31 against a floor of 0.40" in body
    badges = _status(alice_client, photo)["protection"]["badges"]
    assert [b["key"] for b in badges] == ["below-floor"]


def test_below_floor_from_the_guard_fields_of_older_rows(alice_client, user, media_root):
    """Rows written before codec_info carried the keys still have the guard's own columns."""
    photo = _photo(user, {})
    Photo.objects.filter(pk=photo.pk).update(fidelity_floor_met=False, fidelity_min=0.2, fidelity_floor=0.4)
    photo.refresh_from_db()
    assert [b.key for b in presenters.protection(photo).badges] == ["below-floor"]
    assert "0.20 against a floor of 0.40" in presenters.protection(photo).badges[0].text


def test_target_not_met_says_the_cap(alice_client, user, media_root):
    photo = _photo(user, TARGET_MISSED, latent_bytes=700)
    body = _page(alice_client, photo)
    assert "Target not met" in body and f"cap of {photo.target_bytes:,} bytes" in body
    assert [b["key"] for b in _status(alice_client, photo)["protection"]["badges"]] == ["target-missed"]


def test_faces_kept_is_a_positive_note_not_a_warning(alice_client, user, media_root):
    photo = _photo(user, FACES_KEPT, latent_bytes=1000)
    body = _page(alice_client, photo)
    assert "2 faces checked: kept" in body and "badge-ok" in body and "badge-warn" not in body
    assert "1 face too small to check" in body and "OCR character error rate 5%" in body
    assert "321 bytes spent on protection" in body and "(32 % of the file)" in body
    badges = _status(alice_client, photo)["protection"]["badges"]
    assert [(b["key"], b["warning"]) for b in badges] == [("faces-kept", False)]
    grid = alice_client.get(reverse("gallery:list")).content.decode()
    assert 'data-role="protection"' not in grid  # tiles carry only warnings


def test_region_latents_are_named_on_the_photo_page(alice_client, user, media_root):
    info = {**FACES_KEPT, "guard": "regions", "regions": [{"box": [8, 8, 96, 96], "bytes": 512},
                                                        {"box": [200, 8, 64, 64], "bytes": 300}]}
    body = _page(alice_client, _photo(user, info, latent_bytes=2000))
    assert "2 face regions coded once more as small latents of their own (812 bytes)." in body


def test_a_residual_layer_is_named_on_the_photo_page(alice_client, user, media_root):
    info = {"residual_layer_bytes": 7195,
            "residual_layer": {"codec": "avif", "size": [512, 366], "bytes": 7194}}
    body = _page(alice_client, _photo(user, info, latent_bytes=11650))
    assert "7,195 bytes of it a residual layer (AVIF): what the latent decode still got wrong" in body
    assert "residual layer" not in _page(alice_client, _photo(user, {}, latent_bytes=11650))


def test_several_problems_show_several_badges(alice_client, user, media_root):
    photo = _photo(user, {**FACES_CHANGED, **BELOW_FLOOR, **TARGET_MISSED, "fidelity_floor_met": False})
    keys = [b["key"] for b in _status(alice_client, photo)["protection"]["badges"]]
    assert keys == ["faces-changed", "below-floor", "target-missed"]


@pytest.mark.parametrize(
    "info",
    [
        {},  # encoded before the identity check
        {"faces_found": 0, "text_checked": False},  # checked, no face: no badge (a note at most)
        {"faces_found": "2", "faces_kept": "no", "target": 5, "target_met": "false",
         "worst_identity_distance": "high", "protection_bytes": -3},  # malformed: shown as absent
    ],
)
def test_missing_or_odd_keys_show_nothing(alice_client, user, media_root, info):
    photo = _photo(user, info)
    body = _page(alice_client, photo)
    assert 'id="protection"' not in body and "Faces changed" not in body and "checked: kept" not in body
    assert _status(alice_client, photo)["protection"]["badges"] == []


def test_status_of_a_waiting_photo_has_no_protection_yet(alice_client, user, media_root):
    from .factories import pending_photo

    photo = pending_photo(user)
    assert _status(alice_client, photo)["protection"] is None


def test_error_text_is_redacted_on_the_page_and_in_the_status(alice_client, user, media_root):
    from .factories import pending_photo

    photo = pending_photo(
        user, status=Photo.Status.FAILED,
        error="[Errno 30] Read-only file system: '/data/media/latents/ab/cd.sdl'",
    )
    body = _page(alice_client, photo)
    assert "Read-only file system" in body and "/data/media" not in body
    error = _status(alice_client, photo)["error"]
    assert error.startswith("Read-only file system") and "/data" not in error and "cd.sdl" not in error


@pytest.mark.slow
def test_real_encode_of_a_face_at_a_too_small_cap_is_never_a_silent_ready(alice_client, user, media_root):
    """skimage's astronaut (one face) at a 250-byte cap with the 'faithful' target: the badges on
    the page follow what the real file says (~20 s of CPU: dlib checks every candidate)."""
    import numpy as np
    import torch
    from PIL import Image
    from skimage import data as skdata

    import codec
    from gallery.worker import pipeline

    from .factories import pending_photo

    torch.set_num_threads(2)
    rgb = np.asarray(Image.fromarray(skdata.astronaut()).resize((224, 224), Image.LANCZOS))
    data = codec.encode(rgb, max_bytes=250, effort="fast", target="faithful")
    meta = codec.info(data)
    photo = pending_photo(user, width=224, height=224, title="astronaut.png")
    pipeline.commit(photo.pk, "latents/astronaut.sdl", data, meta, [], {}, 1.0)
    photo.refresh_from_db()
    assert photo.status == Photo.Status.READY and photo.codec_info["faces_found"] == 1
    expected = []
    if meta["faces_kept"] is False:
        expected.append("faces-changed")
    if meta.get("fidelity_floor_met") is False:
        expected.append("below-floor")
    if meta["target_met"] is False:
        expected.append("target-missed")
    if meta["faces_kept"] is True:
        expected.append("faces-kept")
    assert "target-missed" in expected  # 250 bytes cannot keep a 224-px face photo (codec test)
    badges = _status(alice_client, photo)["protection"]["badges"]
    assert [b["key"] for b in badges] == expected
    body = _page(alice_client, photo)
    assert all(b["label"] in body for b in badges)
    if meta.get("worst_identity_distance") is not None:
        assert f"worst identity distance {meta['worst_identity_distance']:.2f}" in body


def test_small_faces_redrawn_show_the_faces_changed_badge(alice_client, user, media_root):
    """Only faces under 40 px, one of them redrawn (invented-detail ratio over the floor): a warning."""
    info = {"faces_found": 0, "faces_too_small": 2, "faces_kept": False, "worst_small_face_detail": 1.31}
    body = _page(alice_client, _photo(user, info))
    assert "Faces changed" in body
    assert "at least one of 2 faces under 40 px redrawn with features that are not there" in body
    assert "small-face invented detail 1.31 (floor 1.00)" in body
    info_ok = {"faces_found": 0, "faces_too_small": 1, "faces_kept": True, "worst_small_face_detail": 0.82}
    photo = _photo(user, info_ok)
    body = _page(alice_client, photo)
    assert "1 face under 40 px checked for invented detail only" in body and "worst 0.82" in body
    assert presenters.protection(photo).warnings == []


@pytest.mark.parametrize(("size", "px"), [((768, 512), 40), ((4000, 3000), 80)])
def test_a_photo_whose_small_faces_were_not_looked_for_says_so(alice_client, user, media_root, size, px):
    """The probe for faces under the detector's minimum runs only on small photos: elsewhere the page
    says how small a face had to be to go unchecked (absent faces_too_small ≠ none found)."""
    photo = _photo(user, {"faces_found": 0, "text_checked": False}, width=size[0], height=size[1])
    note = f"Faces smaller than {px} px were not looked for in a photo of this size."
    assert note in _page(alice_client, photo)
    probed = _photo(user, {"faces_found": 0, "faces_too_small": 0, "text_checked": False})
    assert "were not looked for" not in _page(alice_client, probed)


def test_the_second_look_after_upload_is_on_the_photo_page(alice_client, user, media_root):
    """A photo over 0.25 MP was probed for small faces after READY (gallery.worker.pipeline.second_look):
    the page says what that found instead of "not looked for"; a redrawn face the worker could not fix
    is a warning badge."""
    base = {"faces_found": 0, "text_checked": False}
    none = _photo(user, base, width=768, height=512)
    none.small_faces_audit = {"probed": True, "smallest_px": 20, "found": 0, "worst_detail": None,
                              "redrawn": False, "re_encoded": False, "seconds": 0.6}
    none.save()
    body = _page(alice_client, none)
    assert "A second look after upload searched for faces down to 20 px: none found." in body
    assert "were not looked for" not in body
    kept = _photo(user, base, width=768, height=512)
    kept.small_faces_audit = {"probed": True, "smallest_px": 20, "found": 2, "worst_detail": 0.71,
                              "redrawn": False, "re_encoded": False, "seconds": 0.6}
    kept.save()
    assert "2 faces found, none redrawn (worst invented detail 0.71, floor 1.00)" in _page(alice_client, kept)
    assert presenters.protection(kept).warnings == []
    stuck = _photo(user, base, width=768, height=512)
    stuck.small_faces_audit = {"probed": True, "smallest_px": 20, "found": 1, "worst_detail": 1.4,
                               "redrawn": True, "re_encoded": False, "seconds": 0.6}
    stuck.save()
    assert [b.key for b in presenters.protection(stuck).warnings] == ["faces-changed"]
    again = _photo(user, {**base, "faces_too_small": 1, "faces_kept": True, "worst_small_face_detail": 0.9},
                   width=768, height=512)
    again.small_faces_audit = {"probed": True, "smallest_px": 20, "found": 1, "worst_detail": 1.4,
                               "redrawn": True, "re_encoded": True, "seconds": 3.1}
    again.save()
    notes = presenters.protection(again).notes
    assert any("Coded a second time after upload" in n for n in notes)
    assert not any("second look after upload searched" in n for n in notes)


def test_patch_layer_seams_are_named_on_the_page(alice_client, user, media_root):
    """A file with a patch layer says how visible its copied windows are (``patch_seams``, issue 12)."""
    seamy = _photo(user, {"guard": "patches", "patch_layer_bytes": 1234, "patch_seams": 4.6})
    body = _page(alice_client, seamy)
    assert "1,234 bytes of blocks copied from the original" in body
    assert "seam score 4.6 (floor 3.5; its squares can show at 1:1)" in body
    clean = _page(alice_client, _photo(user, {"guard": "patches", "patch_layer_bytes": 80,
                                              "patch_seams": 1.2}))
    assert "seam score 1.2 (floor 3.5; hardly visible at 1:1)" in clean
    assert "seam score" not in _page(alice_client, _photo(user, {"guard": "none"}))
