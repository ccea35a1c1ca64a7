"""Every decode a worker does (previews, full-size downloads) runs under the gallery's decode limits:
``GALLERY_MAX_PIXELS`` and ``GALLERY_DECODE_MAX_WORK`` (work units of codec/container/cost.py), and
the shipped default never refuses a file the site itself writes."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from codec import container
from codec.container import cost
from codec.container.header import Header
from codec.models.specs import get_spec
from gallery import previews
from gallery.worker.runtime import decode_limits

from .factories import ready_photo

CORPUS = Path(__file__).resolve().parents[1] / "codec" / "corpus"


def test_shipped_limit_admits_the_sites_largest_files(settings):
    """A 12 MP photo costs ≈ 17 units, a GALLERY_MAX_PIXELS (40 MP) one ≤ 63.5: all under 64."""
    limits = decode_limits()
    assert limits.max_work == settings.GALLERY_DECODE_MAX_WORK == 64
    assert limits.max_pixels == settings.GALLERY_MAX_PIXELS
    model_id = get_spec("taesd").model_id
    twelve = cost.check(Header(model_id=model_id, width=4000, height=3000), 225_000, limits)
    assert 15 < twelve.work < 20
    forty = cost.check(Header(model_id=model_id, width=7302, height=5477), 750_000, limits)
    assert forty.work < limits.max_work


def test_zero_means_no_work_limit(settings):
    settings.GALLERY_DECODE_MAX_WORK = 0
    assert decode_limits().max_work is None


@pytest.mark.django_db
def test_render_task_refuses_a_latent_over_the_work_limit(user, media_root, settings):
    """Our own flat 2048² file (3.3 units) with the limit lowered to 2: the render task refuses it
    from the header, before any decoder pass (a corrupted or forged row cannot hold a worker)."""
    from codec.errors import DecodeLimitError
    from gallery.worker.tasks import render_previews

    data = (CORPUS / "ok_flat_2048_encoder.bin").read_bytes()
    header, payload = container.parse(data)
    assert cost.estimate(header, len(payload)).work > 2
    photo = ready_photo(user, width=2048, height=2048)
    default_storage.delete(photo.latent.name)
    photo.latent.name = default_storage.save(photo.latent.name, ContentFile(data))
    photo.save()
    settings.GALLERY_DECODE_MAX_WORK = 2
    with pytest.raises(DecodeLimitError, match="max_work=2"):
        render_previews.apply(args=[str(photo.pk), ["thumb"]], throw=True).get()
    assert previews.lookup(photo, "thumb") is None
