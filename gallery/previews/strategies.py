"""Cache-file strategies: when cache files are made (django-imagekit's strategies).

* ``JustInTime``: only when a page asks for a file that does not exist yet.
* ``Optimistic`` (default): right after the latent is committed, and again on a miss.

A strategy only decides; a backend does the scheduling. Reading whether a file exists
(``previews.lookup``) never triggers either: pages call ``previews.request`` for that.
"""

from __future__ import annotations

from django.conf import settings

from . import specs
from .backends import Backend, CeleryBackend
from .cachefiles import CacheFile

STRATEGIES = ("optimistic", "just_in_time")


class JustInTime:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def on_source_ready(self, photo) -> None:
        """The latent was committed."""
        return None

    def on_missing(self, cache_file: CacheFile) -> None:
        """A page wanted a file that does not exist."""
        self.backend.schedule(cache_file.photo, [cache_file.spec.name])


class Optimistic(JustInTime):
    def on_source_ready(self, photo) -> None:
        self.backend.schedule(photo, sorted(n for n, spec in specs.SPECS.items() if not spec.on_demand))


def get_strategy(kind: str | None = None, backend: Backend | None = None) -> JustInTime:
    kind = settings.GALLERY_PREVIEW_STRATEGY if kind is None else kind
    backend = backend or CeleryBackend()
    if kind == "optimistic":
        return Optimistic(backend)
    if kind == "just_in_time":
        return JustInTime(backend)
    raise ValueError(f"GALLERY_PREVIEW_STRATEGY must be one of {', '.join(STRATEGIES)}, not {kind!r}")
