"""Encode leases (gallery/leases.py): claim, renewal, expiry, duplicates as no-ops, and the sweeper
re-queueing a dead worker's photo with the shipped defaults."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from gallery import leases, sweeper
from gallery.models import Photo, StagedUpload
from tests.gallery.factories import pending_photo

pytestmark = pytest.mark.django_db


def test_acquire_is_exclusive_until_the_lease_expires(user):
    photo = pending_photo(user)
    assert leases.acquire(photo.pk, "w1", seconds=30).ok
    second = leases.acquire(photo.pk, "w2", seconds=30)
    assert not second.ok and "w1" in second.reason
    assert leases.acquire(photo.pk, "w1", seconds=30).ok  # the holder may re-take its own
    Photo.objects.filter(pk=photo.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    taken = leases.acquire(photo.pk, "w2", seconds=30)
    assert taken.ok and taken.taken_over
    assert not leases.renew(photo.pk, "w1")  # the dead worker lost it
    assert leases.renew(photo.pk, "w2")
    leases.release(photo.pk, "w2")
    photo.refresh_from_db()
    assert photo.lease_owner == "" and photo.lease_expires_at is None


def test_a_retry_keeps_the_lease_over_its_countdown(user):
    photo = pending_photo(user)
    assert leases.acquire(photo.pk, "h:1:task-7").ok
    leases.hold_for_retry(photo.pk, "h:1:task-7", countdown=60)
    leases.release(photo.pk, "h:1:task-7")  # the task's finally: the retry lease stays
    photo.refresh_from_db()
    assert photo.lease_owner == "retry:task-7"
    assert photo.lease_expires_at > timezone.now() + timedelta(seconds=80)
    assert not leases.acquire(photo.pk, "h:2:other-task").ok  # the sweeper's message: a no-op
    assert leases.acquire(photo.pk, "h:2:task-7").ok  # the retry itself, on any worker


def test_acquire_on_ready_or_missing_photo_is_a_noop(user):
    photo = pending_photo(user, status=Photo.Status.READY)
    # ready with the original still staged: the comparisons are left to make, the task may run
    assert leases.acquire(photo.pk, "w1").ok
    leases.release(photo.pk, "w1")
    StagedUpload.objects.filter(photo=photo).delete()
    assert leases.acquire(photo.pk, "w1").reason == "ready"
    assert leases.acquire("00000000-0000-0000-0000-000000000000", "w1").reason == "gone"


def test_previous_run_length_of_a_dead_lease(user):
    now = timezone.now()
    photo = pending_photo(
        user,
        status=Photo.Status.ENCODING,
        encoding_started_at=now - timedelta(seconds=400),
        lease_owner="dead",
        lease_expires_at=now - timedelta(seconds=70),  # last beat 100 s before the expiry
    )
    claim = leases.acquire(photo.pk, "w2", seconds=30)
    assert claim.taken_over and claim.previous_ran == pytest.approx(300, abs=2)


@pytest.mark.django_db(transaction=True)
def test_heartbeat_renews_from_its_own_thread(user):
    photo = pending_photo(user)
    assert leases.acquire(photo.pk, "w1", seconds=2).ok
    with leases.Heartbeat(photo.pk, "w1", interval=0.2) as beat:
        time.sleep(1.0)
    assert beat.beats >= 2 and not beat.lost
    photo.refresh_from_db()
    assert photo.lease_expires_at > timezone.now()


@pytest.mark.django_db(transaction=True)
def test_heartbeat_stops_renewing_past_the_hard_time_limit(user, settings):
    """A threads-pool worker cannot kill a task past its time limit: the lease still runs out."""
    settings.GALLERY_LEASE_SECONDS = 0.5  # what each beat renews
    photo = pending_photo(user)
    assert leases.acquire(photo.pk, "w1", seconds=0.5).ok
    with leases.Heartbeat(photo.pk, "w1", interval=0.1, max_seconds=0.3) as beat:
        time.sleep(1.5)
    assert beat.expired and beat.beats <= 4
    photo.refresh_from_db()
    assert photo.lease_expires_at < timezone.now()  # free for the sweeper


def test_duplicate_delivery_is_a_noop(user, monkeypatch):
    """A second message for a photo another live worker holds never reaches the pipeline."""
    from gallery.worker import pipeline, tasks

    photo = pending_photo(user)
    leases.acquire(photo.pk, "other-worker", seconds=60)
    monkeypatch.setattr(pipeline, "encode", lambda pid, **_kw: pytest.fail("encoded twice"))
    assert tasks.encode_photo.apply(args=[str(photo.pk)]).get() == "noop"


def test_sweeper_requeues_an_expired_lease_even_with_the_message_held(user, monkeypatch, settings):
    """kill -9: the photo is `encoding`, its lease ran out, and the dead worker's message sits in the
    broker's unacked set (back only after the visibility timeout). The sweep re-queues it now."""
    now = timezone.now()
    dead = pending_photo(
        user,
        status=Photo.Status.ENCODING,
        encoding_started_at=now - timedelta(seconds=20),
        lease_owner="host:1:dead",
        lease_expires_at=now - timedelta(seconds=1),
    )
    alive = pending_photo(
        user,
        status=Photo.Status.ENCODING,
        encoding_started_at=now - timedelta(hours=2),
        lease_owner="host:2:alive",
        lease_expires_at=now + timedelta(seconds=25),
    )
    unacked = {str(dead.pk), str(alive.pk)}
    monkeypatch.setattr(
        sweeper, "queued_photo_ids", lambda timeout=2.0, held=True: set(unacked) if held else set()
    )
    queued: list[str] = []
    from gallery import services

    monkeypatch.setattr(services, "enqueue_encode", lambda pid: queued.append(str(pid)) or True)
    report = sweeper.requeue_stale()
    assert report.requeued == [str(dead.pk)] and queued == [str(dead.pk)]
    dead.refresh_from_db()
    assert dead.status == Photo.Status.PENDING and dead.lease_expires_at is None
    assert settings.GALLERY_LEASE_SECONDS + settings.GALLERY_SWEEP_INTERVAL <= 60  # shipped defaults


