"""Photos, their comparison files and the short-lived staged originals.

A photo's only permanent image data is its latent bitstream (``Photo.latent``). The uploaded
original lives in ``StagedUpload`` until the encode task has committed the latent, and the same
task deletes it. Comparison files (JPEG/WebP/AVIF at the latent's byte budget) are made at encode
time; previews are cache files derived from the latent (gallery/previews.py).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from . import sizes, storage


class Visibility(models.TextChoices):
    """Who may see a photo or an album (gallery/privacy.py applies it)."""

    PRIVATE = "private", "Only me"
    USERS = "users", "Signed-in users"
    LINK = "link", "Anyone with the link"


class Album(models.Model):
    """A named set of one owner's photos; its visibility extends to the photos in it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="albums")
    title = models.CharField(max_length=200)
    visibility = models.CharField(max_length=8, choices=Visibility.choices, default=Visibility.PRIVATE)
    share_token = models.CharField(max_length=64, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title


class Photo(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ENCODING = "encoding", "Encoding"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    class Size(models.TextChoices):
        # names, labels and bpp come from gallery/sizes.py (the one table)
        TINY = "tiny", sizes.label("tiny")
        SMALL = "small", sizes.label("small")
        STANDARD = "standard", sizes.label("standard")
        HIGH = "high", sizes.label("high")
        BUDGET = sizes.BUDGET, sizes.label(sizes.BUDGET)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="photos")
    title = models.CharField(max_length=200, blank=True, help_text="Display name from the upload.")
    # Privacy (gallery/privacy.py): private by default; a link share needs the current token.
    visibility = models.CharField(max_length=8, choices=Visibility.choices, default=Visibility.PRIVATE)
    share_token = models.CharField(max_length=64, blank=True, db_index=True)
    album = models.ForeignKey(Album, null=True, blank=True, on_delete=models.SET_NULL, related_name="photos")
    # What EXIF said (kept as data; the pixels reach the codec without it).
    taken_at = models.DateTimeField(null=True, blank=True, db_index=True)
    camera = models.CharField(max_length=200, blank=True)
    exif = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    error = models.TextField(blank=True)

    # Rate target chosen at upload.
    size = models.CharField(max_length=16, choices=Size.choices, default=Size.STANDARD)
    target_bpp = models.FloatField(null=True, blank=True)
    target_bytes = models.PositiveIntegerField()

    # Facts about the original (the original itself is never kept).
    original_bytes = models.PositiveBigIntegerField()
    original_format = models.CharField(max_length=16)
    original_width = models.PositiveIntegerField()
    original_height = models.PositiveIntegerField()

    # The latent: the only source of truth once ready.
    latent = models.FileField(max_length=255, blank=True)
    latent_bytes = models.PositiveIntegerField(null=True, blank=True)
    latent_bpp = models.FloatField(null=True, blank=True)
    latent_sha256 = models.CharField(max_length=64, blank=True)
    codec_model = models.CharField(max_length=32, blank=True)
    codec_info = models.JSONField(default=dict, blank=True)
    # Fidelity guard results (codec.info keys fidelity_min/_mean/_floor_met), when the codec wrote them.
    fidelity_min = models.FloatField(null=True, blank=True)
    fidelity_mean = models.FloatField(null=True, blank=True)
    fidelity_floor_met = models.BooleanField(null=True, blank=True)
    fidelity_floor = models.FloatField(null=True, blank=True, help_text="Worst-block floor of the guard.")
    # What the guard did ("none", "patches": blocks re-coded in a patch layer, "avif": whole image as AVIF)
    # and how many of the file's bytes that took (codec.info keys guard / guard_bytes).
    fidelity_guard = models.CharField(max_length=16, blank=True)
    guard_bytes = models.PositiveIntegerField(null=True, blank=True)
    # The worker's second look for faces too small for the encoder's own detection at this photo size
    # (codec.audit_small_faces, after READY: gallery.worker.pipeline.second_look): probed, smallest_px,
    # found, worst_detail, re_encoded, seconds. Null: not run (the encoder probed itself, or no faces).
    small_faces_audit = models.JSONField(null=True, blank=True)

    # Worker bookkeeping.
    attempts = models.PositiveSmallIntegerField(default=0)
    # The encode lease (gallery/leases.py): the worker encoding the photo renews it every few seconds;
    # an expired lease means that worker died, and the sweeper re-queues the photo.
    lease_owner = models.CharField(max_length=200, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # Cost control (gallery/admission.py): the effort of the next attempt (blank: GALLERY_ENCODE_EFFORT;
    # lowered after an attempt ran over the time or memory limit) and the estimate made at upload.
    encode_effort = models.CharField(max_length=16, blank=True)
    work_estimate = models.FloatField(null=True, blank=True, help_text="Estimated encode seconds.")
    encode_seconds = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    encoding_started_at = models.DateTimeField(null=True, blank=True)
    ready_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "updated_at"], name="photo_status_updated")]

    def __str__(self) -> str:
        return self.title or str(self.id)

    @property
    def pixels(self) -> int:
        return self.original_width * self.original_height

    @property
    def is_ready(self) -> bool:
        return self.status == self.Status.READY

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.READY, self.Status.FAILED)

    @property
    def original_bpp(self) -> float:
        return self.original_bytes * 8 / self.pixels

    @property
    def ratio(self) -> float | None:
        """How many times smaller than the original upload the latent is."""
        return self.original_bytes / self.latent_bytes if self.latent_bytes else None

    def bpp_of(self, nbytes: int) -> float:
        """Bits per pixel of ``nbytes`` measured against the original's pixel count."""
        return nbytes * 8 / self.pixels


