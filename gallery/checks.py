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


def worker_errors() -> list:
    """The gallery's checks with worker severity; what a worker must not start with."""
    with as_worker():
        messages = checks.run_checks(tags=[TAG])
    return [m for m in messages if m.is_serious()]
