"""The sweeper (gallery/sweeper.py): which photos it re-queues, that it never duplicates a queued
task, that a lost task really ends as a ready photo, and the orphaned-file collection."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone

from gallery import services, storage, sweeper
from gallery.models import Photo, StagedUpload
from tests.gallery.factories import pending_photo, ready_photo

pytestmark = pytest.mark.django_db

HOUR = timedelta(hours=1)


def age(photo: Photo, *, updated: timedelta | None = None, started: timedelta | None = None) -> None:
    now = timezone.now()
    fields = {}
    if updated is not None:
        fields["updated_at"] = now - updated
    if started is not None:
        fields["encoding_started_at"] = now - started
    Photo.objects.filter(pk=photo.pk).update(**fields)


def queue_ids(app) -> list[str]:
    with app.connection_for_read() as conn:
        raw = conn.default_channel.client.lrange("gpu", 0, -1)
    import json

    return [sweeper._photo_id_of(json.loads(m)) for m in raw]


def test_stale_selection(user):
    old_pending = pending_photo(user, title="old-pending")
    fresh_pending = pending_photo(user, title="fresh")
    old_encoding = pending_photo(user, title="old-encoding", status=Photo.Status.ENCODING)
    busy_encoding = pending_photo(user, title="busy", status=Photo.Status.ENCODING)
    lost_original = pending_photo(user, title="no-original")
    failed = pending_photo(user, title="failed", status=Photo.Status.FAILED)
    age(old_pending, updated=HOUR)
    age(old_encoding, updated=HOUR, started=HOUR)
    age(busy_encoding, updated=HOUR, started=timedelta(seconds=30))
    age(lost_original, updated=HOUR)
    age(failed, updated=HOUR)
    StagedUpload.objects.filter(photo=lost_original).delete()
    stale = set(sweeper.stale_photos(pending_after=600, encoding_after=1200).values_list("title", flat=True))
    assert stale == {"old-pending", "old-encoding"}
    assert fresh_pending.title not in stale


def test_requeues_lost_tasks_but_never_duplicates_queued_ones(user, purged_queue):
    queued = pending_photo(user, title="queued")
    lost = pending_photo(user, title="lost", status=Photo.Status.ENCODING)
    assert services.enqueue_encode(queued.pk)  # its message is in the broker
    age(queued, updated=HOUR)
    age(lost, updated=HOUR, started=HOUR)

    report = sweeper.sweep(pending_after=60, encoding_after=60)
    assert report.broker_checked
    assert report.requeued == [str(lost.pk)] and report.still_queued == 1
    assert sorted(queue_ids(purged_queue)) == sorted([str(queued.pk), str(lost.pk)])
    lost.refresh_from_db()
    assert lost.status == Photo.Status.PENDING and timezone.now() - lost.updated_at < timedelta(seconds=30)

    # A second sweep right away does nothing: both are queued (and the re-queued one is fresh again).
    again = sweeper.sweep(pending_after=60, encoding_after=60)
    assert again.requeued == [] and len(queue_ids(purged_queue)) == 2


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_lost_task_ends_ready_after_a_sweep(user, gpu_worker, purged_queue, media_root):
    """The broker forgot the task (purged, as by an empty Redis restart): sweeper + worker recover."""
    photo = pending_photo(user)
    age(photo, updated=HOUR)
    report = sweeper.sweep(pending_after=60)
    assert report.requeued == [str(photo.pk)]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        photo.refresh_from_db()
        if photo.status in (Photo.Status.READY, Photo.Status.FAILED):
            break
        time.sleep(0.25)
    assert photo.status == Photo.Status.READY, photo.error
    # the staged original goes with the ready commit, or right after the first previews are written
    deadline = time.monotonic() + 60
    while StagedUpload.objects.filter(photo=photo).exists() and time.monotonic() < deadline:
        time.sleep(0.25)
    assert not StagedUpload.objects.filter(photo=photo).exists()


def test_orphaned_files_are_collected(user, media_root):
    keep = ready_photo(user)
    gone_id = "0b5e6b7c-1111-4222-8333-444455556666"
    orphans = [
        default_storage.save(storage.latent_name(gone_id), ContentFile(b"x")),
        default_storage.save(storage.comparison_name(gone_id, "jpeg"), ContentFile(b"x")),
        default_storage.save(f"previews/{gone_id}/thumb-0123456789ab.webp", ContentFile(b"x")),
    ]
    young = default_storage.save(
        storage.latent_name("0b5e6b7c-1111-4222-8333-000000000000"), ContentFile(b"y")
    )
    unrelated = default_storage.save("latents/README.txt", ContentFile(b"z"))
    past = time.time() - 7200
    for name in [*orphans, keep.latent.name, unrelated]:
        os.utime(default_storage.path(name), (past, past))

    deleted = sweeper.collect_orphans(older_than=3600)
    assert sorted(deleted) == sorted(orphans)
    assert not any(default_storage.exists(n) for n in orphans)
    assert default_storage.exists(young) and default_storage.exists(unrelated)
    assert default_storage.exists(keep.latent.name)
    assert all(default_storage.exists(c.file.name) for c in keep.comparisons.all())


def test_sweep_removes_empty_photo_folders(user, media_root):
    keep = ready_photo(user)
    gone_id = "0b5e6b7c-1111-4222-8333-444455556666"
    for folder in ("comparisons", "previews"):
        (media_root / folder / gone_id).mkdir(parents=True, exist_ok=True)
    (media_root / "comparisons" / "not-a-photo").mkdir()
    sweeper.sweep(pending_after=3600, encoding_after=3600, orphans_after=3600)
    assert not (media_root / "comparisons" / gone_id).exists()
    assert not (media_root / "previews" / gone_id).exists()
    assert (media_root / "comparisons" / "not-a-photo").is_dir()  # only photo folders are ours
    assert (media_root / "comparisons" / str(keep.pk)).is_dir()  # not empty: kept


def test_management_command(user, purged_queue, capsys):
    photo = pending_photo(user)
    age(photo, updated=HOUR)
    call_command("sweep", "--pending-after", "60", "--dry-run")
    out = capsys.readouterr().out
    assert f"would re-queue {photo.pk}" in out and queue_ids(purged_queue) == []
    call_command("sweep", "--pending-after", "60")
    assert f"re-queued {photo.pk}" in capsys.readouterr().out
    assert queue_ids(purged_queue) == [str(photo.pk)]


def test_beat_schedule_runs_the_sweeper():
    from django.conf import settings

    from config.celery import app
    from gallery.tasks import sweep

    entry = settings.CELERY_BEAT_SCHEDULE["gallery-sweep"]
    assert entry["task"] == sweep.name == "gallery.sweep"
    assert app.conf.beat_schedule["gallery-sweep"]["schedule"] == settings.GALLERY_SWEEP_INTERVAL


def test_attempt_cap_ends_a_crash_loop(user, settings):
    """A photo whose encode was interrupted too often is failed (original kept), not retried for ever."""
    from gallery.tasks import encode_photo

    settings.GALLERY_MAX_ATTEMPTS = 3
    photo = pending_photo(user, attempts=3, status=Photo.Status.ENCODING)
    assert encode_photo.apply(args=[str(photo.pk)]).get() == "noop"
    photo.refresh_from_db()
    assert photo.status == Photo.Status.FAILED and "3 times" in photo.error
    assert StagedUpload.objects.filter(photo=photo).exists()