class Comparison(models.Model):
    """A classical codec's file at (at most) the latent's byte budget, for the toggle on the photo page."""

    class Format(models.TextChoices):
        JPEG = "jpeg", "JPEG"
        WEBP = "webp", "WebP"
        AVIF = "avif", "AVIF"

    photo = models.ForeignKey(Photo, on_delete=models.CASCADE, related_name="comparisons")
    fmt = models.CharField(max_length=8, choices=Format.choices)
    file = models.FileField(max_length=255)
    bytes = models.PositiveIntegerField()
    quality = models.SmallIntegerField(null=True, blank=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    scale = models.FloatField(default=1.0, help_text="< 1 when the image was downscaled to fit the budget.")
    fits = models.BooleanField(default=True, help_text="Whether the file is within the budget.")
    note = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["photo", "fmt"]
        constraints = [models.UniqueConstraint(fields=["photo", "fmt"], name="one_comparison_per_format")]

    def __str__(self) -> str:
        return f"{self.get_fmt_display()} for {self.photo_id}"

    @property
    def downscaled(self) -> bool:
        return self.scale < 0.999

    @property
    def content_type(self) -> str:
        return storage.content_type(self.fmt)


class StagedUpload(models.Model):
    """The uploaded original, kept only until the encode task commits the latent (then deleted).

    A database row rather than a file: web and GPU workers may run on different hosts and share
    only the database, and staging is then atomic with creating the photo.
    """

    photo = models.OneToOneField(Photo, on_delete=models.CASCADE, primary_key=True, related_name="staged")
    data = models.BinaryField()
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"staged original of {self.photo_id} ({self.size} bytes)"


class OutboxMessage(models.Model):
    """A task message to publish, written in the same transaction as the change that needs it.

    The database is the source of truth: an upload commits its photo, staged original and this row
    together and answers at once. The row is published right after the commit (fast path) and, when
    the broker was unreachable, by the relay (``gallery/outbox.py``: beat task ``gallery.relay_outbox``
    and the sweeper) as soon as the broker is back. A published row is deleted.
    """

    task = models.CharField(max_length=100)
    args = models.JSONField(default=list)
    # Fair share (gallery/outbox.py): whose work the message is and which photo, so the relay can hold
    # a user's encodes over GALLERY_USER_MAX_IN_FLIGHT and interleave users round-robin.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE)
    photo_key = models.CharField(max_length=64, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    claimed_at = models.DateTimeField(null=True, blank=True, help_text="A relay is publishing it since.")
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.task}{tuple(self.args)!r}"


class UserQuota(models.Model):
    """Staff-set upload quotas of one user; a blank field falls back to the site-wide setting
    (``GALLERY_QUOTA_UPLOADS_PER_HOUR`` / ``GALLERY_QUOTA_BYTES_PER_DAY``; gallery/quotas.py)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quota")
    uploads_per_hour = models.PositiveIntegerField(null=True, blank=True)
    bytes_per_day = models.PositiveBigIntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return f"quota of {self.user}"
