"""Cost control (issue 10): the work estimate and admission, quotas, the fair-share relay order."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from gallery import admission, outbox, quotas, services
from gallery.models import OutboxMessage, Photo, UserQuota
from tests.gallery.factories import image_bytes, pending_photo


def zeros_png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("L", (width, height), 0).save(out, "PNG", optimize=True)
    return out.getvalue()


# --- the estimate and admission ---------------------------------------------------------------


def test_estimate_grows_with_pixels_and_effort():
    small = admission.estimate_seconds(1000, 1000, "fast", "taesd")
    big = admission.estimate_seconds(2000, 2000, "fast", "taesd")
    assert big > 3.5 * (small - admission.OVERHEAD_SECONDS)
    assert admission.estimate_seconds(1000, 1000, "default") > small
    assert admission.estimate_seconds(1000, 1000, "max") > admission.estimate_seconds(1000, 1000, "default")


def test_effort_ladder():
    assert admission.cheaper_effort("max") == "default"
    assert admission.cheaper_effort("default") == "fast"
    assert admission.cheaper_effort("fast") is None


def test_admission_keeps_steps_down_then_refuses(settings):
    settings.GALLERY_ENCODE_EFFORT = "default"
    per_fast = admission.SECONDS_PER_MP["fast"]
    per_default = admission.SECONDS_PER_MP["default"]
    cap = admission.OVERHEAD_SECONDS + 2.0 * per_default  # exactly 2 MP at default
    assert admission.admit(1000, 1000, cap=cap) == admission.Admission(
        True, "", admission.estimate_seconds(1000, 1000, "default")
    )
    mp = (cap - admission.OVERHEAD_SECONDS) / per_fast * 0.99  # fits only at fast
    side = int((mp * 1e6) ** 0.5)
    stepped = admission.admit(side, side, cap=cap)
    assert stepped.ok and stepped.effort == "fast"
    refused = admission.admit(6300, 6300, cap=cap)  # the bomb size
    assert not refused.ok
    assert "6300×6300" in refused.message and "39.7 MP" in refused.message and "Downscale" in refused.message
    assert admission.admit(6300, 6300, cap=0).ok  # 0 = no cap


def test_the_bomb_is_refused_at_upload_with_a_per_file_message(user, settings):
    """The issue's bomb (PNG of zeros, 6300×6300) is refused with the shipped work cap, before
    anything is staged; a normal photo in the same request is accepted."""
    settings.GALLERY_MAX_ENCODE_SECONDS = 1800  # the shipped default
    bomb = SimpleUploadedFile("bomb.png", zeros_png(6300, 6300))
    ok = SimpleUploadedFile("ok.png", image_bytes(96, 64, "PNG"))
    bomb_result, ok_result = services.accept_uploads(user, [bomb, ok], "standard")
    assert not bomb_result.ok and "would take about" in bomb_result.error
    assert ok_result.ok and ok_result.photo.work_estimate > 0
    assert Photo.objects.count() == 1


def test_upload_records_the_stepped_down_effort(user, settings):
    settings.GALLERY_ENCODE_EFFORT = "default"
    est_default = admission.estimate_seconds(96, 64, "default")
    settings.GALLERY_MAX_ENCODE_SECONDS = est_default - 0.001  # fits only at fast
    files = [SimpleUploadedFile("a.png", image_bytes(96, 64, "PNG"))]
    [result] = services.accept_uploads(user, files, "standard")
    assert result.ok and result.photo.encode_effort == "fast"


# --- quotas -----------------------------------------------------------------------------------


def test_uploads_per_hour_quota(user, settings):
    settings.GALLERY_QUOTA_UPLOADS_PER_HOUR = 2
    files = [SimpleUploadedFile(f"{i}.png", image_bytes(40, 30, "PNG")) for i in range(3)]
    results = services.accept_uploads(user, files, "standard")
    assert [r.ok for r in results] == [True, True, False]
    assert "2 photos per hour" in results[2].error
    # an hour later the window is free again
    Photo.objects.update(created_at=timezone.now() - timedelta(hours=2))
    assert quotas.Usage(user).refusal(100) == ""


def test_bytes_per_day_quota_and_per_user_override(user, other_user, staff_user, settings):
    settings.GALLERY_QUOTA_BYTES_PER_DAY = 1000
    pending_photo(user, staged=b"x" * 900)  # 900 original bytes today
    assert "per day" in quotas.Usage(user).refusal(200)
    assert quotas.Usage(user).refusal(50) == ""
    UserQuota.objects.create(user=user, bytes_per_day=10_000)
    assert quotas.Usage(user).refusal(200) == ""
    UserQuota.objects.create(user=other_user, uploads_per_hour=0, bytes_per_day=None)
    assert quotas.limits_for(other_user) == quotas.Limits(0, 1000)
    assert quotas.limits_for(staff_user) == quotas.Limits(0, 0)


# --- fair share -------------------------------------------------------------------------------


def msg(pk: int, user_id: int | None, minute: int, task: str = outbox.ENCODE_TASK) -> OutboxMessage:
    when = timezone.now().replace(microsecond=0) + timedelta(minutes=minute)
    return OutboxMessage(pk=pk, task=task, user_id=user_id, created_at=when)


def test_fair_order_interleaves_users_and_caps_in_flight():
    batch = [msg(i, 1, i) for i in range(1, 11)]  # user 1 uploaded 10 photos first
    single = [msg(20, 2, 30)]  # user 2's one photo, last
    other = [msg(30, None, 40, task="gallery.render_previews")]
    order = outbox.fair_order(batch + single + other, {1: 0, 2: 0}, cap=2)
    assert [m.pk for m in order] == [30, 1, 20, 2]
    # user 1 already has two in flight: only user 2 goes
    assert [m.pk for m in outbox.fair_order(batch + single, {1: 2, 2: 0}, cap=2)] == [20]
    # no cap: everything, still round-robin
    assert [m.pk for m in outbox.fair_order(batch[:3] + single, {}, cap=0)] == [1, 20, 2, 3]


@pytest.mark.django_db(transaction=True)
def test_relay_holds_a_batch_over_the_share(user, other_user, settings, monkeypatch):
    settings.GALLERY_USER_MAX_IN_FLIGHT = 2
    published: list[str] = []
    from gallery import queueing

    monkeypatch.setattr(queueing, "publish_by_name", lambda name, *args: published.append(args[0]) or True)
    batch = [SimpleUploadedFile(f"{i}.png", image_bytes(40, 30, "PNG")) for i in range(5)]
    services.accept_uploads(user, batch, "standard")
    assert len(published) == 2  # the rest of the batch waits in the outbox
    one = [SimpleUploadedFile("s.png", image_bytes(40, 30, "PNG"))]
    [single] = services.accept_uploads(other_user, one, "standard")
    assert published[-1] == str(single.photo.pk)  # not behind the batch
    assert OutboxMessage.objects.filter(user=user).count() == 3
    # one of the batch finishes: the next relay run publishes exactly one more
    Photo.objects.filter(pk=published[0]).update(status=Photo.Status.READY)
    outbox.relay()
    assert len(published) == 4 and OutboxMessage.objects.filter(user=user).count() == 2


# --- limits per attempt -------------------------------------------------------------------------


def test_memory_limit_steps_down_then_fails_keeping_the_original(user, settings, monkeypatch):
    """An allocation refused under the pool process's limit (MemoryError): retried once at effort
    fast (a fresh message), then failed with a clear message; the staged original stays."""
    from gallery.worker import pipeline, tasks

    settings.GALLERY_ENCODE_EFFORT = "default"
    settings.GALLERY_TASK_MEMORY_LIMIT = 2**30
    photo = pending_photo(user)
    efforts: list[str] = []

    def encode(pid, *, effort=None):
        efforts.append(effort)  # passed explicitly: the setting is never swapped
        raise MemoryError("cannot allocate")

    queued: list[str] = []
    monkeypatch.setattr(pipeline, "encode", encode)
    monkeypatch.setattr(services, "enqueue_encode", lambda pid: queued.append(str(pid)) or True)
    assert tasks.encode_photo.apply(args=[str(photo.pk)]).get() == "retrying"
    photo.refresh_from_db()
    assert photo.encode_effort == "fast" and photo.status == Photo.Status.PENDING
    assert queued == [str(photo.pk)]
    assert tasks.encode_photo.apply(args=[str(photo.pk)]).get() == "failed"
    photo.refresh_from_db()
    assert efforts == ["default", "fast"] and settings.GALLERY_ENCODE_EFFORT == "default"
    assert photo.status == Photo.Status.FAILED and "more memory" in photo.error and "1.0 GiB" in photo.error
    assert hasattr(photo, "staged")


def test_the_photos_own_effort_reaches_the_codec_without_touching_settings(user, settings, monkeypatch):
    """The step-down effort is an argument of the encode, not a swapped global setting."""
    import codec
    from gallery.worker import pipeline, tasks

    settings.GALLERY_ENCODE_EFFORT = "default"
    photo = pending_photo(user, encode_effort="fast")
    seen: list[tuple[str, str]] = []

    def encode_result(rgb, **kw):
        seen.append((kw["effort"], settings.GALLERY_ENCODE_EFFORT))
        raise codec.InputError("stop here")

    monkeypatch.setattr(codec, "encode_result", encode_result)
    assert tasks.encode_photo.apply(args=[str(photo.pk)]).get() == "failed"
    assert seen == [("fast", "default")]
    assert tasks.effort_for(str(photo.pk)) == "fast"
    other = pending_photo(user)
    assert tasks.effort_for(str(other.pk)) == "default"
    with pytest.raises(pipeline.PermanentFailure):
        pipeline.encode(str(other.pk), effort="max")
    assert seen[-1] == ("max", "default")


def test_upload_page_shows_quota_use_and_a_refusal_says_when_it_resets(user, client, password, settings):
    settings.GALLERY_QUOTA_UPLOADS_PER_HOUR = 2
    settings.GALLERY_QUOTA_BYTES_PER_DAY = 10_000
    first = pending_photo(user, staged=b"x" * 1500)
    Photo.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(minutes=50))
    pending_photo(user, staged=b"y" * 1500)
    client.login(username=user.username, password=password)
    page = client.get("/upload/").content.decode()
    assert "Uploads in the last hour" in page and "<strong>2 photos</strong> of 2 photos per hour" in page
    assert "<strong>2.9\xa0KB</strong> of 9.8\xa0KB per day" in page
    assert "Full — frees up at" in page and "(in 10 min)" in page  # the 50-minute-old upload leaves
    usage = quotas.Usage(user)
    message = usage.refusal(100)
    assert "2 photos per hour" in message and "upload again at" in message and "(in 10 min)" in message
    assert usage.uploads_reset_at() == Photo.objects.get(pk=first.pk).created_at + timedelta(hours=1)
    # bytes: a file that fits only once the first upload is a day old
    settings.GALLERY_QUOTA_UPLOADS_PER_HOUR = 0
    usage = quotas.Usage(user)
    message = usage.refusal(8000)
    assert "9.8\xa0KB per day" in message and "fits again at" in message and "(in 23.2 h)" in message
    assert "larger than the daily quota" in usage.refusal(20_000)
    assert usage.refusal(1000) == ""


def test_staff_see_no_limit(staff_user, client, password):
    client.login(username=staff_user.username, password=password)
    page = client.get("/upload/").content.decode()
    assert page.count("of no limit") == 2 and "<meter" not in page


def test_upload_row_gets_the_quota_refusal_with_its_reset_time(alice_client, user, settings):
    """The upload page's JSON (one row per file): the refused file names the limit and when it frees."""
    from django.core.files.base import ContentFile
    from django.urls import reverse

    settings.GALLERY_QUOTA_UPLOADS_PER_HOUR = 1
    files = [ContentFile(image_bytes(40, 30, "PNG"), name=f"{i}.png") for i in range(2)]
    response = alice_client.post(reverse("gallery:upload"), {"size": "tiny", "files": files},
                                 HTTP_ACCEPT="application/json")
    first, second = response.json()["results"]
    assert first["ok"] and not second["ok"]
    assert "1 photo per hour" in second["error"] and "You can upload again at" in second["error"]
    assert "(in 60 min)" in second["error"]  # the file just accepted counts for an hour
