"""Django system checks of the gallery's settings and environment (``manage.py check``, start-up).

Every ``GALLERY_*`` setting the code reads is validated here, so a typo stops ``migrate``/
``runserver``/``manage.py check`` with a clear message instead of failing photo by photo later:
effort, model, byte/pixel limits, comparison formats, preview strategy/format, sweeper times; plus
the media storage being writable and the codec's weight files resolving.

The weight check is a Warning in the web process (it never loads the model) and an Error in a worker:
``worker_errors()`` runs the same checks with worker severity, and the worker's start-up step
(``gallery.worker.runtime.RefuseWithoutModel``) refuses to consume when it returns any.

Nothing here imports torch (``codec.options``, ``codec.models`` specs, ``codec.resources`` and
``codec.baselines`` are torch-free).
"""

from __future__ import annotations

import math
import os
import tempfile
from contextlib import contextmanager

from django.conf import settings
from django.core import checks

TAG = "gallery"

_role = {"worker": False}


@contextmanager
def as_worker():
    """Run checks with worker severity (weights missing = Error)."""
    old = _role["worker"]
    _role["worker"] = True
    try:
        yield
    finally:
        _role["worker"] = old


def _by_role(number: int, msg: str, hint: str) -> checks.CheckMessage:
    """A problem that stops a worker (Error ``gallery.E0nn``) but only degrades the web (Warning ``W0nn``)."""
    if _role["worker"]:
        return checks.Error(msg, hint=hint, id=f"gallery.E{number:03d}")
    return checks.Warning(msg, hint=hint, id=f"gallery.W{number:03d}")


def _int_setting(name: str, *, minimum: int, maximum: int | None = None, hint: str = "") -> list:
    value = getattr(settings, name)
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
    ok = ok and (maximum is None or value <= maximum)
    if ok:
        return []
    bound = f"≥ {minimum}" + (f" and ≤ {maximum}" if maximum is not None else "")
    message = f"{name} must be an integer {bound}, not {value!r}."
    return [checks.Error(message, hint=hint or None, id="gallery.E003")]


@checks.register(TAG)
def check_codec_options(app_configs=None, **kwargs) -> list:
    """Effort and model name: the values the worker passes to ``codec.encode``."""
    import codec
    from codec import options
    from codec.models import get_spec

    errors = []
    try:
        options.check_effort(settings.GALLERY_ENCODE_EFFORT)
    except codec.CodecError as exc:
        errors.append(checks.Error(f"GALLERY_ENCODE_EFFORT: {exc}", id="gallery.E001"))
    try:
        get_spec(settings.GALLERY_CODEC_MODEL)
    except codec.CodecError as exc:
        errors.append(checks.Error(f"GALLERY_CODEC_MODEL: {exc}", id="gallery.E002"))
    from .sizes import PRESET_TARGETS

    target = settings.GALLERY_PRESET_TARGET
    if target not in ("", None, *PRESET_TARGETS):
        errors.append(checks.Error(
            f"GALLERY_PRESET_TARGET must be empty or one of {', '.join(PRESET_TARGETS)}, not {target!r}.",
            hint="Empty: the presets are plain byte budgets; \"faithful\": the smallest file that keeps the "
            "block floor and every face, with the preset's bytes as the cap.",
            id="gallery.E019"))
    headroom = getattr(settings, "GALLERY_PRESET_TARGET_HEADROOM", 2.0)
    if isinstance(headroom, bool) or not isinstance(headroom, (int, float)) or not 1.0 <= headroom <= 8.0:
        errors.append(checks.Error(
            f"GALLERY_PRESET_TARGET_HEADROOM must be a number from 1 to 8, not {headroom!r}.",
            hint="How far a preset photo may grow beyond the preset's bytes to keep its faces and "
            "structure (1 = never).",
            id="gallery.E020"))
    return errors


