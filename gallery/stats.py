"""Storage statistics for staff: what the latents save, from the database, storage and broker."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Avg, Count, Q, Sum
from django.db.models.functions import TruncDate

from codec.encoder.text import TEXT_CER_FLOOR  # torch-free (a constant next to the text check)

from . import charts, previews, queueing
from .models import Comparison, OutboxMessage, Photo, StagedUpload
from .redact import public_message

#: task name → what the statistics page calls that kind of work (others: "other")
TASK_KINDS = {
    "gallery.encode_photo": "encodes",
    "gallery.render_previews": "previews",
    "gallery.make_comparisons": "comparisons",
    "gallery.sweep": "maintenance",
    "gallery.relay_outbox": "maintenance",
}
#: at most this many waiting messages per queue are read to split the count by task
QUEUE_SCAN_LIMIT = 5000


@dataclass
class QueueSplit:
    """Messages waiting in the broker by kind of work (encodes vs preview renders vs maintenance)."""

    available: bool
    encodes: int = 0
    previews: int = 0
    comparisons: int = 0  # GALLERY_COMPARISONS_QUEUE (empty: they run inside the encode tasks)
    maintenance: int = 0
    other: int = 0
    unread: int = 0  # messages past QUEUE_SCAN_LIMIT (counted in no kind)
    error: str = ""

    @property
    def total(self) -> int:
        return self.encodes + self.previews + self.comparisons + self.maintenance + self.other + self.unread


def queue_split(timeout: float = 0.5) -> QueueSplit:
    """Read the waiting messages of the ``gpu``, ``maintenance`` (and comparisons) queues and count
    them by task name (Redis broker: the queues are lists of JSON messages whose headers name the task)."""
    from config.celery import app

    from .resilience import BROKER

    if BROKER.is_open:
        return QueueSplit(available=False, error=f"broker unreachable: {BROKER.last_error}")
    split = QueueSplit(available=True)
    queues = [q for q in dict.fromkeys([settings.GALLERY_GPU_QUEUE, settings.GALLERY_MAINTENANCE_QUEUE,
                                        settings.GALLERY_COMPARISONS_QUEUE]) if q]
    try:
        with app.connection_for_read(
            transport_options={"socket_connect_timeout": timeout, "socket_timeout": timeout * 4}
        ) as conn:
            conn.ensure_connection(max_retries=1)
            channel = conn.default_channel
            client = getattr(channel, "client", None)
            if client is None or not hasattr(channel, "_q_for_pri"):
                return QueueSplit(available=False, error="the split by task needs the Redis broker")
            keys = {channel._q_for_pri(q, pri) for q in queues for pri in channel.priority_steps}
            for key in sorted(keys):
                length = client.llen(key)
                raw = client.lrange(key, 0, QUEUE_SCAN_LIMIT - 1) if length else []
                split.unread += max(0, length - len(raw))
                for item in raw:
                    kind = TASK_KINDS.get(_task_name(item), "other")
                    setattr(split, kind, getattr(split, kind) + 1)
    except Exception as exc:
        return QueueSplit(available=False, error=f"broker unreachable: {exc}")
    return split


def _task_name(raw: bytes | str) -> str:
    try:
        message = json.loads(raw)
        return str((message.get("headers") or {}).get("task") or "")
    except (ValueError, AttributeError, TypeError):
        return ""


@dataclass
class Failure:
    """A failed photo as the statistics page lists it (the error without server paths)."""

    photo: Photo
    error: str


@dataclass
class FacesStats:
    """Issue 12 over ready photos whose file says the identity check ran (``faces_found`` present)."""

    checked: int  # ready photos with the identity check in their codec.info
    with_faces: int
    faces_kept: int  # photos with faces whose faces were all kept
    targeted: int  # photos encoded with a quality target (codec.info ``target``)
    target_met: int
    protection_bytes: int  # bytes the files spent protecting faces/text
    protected_photos: int  # photos with protection_bytes > 0
    #: the worker's second look for small faces after READY (Photo.small_faces_audit)
    second_looks: int = 0  # photos probed
    second_look_found: int = 0  # … where it found faces the encoder had not checked
    second_look_recoded: int = 0  # … coded again because one of them was redrawn
    #: photos whose file carries a text verdict (the encoder found readable lines: ``text_cer`` present)
    with_text: int = 0
    #: … whose text reads the same (worst line's CER under the floor, numbers and words unchanged)
    text_kept: int = 0

    @property
    def faces_share(self) -> float | None:
        return self.with_faces / self.checked if self.checked else None

    @property
    def kept_share(self) -> float | None:
        return self.faces_kept / self.with_faces if self.with_faces else None

    @property
    def target_share(self) -> float | None:
        return self.target_met / self.targeted if self.targeted else None

    @property
    def text_kept_share(self) -> float | None:
        return self.text_kept / self.with_text if self.with_text else None


FACES_KEYS = ("faces_found", "faces_kept", "target", "target_met", "protection_bytes", "text_cer",
              "text_numbers_kept", "text_words_kept")


def _int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def faces_stats(infos) -> FacesStats:
    """Count over an iterable of stored ``codec.info`` dicts (defensive: odd values count as absent)."""
    out = FacesStats(0, 0, 0, 0, 0, 0, 0)
    for info in infos:
        if not isinstance(info, dict):
            continue
        found = _int(info.get("faces_found"))
        if found is not None:
            out.checked += 1
            if found > 0:
                out.with_faces += 1
                out.faces_kept += info.get("faces_kept") is True
        if isinstance(info.get("target"), str) and isinstance(info.get("target_met"), bool):
            out.targeted += 1
            out.target_met += info["target_met"]
        spent = _int(info.get("protection_bytes"))
        if spent:
            out.protection_bytes += spent
            out.protected_photos += 1
        cer = info.get("text_cer")
        if isinstance(cer, (int, float)) and not isinstance(cer, bool) and math.isfinite(cer) and cer >= 0:
            out.with_text += 1
            out.text_kept += (cer <= TEXT_CER_FLOOR + 1e-6 and info.get("text_numbers_kept") is not False
                              and info.get("text_words_kept") is not False)
    return out


def _with_second_looks(faces: FacesStats, audits: list[dict]) -> FacesStats:
    faces.second_looks = len(audits)
    faces.second_look_found = sum(1 for a in audits if _int(a.get("found")))
    faces.second_look_recoded = sum(1 for a in audits if a.get("re_encoded") is True)
    return faces


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
    latents_downscaled: int  # ready photos whose latent codes a smaller version (coded < original size)
    mean_bpp: float | None
    mean_encode_seconds: float | None
    fidelity_measured: int
    fidelity_below_floor: int
    guard_bytes: int  # bytes the fidelity guard spent (patch/region layers + files stored as AVIF)
    guard_patched: int  # photos with a patch layer
    guard_regions: int  # photos whose faces are region latents (small latents of their own)
    guard_avif: int  # photos the guard stored as AVIF
    histogram: charts.Histogram
    growth: charts.LineChart
    failures: list[Failure]
    queue: queueing.QueueSnapshot
    queue_split: QueueSplit
    faces: FacesStats
    waiting: SetupWaiting  # photos held back by a worker's setup problem, and why
    outbox_pending: int  # task messages not yet published (the broker was unreachable)
    residual_photos: int = 0  # ready photos whose file carries a residual layer (issue 14)
    residual_bytes: int = 0  # bytes of those layers (part of latent_bytes)
    stored_total: int = field(init=False)

    def __post_init__(self) -> None:
        self.stored_total = self.latent_bytes + self.comparison_bytes + self.preview_bytes + self.staged_bytes

    @property
    def stored_ratio(self) -> float | None:
        """Every photo's original bytes / everything on disk (latents, comparisons, preview cache,
        staged originals): what keeping the originals would take against what the gallery takes."""
        return self.original_bytes / self.stored_total if self.stored_total else None

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
        regions=Count("pk", filter=Q(fidelity_guard="regions")),
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
    downscaled = 0
    infos = []  # one pass over the stored codec.info of the ready photos
    audits = []
    residual_photos = residual_bytes = 0
    for w, h, info, audit in ready.values_list("original_width", "original_height", "codec_info",
                                               "small_faces_audit").iterator():
        info = info if isinstance(info, dict) else {}
        infos.append({k: info.get(k) for k in FACES_KEYS})
        spent = _int(info.get("residual_layer_bytes"))
        if spent:
            residual_photos, residual_bytes = residual_photos + 1, residual_bytes + spent
        if isinstance(audit, dict) and audit.get("probed") is True:
            audits.append(audit)
        cw, ch = _int(info.get("coded_width")), _int(info.get("coded_height"))
        if cw and ch and (cw, ch) != (w, h) and cw <= w and ch <= h:
            downscaled += 1
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
        latents_downscaled=downscaled,
        mean_bpp=agg["bpp"],
        mean_encode_seconds=agg["secs"],
        fidelity_measured=agg["measured"],
        fidelity_below_floor=agg["below"],
        guard_bytes=agg["guard_bytes"] or 0,
        guard_patched=agg["patched"],
        guard_regions=agg["regions"],
        guard_avif=agg["avif"],
        histogram=charts.histogram(list(ready.values_list("latent_bytes", flat=True))),
        growth=charts.growth([(r["day"], r["o"] or 0, r["lat"] or 0) for r in daily if r["day"]]),
        failures=[
            Failure(p, public_message(p.error))
            for p in Photo.objects.filter(status=Photo.Status.FAILED)
            .select_related("owner")
            .order_by("-updated_at")[:10]
        ],
        queue=queueing.snapshot()
        if with_queue
        else queueing.QueueSnapshot(available=False, error="not queried"),
        queue_split=queue_split() if with_queue else QueueSplit(available=False, error="not queried"),
        faces=_with_second_looks(faces_stats(infos), audits),
        waiting=setup_waiting(),
        outbox_pending=OutboxMessage.objects.count(),
        residual_photos=residual_photos,
        residual_bytes=residual_bytes,
    )
