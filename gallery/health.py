"""Health endpoints: ``/healthz`` (liveness) and ``/readyz`` (readiness, per component, JSON).

``/healthz`` answers "ok" while the process serves requests and its database answers a
``SELECT 1`` (a database outage is a 503 through ``DatabaseUnavailableMiddleware``). It touches
nothing else, so it stays cheap enough for a container health check every few seconds.

``/readyz`` reports each component separately, every check bounded by
``GALLERY_HEALTH_TIMEOUT`` (≤ 1 s) and run in parallel, so the whole answer takes about one
timeout even when Redis is paused (accepts connections, never answers) or a port is closed:

- ``database``: ``SELECT 1`` on the default connection;
- ``storage``: a small probe file written to and deleted from the media storage (a read-only
  ``MEDIA_ROOT`` or a refused bucket shows here);
- ``broker``: a ping of the Celery broker;
- ``worker``: a Celery control ``ping`` that at least one worker answers.

The HTTP status is 503 only when a component the web process needs to serve pages fails
(``GALLERY_READY_REQUIRES``, default database + storage): with the broker or the workers down the
site still serves pages and takes uploads (they wait in the database), so a load balancer should
keep sending traffic; the body then says ``"status": "degraded"``. Details shown here never
contain server paths or credentials; the full errors go to the log.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from django.conf import settings
from django.db import connection, connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

log = logging.getLogger(__name__)

COMPONENTS = ("database", "storage", "broker", "worker")
PROBE_DIR = "health"

# Checks run on this small pool: a check stuck past its deadline (e.g. a driver without a socket
# timeout) holds one thread, never the request that asked.
_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="readyz")
_cache_lock = threading.Lock()
_cache: dict[str, tuple[float, dict]] = {}


def timeout_seconds() -> float:
    return min(float(getattr(settings, "GALLERY_HEALTH_TIMEOUT", 1.0)), 1.0)


def describe_error(exc: BaseException) -> str:
    """A short reason without server paths, hosts or credentials (the log has the full error)."""
    if isinstance(exc, OSError) and exc.errno:
        return f"{errno.errorcode.get(exc.errno, 'OSError')}: {os.strerror(exc.errno)}"
    return type(exc).__name__


# --- the checks (each returns a short detail string or raises) --------------------------------
def check_database(timeout: float) -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        connection.close()  # this thread's connection; the pool thread must not keep one open
    return connection.vendor


def check_storage(timeout: float) -> str:
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    name = default_storage.save(f"{PROBE_DIR}/probe-{uuid.uuid4().hex}.txt", ContentFile(b"ok"))
    default_storage.delete(name)
    return "writable"


def broker_url() -> str:
    """The URL the Celery app publishes to (settings' ``CELERY_BROKER_URL`` unless changed)."""
    from config.celery import app

    return app.conf.broker_url or settings.CELERY_BROKER_URL


def check_broker(timeout: float) -> str:
    url = broker_url()
    if url.startswith(("redis://", "rediss://", "unix://")):
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            client.ping()
        finally:
            client.close()
        return "redis"
    from kombu import Connection

    with Connection(url, connect_timeout=timeout) as conn:
        conn.ensure_connection(max_retries=1, timeout=timeout)
    return "connected"


def check_worker(timeout: float) -> str:
    """A control ``ping`` answered by at least one worker (its main process answers even mid-encode).

    With ``limit=1`` a live worker's reply ends the wait at once (milliseconds); with none, Celery's
    reply loop takes about a second whatever the timeout, so the caller's deadline reports it.
    """
    from config.celery import app

    opts = {"socket_connect_timeout": timeout, "socket_timeout": timeout}
    with app.connection_for_write(transport_options=opts) as conn:
        replies = app.control.ping(timeout=timeout * 0.9, connection=conn, limit=1)
    if not replies:
        raise LookupError("no worker answered")
    return f"{len(replies)} answered"


CHECKS: dict[str, Callable[[float], str]] = {
    "database": check_database,
    "storage": check_storage,
    "broker": check_broker,
    "worker": check_worker,
}


def run_checks(names: tuple[str, ...] = COMPONENTS, timeout: float | None = None) -> dict[str, dict]:
    """Run the named checks in parallel; each result is ``{"ok", "detail", "ms"}``."""
    timeout = timeout_seconds() if timeout is None else timeout
    started = time.monotonic()
    futures = {name: _pool.submit(_timed, name, timeout) for name in names}
    results: dict[str, dict] = {}
    for name, future in futures.items():
        remaining = max(0.0, timeout - (time.monotonic() - started)) + 0.05
        try:
            results[name] = future.result(timeout=remaining)
        except FutureTimeout:
            log.warning("health check %s gave no answer within %.1f s", name, timeout)
            what = "no worker answered" if name == "worker" else "no answer"
            results[name] = {"ok": False, "detail": f"{what} within {timeout:g} s",
                             "ms": round(timeout * 1000)}
    return results


def _timed(name: str, timeout: float) -> dict:
    t0 = time.monotonic()
    try:
        detail = CHECKS[name](timeout)
        ok = True
    except Exception as exc:  # any failure of a dependency is a result, not an error of this view
        if name == "worker" and isinstance(exc, LookupError):
            detail = str(exc)
        else:
            log.warning("health check %s failed: %r", name, exc)
            detail = describe_error(exc)
        ok = False
    if name == "database":
        connections.close_all()
    return {"ok": ok, "detail": detail, "ms": round((time.monotonic() - t0) * 1000, 1)}


def readiness(use_cache: bool = True) -> tuple[int, dict]:
    """(HTTP status, body) for ``/readyz``; cached for ``GALLERY_HEALTH_CACHE_SECONDS``."""
    ttl = float(getattr(settings, "GALLERY_HEALTH_CACHE_SECONDS", 2.0))
    with _cache_lock:
        hit = _cache.get("ready")
    if use_cache and hit and time.monotonic() - hit[0] < ttl:
        body = hit[1]
    else:
        checks = run_checks()
        required = tuple(getattr(settings, "GALLERY_READY_REQUIRES", ("database", "storage")))
        if not all(checks[name]["ok"] for name in required if name in checks):
            status = "unavailable"
        elif all(result["ok"] for result in checks.values()):
            status = "ok"
        else:
            status = "degraded"
        body = {"status": status, "required": list(required), "checks": checks}
        with _cache_lock:
            _cache["ready"] = (time.monotonic(), body)
    return (503 if body["status"] == "unavailable" else 200), body


@never_cache
@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness: the process answers and its database answers (else 503 from the middleware)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return HttpResponse("ok", content_type="text/plain")


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    status, body = readiness()
    response = JsonResponse(body, status=status)
    if status == 503:
        response["Retry-After"] = "5"
    return response