@checks.register(TAG)
def check_limits(app_configs=None, **kwargs) -> list:
    """Byte/pixel limits, budgets, retry and sweeper times."""
    from codec import options

    errors = []
    errors += _int_setting("GALLERY_MAX_UPLOAD_BYTES", minimum=1)
    errors += _int_setting(
        "GALLERY_MAX_PIXELS",
        minimum=1,
        maximum=options.DEFAULT_MAX_PIXELS,
        hint="The codec reads at most this many pixels (codec.options.DEFAULT_MAX_PIXELS).",
    )
    errors += _int_setting("GALLERY_MIN_SIDE", minimum=1)
    errors += _int_setting("GALLERY_MAX_FILES_PER_REQUEST", minimum=1)
    errors += _int_setting("GALLERY_MAX_REQUEST_BYTES", minimum=0, hint="0 means no cap.")
    errors += _int_setting("GALLERY_PAGE_SIZE", minimum=1)
    errors += _int_setting("GALLERY_TASK_MAX_RETRIES", minimum=0)
    errors += _int_setting("GALLERY_MAX_ATTEMPTS", minimum=1)
    errors += _int_setting("GALLERY_TORCH_THREADS", minimum=1)
    for name in (
        "GALLERY_SWEEP_INTERVAL",
        "GALLERY_SWEEP_PENDING_AFTER",
        "GALLERY_SWEEP_ENCODING_AFTER",
        "GALLERY_SWEEP_ORPHAN_AFTER",
    ):
        errors += _int_setting(name, minimum=1)
    if not errors and settings.GALLERY_MAX_REQUEST_BYTES and (
        settings.GALLERY_MAX_REQUEST_BYTES < settings.GALLERY_MAX_UPLOAD_BYTES
    ):
        errors.append(
            checks.Error(
                "GALLERY_MAX_REQUEST_BYTES is smaller than GALLERY_MAX_UPLOAD_BYTES: no file of the "
                "allowed size could ever be uploaded.",
                id="gallery.E004",
            )
        )
    return errors


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def largest_own_decode_work() -> float:
    """Decode work (codec/container/cost.py units) of the largest file the site itself writes: a
    ``GALLERY_MAX_PIXELS`` image at scale 1 (the rate control up-scales only pictures ≤ 3 MP), over a
    range of aspect ratios (the tile overlap differs), plus the largest patch-layer atlas the guard
    may add (its atlas is at most twice the display pixels, priced like Pillow pixels)."""
    from codec.container import cost
    from codec.container.header import Header
    from codec.models.specs import get_spec

    spec = get_spec(settings.GALLERY_CODEC_MODEL)
    pixels = settings.GALLERY_MAX_PIXELS
    worst = 0.0
    for aspect in (1.0, 4 / 3, 3 / 2, 16 / 9, 2.0, 3.0, 4.0, 6.0):
        width = min(16383, int(math.sqrt(pixels * aspect)))
        height = max(1, min(16383, pixels // width))
        work = cost.estimate(Header(model_id=spec.model_id, width=width, height=height), 1).work
        worst = max(worst, work + 2 * width * height / 1e6 * cost.WORK_PER_IMAGE_MP)
    return worst


@checks.register(TAG)
def check_cost_settings(app_configs=None, **kwargs) -> list:
    """Cost control (issue 10): the work cap, the admission table, the task time and memory limits,
    and the decode work limit of the worker's decodes (which must never refuse the site's own files)."""
    from .admission import EFFORT_LADDER, OVERHEAD_SECONDS

    errors = []
    errors += _int_setting(
        "GALLERY_MAX_ENCODE_SECONDS", minimum=0,
        hint="Estimated encode seconds one photo may cost (gallery/admission.py); 0 means no cap.")
    cap = settings.GALLERY_MAX_ENCODE_SECONDS
    if not errors and 0 < cap <= OVERHEAD_SECONDS:
        errors.append(checks.Error(
            f"GALLERY_MAX_ENCODE_SECONDS={cap} is not above the fixed cost of one encode "
            f"({OVERHEAD_SECONDS:g} s): every upload would be refused.",
            hint="Use a number of seconds (the shipped default is 1800), or 0 for no cap.",
            id="gallery.E015"))

    table = settings.GALLERY_ADMISSION_SECONDS_PER_MP
    bad_table = not isinstance(table, dict) or any(
        k not in EFFORT_LADDER or not _is_number(v) or v <= 0 for k, v in table.items())
    if bad_table:
        errors.append(checks.Error(
            f"GALLERY_ADMISSION_SECONDS_PER_MP must map efforts ({', '.join(EFFORT_LADDER)}) to positive "
            f"seconds per megapixel, not {table!r}.",
            hint="Leave it empty ({}) to use the measured table in gallery/admission.py (SECONDS_PER_MP).",
            id="gallery.E016"))

    for name in ("GALLERY_TASK_SOFT_TIME_LIMIT", "GALLERY_TASK_TIME_LIMIT"):
        errors += _int_setting(name, minimum=1, hint="Seconds of one encode attempt (Celery time limits).")
    soft, hard = settings.GALLERY_TASK_SOFT_TIME_LIMIT, settings.GALLERY_TASK_TIME_LIMIT
    if _is_number(soft) and _is_number(hard) and hard <= soft:
        errors.append(checks.Error(
            f"GALLERY_TASK_TIME_LIMIT ({hard}) must be above GALLERY_TASK_SOFT_TIME_LIMIT ({soft}).",
            hint="The soft limit lets the task step down to a cheaper effort; the hard one kills the "
            "process. Leave the hard limit unset (soft + 120 s).",
            id="gallery.E018"))

    memory = settings.GALLERY_TASK_MEMORY_LIMIT
    if not (isinstance(memory, int) and not isinstance(memory, bool) and (memory == 0 or memory >= 2**31)):
        errors.append(checks.Error(
            f"GALLERY_TASK_MEMORY_LIMIT must be 0 (no limit) or at least 2 GiB (2147483648 bytes), "
            f"not {memory!r}.",
            hint="The value is in bytes (e.g. 8589934592 for 8 GiB); a warm taesd worker alone maps "
            "~1.3 GB, so a smaller address-space limit fails every encode.",
            id="gallery.E017"))

    work = settings.GALLERY_DECODE_MAX_WORK
    if not _is_number(work) or work < 0:
        errors.append(checks.Error(
            f"GALLERY_DECODE_MAX_WORK must be a number ≥ 0 (decode work units), not {work!r}.",
            hint="1 unit ≈ one megapixel through the decoder ≈ 6 s on 2 cores (codec/container/cost.py); "
            "0 means no limit. The shipped default is 64.",
            id="gallery.E013"))
    elif work and not any(e.id == "gallery.E003" for e in check_limits()):
        try:
            needed = largest_own_decode_work()
        except Exception:  # an unknown model is reported by check_codec_options
            needed = 0.0
        if work < needed:
            errors.append(checks.Error(
                f"GALLERY_DECODE_MAX_WORK={work:g} would refuse the site's own files: a "
                f"{settings.GALLERY_MAX_PIXELS / 1e6:.0f} MP photo (GALLERY_MAX_PIXELS) costs up to "
                f"{needed:.1f} work units to decode.",
                hint=f"Raise it to at least {math.ceil(needed)} (or lower GALLERY_MAX_PIXELS), or 0 for "
                "no limit.",
                id="gallery.E014"))
    return errors


@checks.register(TAG)
def check_formats(app_configs=None, **kwargs) -> list:
    """Comparison formats, their quality floor, the preview strategy and format."""
    from codec import baselines

    from . import storage
    from .models import Comparison
    from .previews.strategies import STRATEGIES

    errors = []
    formats = settings.GALLERY_COMPARISON_FORMATS
    allowed = [f for f in Comparison.Format.values if f in baselines.FORMATS]
    bad = [f for f in formats if f not in allowed]
    if bad or len(set(formats)) != len(formats):
        errors.append(
            checks.Error(
                f"GALLERY_COMPARISON_FORMATS must list distinct formats out of {', '.join(allowed)}; "
                f"got {', '.join(map(repr, formats)) or 'nothing'}.",
                id="gallery.E005",
            )
        )
    q = settings.GALLERY_COMPARISON_MIN_QUALITY
    if q is not None and not (isinstance(q, int) and 0 <= q <= 100):
        errors.append(
            checks.Error(
                f"GALLERY_COMPARISON_MIN_QUALITY must be empty or 0..100, not {q!r}.", id="gallery.E006"
            )
        )
    if settings.GALLERY_PREVIEW_STRATEGY not in STRATEGIES:
        errors.append(
            checks.Error(
                f"GALLERY_PREVIEW_STRATEGY must be one of {', '.join(STRATEGIES)}, "
                f"not {settings.GALLERY_PREVIEW_STRATEGY!r}.",
                id="gallery.E007",
            )
        )
    preview_format = str(settings.GALLERY_PREVIEW_FORMAT).lower()
    if preview_format not in ("webp", "jpeg", "png"):
        errors.append(
            checks.Error(
                f"GALLERY_PREVIEW_FORMAT must be WEBP, JPEG or PNG, not {settings.GALLERY_PREVIEW_FORMAT!r}.",
                id="gallery.E008",
            )
        )
    else:
        storage.extension(preview_format)  # the storage layer knows every accepted format
    return errors


@checks.register(TAG)
def check_media_writable(app_configs=None, **kwargs) -> list:
    """A local media folder must exist (or be creatable) and accept a file (issue 10 item 8).

    Workers write every latent, comparison and preview there: Error for a worker (it refuses to
    start instead of repeating whole encodes that cannot be stored). The web process only reads and
    deletes there (uploads are staged in the database): Warning. Object storages are not probed here
    (a network call; ``/readyz`` and ``manage.py health`` do that).
    """
    from django.core.files.storage import default_storage

    from . import storage

    if not storage.is_local():
        return []
    root = default_storage.path("")
    try:
        os.makedirs(root, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".write-check-"):
            pass
    except OSError as exc:
        return [
            _by_role(
                10,
                f"Media storage is not writable: {exc.strerror or exc} ({root}).",
                "Give the web and worker processes write access to MEDIA_ROOT, or point MEDIA_ROOT "
                "(or AWS_STORAGE_BUCKET_NAME) somewhere writable. Latents could not be stored.",
            )
        ]
    return []


@checks.register(TAG)
def check_codec_weights(app_configs=None, **kwargs) -> list:
    """The configured model's weight files resolve (sha256-checked). Web: Warning; worker: Error."""
    import codec

    from .worker.runtime import weight_problems

    try:
        problems = weight_problems(settings.GALLERY_CODEC_MODEL, fetch=False)
    except codec.CodecError:  # an unknown model is reported once, by check_codec_options
        return []
    return [
        _by_role(
            11,
            f"The codec cannot load its model here: {p}",
            "Workers refuse to start until this is fixed; uploads wait (originals kept). "
            "`python -m codec fetch-weights` places the files.",
        )
        for p in problems
    ]


@checks.register(TAG)
def check_waiting_photos(app_configs=None, **kwargs) -> list:
    """Say why photos wait: those a worker put back because of a setup problem, with the reason."""
    from django.db import DatabaseError

    from . import stats

    try:
        waiting = stats.setup_waiting()
    except DatabaseError:  # not migrated yet, or no database: nothing to report
        return []
    if not waiting.count:
        return []
    return [
        checks.Warning(
            f"{waiting.count} photo(s) wait for a working worker: {waiting.reason}",
            hint="Fix the worker's setup (see the worker's log); the photos are queued again by the "
            "sweeper and keep their originals meanwhile.",
            id="gallery.W012",
        )
    ]


@checks.register(TAG)
def check_text_ocr(app_configs=None, **kwargs) -> list:
    """The text check (``GALLERY_CHECK_TEXT``) needs Tesseract with its English model: say when a photo's
    text will not be checked (a warning, never an error: the encode works without it). Only where
    photos can be encoded (torch installed): the web image has neither torch nor Tesseract, by design."""
    import importlib.util

    from codec.metrics.legibility import OcrUnavailableError, tesseract_binary

    if importlib.util.find_spec("torch") is None:
        return []
    hint = "apt-get install tesseract-ocr tesseract-ocr-eng (the worker image has them)"
    try:
        tesseract_binary()
    except OcrUnavailableError as exc:
        if settings.GALLERY_CHECK_TEXT:
            return [checks.Warning(f"GALLERY_CHECK_TEXT is on but OCR is unavailable ({exc}): photos' text "
                                   "is not checked.", hint=hint, id="gallery.W021")]
        if not os.environ.get("GALLERY_CHECK_TEXT", "").strip():  # off because Tesseract is missing
            return [checks.Warning("Tesseract is not installed: photos' text is not checked "
                                   "(GALLERY_CHECK_TEXT is off).",
                                   hint=hint + "; or set GALLERY_CHECK_TEXT=0 to silence this.",
                                   id="gallery.W022")]
        return []
    from codec.encoder.text import DETECTOR_ENV, detector_choice
    from codec.errors import UsageError
    from codec.metrics.text_detect import missing_modules

    try:
        wants_ppocr = detector_choice() in ("auto", "ppocr")
    except UsageError:  # a misspelt value: the encode says so; here, the detector may be missing too
        wants_ppocr = True
    missing = missing_modules() if settings.GALLERY_CHECK_TEXT and wants_ppocr else []
    if missing:
        return [checks.Warning(
            f"The PP-OCR text detector is not installed ({', '.join(missing)} missing): text lines are "
            "found by Tesseract's own search, which misses small ones (13 of 18 rendered sign lines "
            "against 18 of 18, docs/bench/faces/text_detect.md).",
            hint="make venv / pip install --no-deps -r requirements-ocr.txt (the worker image has it); or "
            f"set {DETECTOR_ENV}=tesseract to silence this.", id="gallery.W023")]
    return []


def worker_errors() -> list:
    """The gallery's checks with worker severity; what a worker must not start with."""
    with as_worker():
        messages = checks.run_checks(tags=[TAG])
    return [m for m in messages if m.is_serious()]
