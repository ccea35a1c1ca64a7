"""Storage statistics for staff: what the latents save, from the database, storage and broker."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Avg, Count, Q, Sum
from django.db.models.functions import TruncDate

from . import charts, previews, queueing
from .models import Comparison, OutboxMessage, Photo, StagedUpload


@dataclass
class FormatTotal:
    fmt: str
    label: str
    count: int
    bytes: int
    downscaled: int


@dataclass
class SetupWaiting:
    """Photos a worker put back to ``pending`` because it could not encode (weights, settings, memory)."""

    count: int
    reason: str  # the latest such message, without the common prefix ("" when none)


def setup_waiting() -> SetupWaiting:
    from .worker.pipeline import WAITING_PREFIX

    waiting = Photo.objects.filter(status=Photo.Status.PENDING, error__startswith=WAITING_PREFIX)
    latest = waiting.order_by("-updated_at").values_list("error", flat=True).first() or ""
    return SetupWaiting(count=waiting.count(), reason=latest.removeprefix(WAITING_PREFIX))


@dataclass
class StorageStats:
    by_status: dict[str, int]
    total_photos: int
    original_bytes: int  # every upload ever accepted (originals themselves are not kept)
    ready_original_bytes: int
    latent_bytes: int
    comparison_bytes: int
    comparisons: list[FormatTotal]
    preview_files: int
    preview_bytes: int
    staged_count: int
    staged_bytes: int
    ratio: float | None  # originals / latents over ready photos
    mean_bpp: float | None
    mean_encode_seconds: float | None
    fidelity_measured: int
    fidelity_below_floor: int
    guard_bytes: int  # bytes the fidelity guard spent (patch layers + files stored as AVIF)
    guard_patched: int  # photos with a patch layer
    guard_avif: int  # photos the guard stored as AVIF
    histogram: charts.Histogram
    growth: charts.LineChart
    failures: list[Photo]
    queue: queueing.QueueSnapshot
    waiting: SetupWaiting  # photos held back by a worker's setup problem, and why
    outbox_pending: int  # task messages not yet published (the broker was unreachable)
    stored_total: int = field(init=False)

    def __post_init__(self) -> None:
        self.stored_total = self.latent_bytes + self.comparison_bytes + self.preview_bytes + self.staged_bytes

    @property
    def fidelity_below_share(self) -> float | None:
        return self.fidelity_below_floor / self.fidelity_measured if self.fidelity_measured else None


def collect(*, with_queue: bool = True) -> StorageStats:
    counts = dict(
        Photo.objects.order_by().values("status").annotate(n=Count("pk")).values_list("status", "n")
    )
    by_status = {s.value: counts.get(s.value, 0) for s in Photo.Status}
    ready = Photo.objects.filter(status=Photo.Status.READY)
    agg_all = Photo.objects.aggregate(orig=Sum("original_bytes"))
    agg = ready.aggregate(
        orig=Sum("original_bytes"),
        latent=Sum("latent_bytes"),
        bpp=Avg("latent_bpp"),
        secs=Avg("encode_seconds"),
        measured=Count("pk", filter=Q(fidelity_floor_met__isnull=False)),
        below=Count("pk", filter=Q(fidelity_floor_met=False)),
        guard_bytes=Sum("guard_bytes"),
        patched=Count("pk", filter=Q(fidelity_guard="patches")),
        avif=Count("pk", filter=Q(fidelity_guard="avif")),
    )
    fmt_rows = (
        Comparison.objects.values("fmt")
        .annotate(n=Count("pk"), b=Sum("bytes"), down=Count("pk", filter=Q(scale__lt=0.999)))
        .order_by("fmt")
    )
    labels = dict(Comparison.Format.choices)
    comparisons = [
        FormatTotal(r["fmt"], labels.get(r["fmt"], r["fmt"]), r["n"], r["b"] or 0, r["down"])
        for r in fmt_rows
    ]
    staged = StagedUpload.objects.aggregate(n=Count("pk"), b=Sum("size"))
    preview_files, preview_bytes = previews.disk_usage()
    daily = (
        ready.annotate(day=TruncDate("ready_at"))
        .values("day")
        .annotate(o=Sum("original_bytes"), lat=Sum("latent_bytes"))
        .order_by("day")
    )
    latent_total = agg["latent"] or 0
    return StorageStats(
        by_status=by_status,
        total_photos=sum(by_status.values()),
        original_bytes=agg_all["orig"] or 0,
        ready_original_bytes=agg["orig"] or 0,
        latent_bytes=latent_total,
        comparison_bytes=sum(c.bytes for c in comparisons),
        comparisons=comparisons,
        preview_files=preview_files,
        preview_bytes=preview_bytes,
        staged_count=staged["n"] or 0,
        staged_bytes=staged["b"] or 0,
        ratio=(agg["orig"] / latent_total) if latent_total else None,
        mean_bpp=agg["bpp"],
        mean_encode_seconds=agg["secs"],
        fidelity_measured=agg["measured"],
        fidelity_below_floor=agg["below"],
        guard_bytes=agg["guard_bytes"] or 0,
        guard_patched=agg["patched"],
        guard_avif=agg["avif"],
        histogram=charts.histogram(list(ready.values_list("latent_bytes", flat=True))),
        growth=charts.growth([(r["day"], r["o"] or 0, r["lat"] or 0) for r in daily if r["day"]]),
        failures=list(
            Photo.objects.filter(status=Photo.Status.FAILED)
            .select_related("owner")
            .order_by("-updated_at")[:10]
        ),
        queue=queueing.snapshot()
        if with_queue
        else queueing.QueueSnapshot(available=False, error="not queried"),
        waiting=setup_waiting(),
        outbox_pending=OutboxMessage.objects.count(),
    )
