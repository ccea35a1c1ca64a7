"""Issue 12 in the worker: the second look for small faces after READY (`pipeline.second_look`).

Over 0.25 MP the encoder does not probe for faces under 40 px (0.6 s on the critical path of a
768×512 photo); the worker does it after READY, records what it found, and codes the photo again with
the probe on when a small face was redrawn — new latent, new previews, old previews gone, comparisons
at the new file's bytes. Real codec, real face models, real storage."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.test import override_settings
from PIL import Image

from gallery import previews
from gallery.models import Photo, StagedUpload
from gallery.presenters import protection
from gallery.previews import backends
from gallery.worker import pipeline

from .factories import pending_photo

pytestmark = pytest.mark.django_db

W, H = 768, 384


def _wide_photo_with_a_small_face() -> bytes:
    from skimage import data

    small = Image.fromarray(data.astronaut()).resize((123, 123), Image.Resampling.LANCZOS)
    ramp = np.linspace(60, 200, W)[None, :, None]
    canvas = np.repeat(ramp, H, axis=0).repeat(3, axis=2).astype(np.uint8)
    canvas[150:273, 300:423] = np.asarray(small)  # a 22-px face, found only at upsample 2
    buf = io.BytesIO()
    Image.fromarray(canvas).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def no_render_queue(monkeypatch):
    monkeypatch.setattr(backends.CeleryBackend, "schedule", lambda self, photo, names: True)


def _photo(user):
    photo = pending_photo(user, width=W, height=H, staged=_wide_photo_with_a_small_face(), size="standard",
                          encode_effort="fast")
    Photo.objects.filter(pk=photo.pk).update(target_bytes=2500, target_bpp=2500 * 8 / (W * H))
    return photo


def test_second_look_records_what_it_found(user, media_root, no_render_queue) -> None:
    photo = _photo(user)
    assert pipeline.encode(str(photo.pk)) == "ready"
    photo.refresh_from_db()
    audit = photo.small_faces_audit
    assert audit["probed"] is True and audit["smallest_px"] == 20 and audit["found"] == 1
    assert audit["redrawn"] is (audit["worst_detail"] > 1.0)
    assert audit["re_encoded"] is audit["redrawn"]  # a redrawn face → coded again with the probe on
    assert ("faces_too_small" in photo.codec_info) is audit["re_encoded"]
    if not audit["re_encoded"]:
        notes = protection(photo).notes
        assert any("searched for faces down to 20 px: 1 face found, none redrawn" in n for n in notes)
    assert not StagedUpload.objects.filter(photo=photo).exists()  # comparisons done, original gone


def test_a_redrawn_small_face_gets_the_photo_coded_again(user, media_root, no_render_queue, monkeypatch):
    """Any invented detail counts as redrawn here (floor −1), so the re-encode path runs: the file, its
    row and its previews are replaced together, and the comparisons use the new file's bytes."""
    import codec
    from codec.encoder import faces

    monkeypatch.setattr(faces, "SMALL_DETAIL_FLOOR", -1.0)
    photo = _photo(user)
    first = {}
    real_replace = pipeline.replace_latent

    def observe(photo_id, data, meta, reconstruction):
        p = Photo.objects.get(pk=photo_id)
        first.update(sha=p.latent_sha256, thumb=previews.lookup(p, "thumb").name, status=p.status)
        return real_replace(photo_id, data, meta, reconstruction)

    budgets = []
    real_compare = pipeline.make_comparisons
    monkeypatch.setattr(pipeline, "replace_latent", observe)
    monkeypatch.setattr(pipeline, "make_comparisons",
                        lambda rgb, b: budgets.append(b) or real_compare(rgb, b))
    assert pipeline.encode(str(photo.pk)) == "ready"
    photo.refresh_from_db()
    assert first["status"] == Photo.Status.READY  # the first file was READY before the second look
    assert photo.small_faces_audit["re_encoded"] is True and photo.small_faces_audit["redrawn"] is True
    assert photo.latent_sha256 != first["sha"]
    with default_storage.open(photo.latent.name) as fh:
        data = fh.read()
    meta = codec.info(data)
    assert meta["faces_too_small"] == 1 and photo.codec_info["faces_too_small"] == 1
    assert photo.latent_bytes == len(data) and budgets == [len(data)]
    thumb = previews.lookup(photo, "thumb")
    assert thumb is not None and thumb.name != first["thumb"]
    assert not default_storage.exists(first["thumb"])  # the old previews went
    with default_storage.open(thumb.name) as fh:  # the new previews show the new file
        assert fh.read() == previews.get_spec("thumb").render(codec.decode(data))
    assert any("Coded a second time" in n for n in protection(photo).notes)


@override_settings(GALLERY_SMALL_FACE_AUDIT=False)
def test_second_look_can_be_switched_off(user, media_root, no_render_queue) -> None:
    photo = _photo(user)
    assert pipeline.encode(str(photo.pk)) == "ready"
    photo.refresh_from_db()
    assert photo.small_faces_audit is None
    assert any("Faces smaller than 40 px were not looked for" in n for n in protection(photo).notes)
