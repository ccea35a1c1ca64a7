"""Per-user upload quotas: photos per hour and original bytes per day.

Site-wide defaults come from settings (``GALLERY_QUOTA_UPLOADS_PER_HOUR``,
``GALLERY_QUOTA_BYTES_PER_DAY``; 0 = unlimited); staff set per-user overrides (``UserQuota`` rows,
in the admin). Staff accounts are not limited. Counted from the photos table (what was accepted),
so deleting a photo does not give its quota back within the window: the work was done.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Sum
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from .models import Photo, UserQuota


@dataclass(frozen=True)
class Limits:
    uploads_per_hour: int  # 0 = unlimited
    bytes_per_day: int  # 0 = unlimited


def limits_for(user) -> Limits:
    default = Limits(settings.GALLERY_QUOTA_UPLOADS_PER_HOUR, settings.GALLERY_QUOTA_BYTES_PER_DAY)
    if getattr(user, "is_staff", False):
        return Limits(0, 0)
    row = UserQuota.objects.filter(user_id=getattr(user, "pk", None)).first()
    if row is None:
        return default
    return Limits(
        default.uploads_per_hour if row.uploads_per_hour is None else row.uploads_per_hour,
        default.bytes_per_day if row.bytes_per_day is None else row.bytes_per_day,
    )


class Usage:
    """What a user has used in the windows; ``refusal`` is asked once per file of a request and
    ``add`` records each accepted one, so a batch is counted as it goes."""

    def __init__(self, user, now=None) -> None:
        now = now or timezone.now()
        self.limits = limits_for(user)
        photos = Photo.objects.filter(owner_id=user.pk)
        self.uploads_hour = photos.filter(created_at__gte=now - timedelta(hours=1)).count()
        day = photos.filter(created_at__gte=now - timedelta(days=1))
        self.bytes_day = day.aggregate(n=Sum("original_bytes"))["n"] or 0

    def refusal(self, nbytes: int) -> str:
        """A message for the user when one more file of ``nbytes`` is over a quota, else ""."""
        lim = self.limits
        if lim.uploads_per_hour and self.uploads_hour + 1 > lim.uploads_per_hour:
            return (
                f"Upload quota reached: {lim.uploads_per_hour} photos per hour. "
                "Try again later, or ask an administrator for a higher quota."
            )
        if lim.bytes_per_day and self.bytes_day + nbytes > lim.bytes_per_day:
            left = max(0, lim.bytes_per_day - self.bytes_day)
            return (
                f"Upload quota reached: {filesizeformat(lim.bytes_per_day)} per day "
                f"({filesizeformat(left)} left today). Try again tomorrow, or ask an administrator."
            )
        return ""

    def add(self, nbytes: int) -> None:
        self.uploads_hour += 1
        self.bytes_day += nbytes
