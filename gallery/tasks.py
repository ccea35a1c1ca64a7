"""Celery's conventional module name: the tasks live in ``gallery.worker.tasks`` (names unchanged)."""

from .worker.tasks import (
    MAX_RETRIES,
    backoff_seconds,
    encode_photo,
    make_comparisons,
    relay_outbox,
    render_previews,
    sweep,
)

__all__ = [
    "MAX_RETRIES", "backoff_seconds", "encode_photo", "make_comparisons", "relay_outbox", "render_previews",
    "sweep",
]
