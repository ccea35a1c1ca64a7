"""Calls to Redis (cache and broker) from a request path: short timeouts, no exceptions, a breaker.

A page must answer even when Redis is down (connection refused) or paused (accepts, never answers).
The socket timeouts in settings bound one call to about a second; the breaker bounds a whole page:
after one failure the service is skipped in this process for ``cooldown`` seconds, so a grid of 24
tiles costs one timeout, not 24. Callers get a default value and carry on (the placeholder is shown,
the sweeper or the next poll schedules the work later).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class Breaker:
    """A process-local circuit breaker: open for ``cooldown`` seconds after a failure."""

    def __init__(self, name: str, cooldown: float) -> None:
        self.name = name
        self.cooldown = cooldown
        self._open_until = 0.0
        self._lock = threading.Lock()
        self.last_error = ""

    @property
    def is_open(self) -> bool:
        return time.monotonic() < self._open_until

    def trip(self, exc: BaseException) -> None:
        with self._lock:
            was_open = self.is_open
            self._open_until = time.monotonic() + self.cooldown
            self.last_error = f"{type(exc).__name__}: {exc}"
        if not was_open:
            log.warning("%s unavailable, skipped for %.0f s: %s", self.name, self.cooldown, exc)

    def reset(self) -> None:
        with self._lock:
            self._open_until = 0.0

    def call(self, fn: Callable[..., T], *args, default: T, **kwargs) -> T:
        """``fn(*args, **kwargs)``, or ``default`` while open or when it raises (the breaker trips)."""
        if self.is_open:
            return default
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # any backend error: the request path must not fail because of it
            self.trip(exc)
            return default


CACHE = Breaker("cache", cooldown=15.0)
BROKER = Breaker("broker", cooldown=10.0)


def cache_get(key: str, default=None):
    from django.core.cache import cache

    return CACHE.call(cache.get, key, default, default=default)


def cache_set(key: str, value, timeout: float | None) -> bool:
    from django.core.cache import cache

    def _set() -> bool:
        cache.set(key, value, timeout)
        return True

    return CACHE.call(_set, default=False)


def cache_add(key: str, value, timeout: float | None) -> bool | None:
    """True: added; False: the key was there; None: the cache could not be reached."""
    from django.core.cache import cache

    return CACHE.call(cache.add, key, value, timeout, default=None)


def cache_delete(key: str) -> None:
    from django.core.cache import cache

    CACHE.call(cache.delete, key, default=None)
