"""Per-user upload quotas: photos per hour and original bytes per day.

Site-wide defaults come from settings (``GALLERY_QUOTA_UPLOADS_PER_HOUR``,
``GALLERY_QUOTA_BYTES_PER_DAY``; 0 = unlimited); staff set per-user overrides (``UserQuota`` rows,
in the admin). Staff accounts are not limited. Counted from the photos table (what was accepted),
so deleting a photo does not give its quota back within the window: the work was done.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
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


HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Meter:
    """One quota as the upload page shows it."""

    name: str  # "uploads" | "bytes"
    used: int
    limit: int  # 0 = unlimited
    window: str  # "hour" | "day"
    resets_at: datetime | None  # when used < limit again (None: not full, or unlimited)

    @property
    def unlimited(self) -> bool:
        return not self.limit

    @property
    def full(self) -> bool:
        return bool(self.limit) and self.used >= self.limit

    @property
    def percent(self) -> int:
        return 0 if not self.limit else min(100, round(100 * self.used / self.limit))

    def _amount(self, n: int) -> str:
        return filesizeformat(n) if self.name == "bytes" else f"{n} photo{'' if n == 1 else 's'}"

    @property
    def used_text(self) -> str:
        return self._amount(self.used)

    @property
    def limit_text(self) -> str:
        return "no limit" if self.unlimited else f"{self._amount(self.limit)} per {self.window}"

    @property
    def resets_text(self) -> str:
        return "" if self.resets_at is None else when_text(self.resets_at)


def when_text(at: datetime, now: datetime | None = None) -> str:
    """``20:14 UTC (in 12 min)``: the site's time zone, and how long from now."""
    now = now or timezone.now()
    local = timezone.localtime(at)
    minutes = max(1, math.ceil((at - now).total_seconds() / 60))
    wait = f"{minutes} min" if minutes < 90 else f"{minutes / 60:.1f} h"
    return f"{local:%H:%M} {local.tzname()} (in {wait})"


class Usage:
    """What a user has used in the (sliding) windows; ``refusal`` is asked once per file of a request
    and ``add`` records each accepted one, so a batch is counted as it goes. An upload stops counting
    one hour (photos) or one day (bytes) after it was accepted: that is when quota frees up again."""

    def __init__(self, user, now=None) -> None:
        self.now = now or timezone.now()
        self.limits = limits_for(user)
        rows = Photo.objects.filter(owner_id=user.pk, created_at__gte=self.now - DAY)
        # (accepted at, original bytes), oldest first: what frees up, and when
        self._day = sorted(rows.values_list("created_at", "original_bytes"))
        self.uploads_hour = sum(1 for at, _ in self._day if at >= self.now - HOUR)
        self.bytes_day = sum(n for _, n in self._day)

    def uploads_reset_at(self, extra: int = 1) -> datetime | None:
        """When ``extra`` more uploads fit in the hourly quota (None: they fit now, or never)."""
        limit = self.limits.uploads_per_hour
        if not limit or self.uploads_hour + extra <= limit or extra > limit:
            return None
        hour = [at for at, _ in self._day if at >= self.now - HOUR]
        return hour[self.uploads_hour + extra - limit - 1] + HOUR

    def bytes_reset_at(self, nbytes: int = 1) -> datetime | None:
        """When ``nbytes`` more fit in the daily quota (None: they fit now, or never: over the limit)."""
        limit = self.limits.bytes_per_day
        if not limit or self.bytes_day + nbytes <= limit or nbytes > limit:
            return None
        used = self.bytes_day
        for at, n in self._day:
            used -= n
            if used + nbytes <= limit:
                return at + DAY
        return None

    def meters(self) -> list[Meter]:
        """The quotas for the upload page (uploads this hour, bytes today)."""
        lim = self.limits
        return [
            Meter("uploads", self.uploads_hour, lim.uploads_per_hour, "hour", self.uploads_reset_at()),
            Meter("bytes", self.bytes_day, lim.bytes_per_day, "day", self.bytes_reset_at()),
        ]

    def refusal(self, nbytes: int) -> str:
        """A message for the user when one more file of ``nbytes`` is over a quota, else "".

        It names the limit, what was used, and when the user can upload again."""
        lim = self.limits
        if lim.uploads_per_hour and self.uploads_hour + 1 > lim.uploads_per_hour:
            at = self.uploads_reset_at()
            again = f"You can upload again at {when_text(at, self.now)}" if at else "Try again later"
            photos = f"{lim.uploads_per_hour} photo{'' if lim.uploads_per_hour == 1 else 's'}"
            return (
                f"Upload quota reached: {photos} per hour "
                f"({self.uploads_hour} in the last hour). {again}, or ask an administrator for a "
                "higher quota."
            )
        if lim.bytes_per_day and self.bytes_day + nbytes > lim.bytes_per_day:
            left = max(0, lim.bytes_per_day - self.bytes_day)
            if nbytes > lim.bytes_per_day:
                again = "This file alone is larger than the daily quota; ask an administrator"
            else:
                at = self.bytes_reset_at(nbytes)
                again = f"A file of this size fits again at {when_text(at, self.now)}" if at else "Try later"
            return (
                f"Upload quota reached: {filesizeformat(lim.bytes_per_day)} per day "
                f"({filesizeformat(left)} left, this file is {filesizeformat(nbytes)}). {again}, "
                "or ask an administrator for a higher quota."
            )
        return ""

    def add(self, nbytes: int) -> None:
        self.uploads_hour += 1
        self.bytes_day += nbytes
        self._day.append((self.now, nbytes))
