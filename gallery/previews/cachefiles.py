"""Cache files and their existence state (django-imagekit's cache file + cache-file backend state).

Asking "does this preview exist?" is a storage call (an S3 HEAD on object storage), and a grid page
polls it for every tile. The answer "it exists" never changes for a given name (the name holds the
latent's and the spec's digest), so it is remembered in Django's cache: after the first answer, or
as soon as the worker has written the file, ``exists()`` costs no storage call at all.

"It does not exist" is not remembered: the file appears when a worker (another process) writes it,
and the next request must see it. That costs one storage call per missing tile per poll, only while
a preview is being rendered. Cache errors (Redis down or paused) fall back to the storage call.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.files.storage import default_storage

from .. import resilience, storage
from .namers import Namer, source_hash
from .specs import PreviewSpec

#: how long an "exists" answer is remembered; the name never changes meaning, so this only bounds
#: how long a file removed behind our back (not via ``CacheFile.delete``/purge) is still announced
EXISTS_SECONDS = 7 * 24 * 3600


def _state_key(name: str) -> str:
    return f"gallery:preview-exists:{name}"


@dataclass(frozen=True)
class CacheFile:
    photo: object
    spec: PreviewSpec
    namer: Namer = field(default=source_hash, compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.namer(self.photo, self.spec)

    @property
    def version(self) -> str:
        """Changes whenever the file would change (the URL's cache-busting query string)."""
        return self.name.rsplit("-", 1)[-1].split(".")[0]

    @property
    def content_type(self) -> str:
        return self.spec.content_type

    def exists(self) -> bool:
        """From the remembered state when known, else one storage call (a "yes" is remembered)."""
        name = self.name
        if resilience.cache_get(_state_key(name)):
            return True
        found = default_storage.exists(name)
        if found:
            resilience.cache_set(_state_key(name), 1, EXISTS_SECONDS)
        return found

    def save(self, data: bytes) -> str:
        """Write the file and remember that it exists."""
        stored = storage.save(self.name, data, self.spec.content_type)
        resilience.cache_set(_state_key(stored), 1, EXISTS_SECONDS)
        return stored


def forget(name: str) -> None:
    """Drop the remembered state of a stored name (it was deleted)."""
    resilience.cache_delete(_state_key(name))
