"""Issue 13 item 2 in the worker: previews from the encoder's own reconstruction (no render task),
comparisons after READY, the staged original deleted only once they are stored (or given up)."""

from __future__ import annotations

import io

import pytest
from django.core.files.storage import default_storage
from PIL import Image

from gallery import previews
from gallery.models import Photo, StagedUpload
from gallery.previews import backends
from gallery.tasks import encode_photo
from gallery.worker import pipeline

from .factories import image_bytes, pending_photo

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(monkeypatch):
    """What would have been published to the render queue."""
    calls: list[tuple[str, list[str]]] = []

    def record(self, photo, spec_names):
        calls.append((str(photo.pk), sorted(spec_names)))
        return True

    monkeypatch.setattr(backends.CeleryBackend, "schedule", record)
    return calls


def test_previews_at_ready_without_a_render_task_and_comparisons_after(user, media_root, queued, monkeypatch):
    import codec

    photo = pending_photo(user, width=160, height=120, staged=image_bytes(160, 120, "PNG"))
    seen = {}
    real = pipeline.make_comparisons

    def observing(rgb, budget):
        # the comparisons run after READY: thumbnail there, original still staged, no comparison yet
        p = Photo.objects.get(pk=photo.pk)
        seen.update(status=p.status, thumb=previews.lookup(p, "thumb") is not None,
                    display=previews.lookup(p, "display") is not None,
                    staged=StagedUpload.objects.filter(photo=p).exists(), comparisons=p.comparisons.count())
        return real(rgb, budget)

    monkeypatch.setattr(pipeline, "make_comparisons", observing)
    assert encode_photo.apply(args=[str(photo.pk)]).get() == "ready"
    assert seen == dict(status=Photo.Status.READY, thumb=True, display=True, staged=True, comparisons=0)
    assert queued == []  # no render task for the eager specs
    photo.refresh_from_db()
    assert photo.comparisons.filter(fmt="jpeg").exists()
    assert not StagedUpload.objects.filter(photo=photo).exists()  # deleted after the comparisons
    # the previews are the decoder's picture of the stored latent, exactly as a render task would make
    with default_storage.open(photo.latent.name) as fh:
        decoded = codec.decode(fh.read())
    thumb = previews.lookup(photo, "thumb")
    with default_storage.open(thumb.name) as fh:
        assert fh.read() == previews.get_spec("thumb").render(decoded)
    with default_storage.open(previews.lookup(photo, "display").name) as fh:
        assert Image.open(io.BytesIO(fh.read())).size == (160, 120)


def test_crash_before_comparisons_keeps_the_original_and_the_redelivery_finishes(user, media_root, queued,
                                                                                 monkeypatch):
    photo = pending_photo(user, width=128, height=96, staged=image_bytes(128, 96, "PNG"))
    real = pipeline.make_comparisons

    def crash(rgb, budget):
        raise OSError("storage went away")

    monkeypatch.setattr(pipeline, "make_comparisons", crash)
    with pytest.raises(OSError):
        pipeline.encode(str(photo.pk))
    photo.refresh_from_db()
    assert photo.status == Photo.Status.READY and previews.lookup(photo, "thumb") is not None
    assert StagedUpload.objects.filter(photo=photo).exists() and photo.comparisons.count() == 0
    assert pipeline.comparisons_pending(str(photo.pk))
    attempts = photo.attempts

    monkeypatch.setattr(pipeline, "make_comparisons", real)
    assert pipeline.encode(str(photo.pk)) == "ready"  # the redelivered task: comparisons only
    photo.refresh_from_db()
    assert photo.attempts == attempts and photo.comparisons.filter(fmt="jpeg").exists()
    assert not StagedUpload.objects.filter(photo=photo).exists()
    assert pipeline.encode(str(photo.pk)) == "noop"


def test_comparisons_given_up_drop_the_original_but_never_the_photo(user, media_root):
    from .factories import ready_photo

    photo = ready_photo(user, comparisons=())
    StagedUpload.objects.create(photo=photo, data=b"png", size=3, sha256="0" * 64)
    pipeline.mark_failed(photo.pk, "Encoding failed after 6 attempts", keep_staged=True)  # retries spent
    photo.refresh_from_db()
    assert photo.status == Photo.Status.READY
    assert not StagedUpload.objects.filter(photo=photo).exists()
