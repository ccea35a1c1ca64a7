"""Generator backends: who renders a missing cache file (django-imagekit's async backends).

``CeleryBackend`` queues the worker task ``gallery.render_previews`` (queue ``gpu``: it decodes a
latent). A short-lived cache marker keeps a page that polls every few seconds from queueing the
same render again and again. When the cache or the broker cannot be reached nothing is queued and
nothing is raised: the page shows its placeholder and a later request (or the optimistic render
after the next encode) schedules it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Protocol

from .. import resilience

log = logging.getLogger(__name__)

#: a render queued less than this long ago is not queued again
MARKER_SECONDS = 60


class Backend(Protocol):
    def schedule(self, photo, spec_names: Iterable[str]) -> bool:
        """Make sure the cache files of ``spec_names`` will be rendered; True when work was queued."""


def _marker(photo, names: list[str]) -> str:
    return f"gallery:preview-queued:{photo.pk}:{photo.latent_sha256[:12]}:{','.join(names)}"


class CeleryBackend:
    """Queues ``render_previews``; at most once per ``MARKER_SECONDS`` per photo and spec set."""

    def schedule(self, photo, spec_names: Iterable[str]) -> bool:
        from .. import queueing
        from ..worker.tasks import render_previews

        names = sorted(spec_names)
        if not names:
            return False
        marker = _marker(photo, names)
        added = resilience.cache_add(marker, 1, MARKER_SECONDS)
        if not added:  # False: queued recently; None: the cache is unreachable (so is Redis, likely)
            return False
        if not queueing.publish(render_previews, str(photo.pk), names):
            resilience.cache_delete(marker)  # try again on the next request
            return False
        return True