def test_sweeper_leaves_pending_photos_held_in_the_outbox(user, monkeypatch):
    from gallery import outbox, services

    photo = pending_photo(user)
    Photo.objects.filter(pk=photo.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    outbox.OutboxMessage.objects.create(
        task=outbox.ENCODE_TASK, args=[str(photo.pk)], photo_key=str(photo.pk)
    )
    monkeypatch.setattr(sweeper, "queued_photo_ids", lambda timeout=2.0, held=True: set())
    monkeypatch.setattr(services, "enqueue_encode", lambda pid: pytest.fail("re-queued a held photo"))
    assert sweeper.requeue_stale().requeued == []


def test_beat_sweep_collects_orphans_only_every_orphan_interval(monkeypatch, settings):
    from gallery.worker import tasks

    calls: list[bool] = []

    def fake_sweep(*, orphans=True, **_kw):
        calls.append(orphans)
        return sweeper.SweepReport()

    monkeypatch.setattr(sweeper, "sweep", fake_sweep)
    monkeypatch.setattr(tasks, "_last_orphan_pass", None)
    settings.GALLERY_SWEEP_ORPHAN_INTERVAL = 300
    tasks.sweep()
    tasks.sweep()
    settings.GALLERY_SWEEP_ORPHAN_INTERVAL = 0
    tasks.sweep()
    assert calls == [True, False, True]


def test_sweeper_requeues_a_ready_photo_whose_worker_died_making_comparisons(user, monkeypatch):
    now = timezone.now()
    photo = pending_photo(
        user,
        status=Photo.Status.READY,
        lease_owner="host:1:dead",
        lease_expires_at=now - timedelta(seconds=1),
    )
    monkeypatch.setattr(sweeper, "queued_photo_ids", lambda timeout=2.0, held=True: set())
    queued: list[str] = []
    from gallery import services

    monkeypatch.setattr(services, "enqueue_encode", lambda pid: queued.append(str(pid)) or True)
    assert sweeper.requeue_stale().requeued == [str(photo.pk)] == queued
    photo.refresh_from_db()
    assert photo.status == Photo.Status.READY and photo.lease_expires_at is None


def test_sweeper_requeues_a_ready_staged_photo_without_a_lease(user, monkeypatch):
    """READY, original still staged, no lease and no message anywhere (an earlier re-queue message
    was lost): the sweep re-queues it so the task makes the comparisons and deletes the original,
    and restarts its clock so the next sweep waits another ``pending_after``."""
    photo = pending_photo(user, status=Photo.Status.READY)
    old = timezone.now() - timedelta(hours=1)
    Photo.objects.filter(pk=photo.pk).update(updated_at=old)
    fresh = pending_photo(user, status=Photo.Status.READY)  # just READY: its task may still be coming
    queued_ids: set[str] = set()
    monkeypatch.setattr(sweeper, "queued_photo_ids", lambda timeout=2.0, held=True: set(queued_ids))
    queued: list[str] = []
    from gallery import services

    monkeypatch.setattr(services, "enqueue_encode", lambda pid: queued.append(str(pid)) or True)
    assert sweeper.requeue_stale().requeued == [str(photo.pk)] == queued
    photo.refresh_from_db()
    assert photo.status == Photo.Status.READY and photo.updated_at > old
    assert StagedUpload.objects.filter(photo=photo).exists()  # the worker deletes it, after comparisons
    assert sweeper.requeue_stale().requeued == []  # not again before pending_after
    # a message for it waits in the broker: left alone
    Photo.objects.filter(pk=photo.pk).update(updated_at=old)
    queued_ids.add(str(photo.pk))
    report = sweeper.requeue_stale()
    assert report.requeued == [] and report.still_queued == 1
    assert str(fresh.pk) not in queued


def test_comparisons_never_delete_the_original_of_a_photo_that_is_not_ready(user):
    from gallery.worker import pipeline

    photo = pending_photo(user, status=Photo.Status.ENCODING)
    pipeline.commit_comparisons(photo.pk, [], {})
    assert StagedUpload.objects.filter(photo=photo).exists()
