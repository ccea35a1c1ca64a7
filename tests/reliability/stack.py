"""A private, real gallery stack for fault drills and the load test.

Everything runs as real processes in a temporary folder: a private ``redis-server`` on a free port
(keeps nothing on disk, never the shared 6379 one), a SQLite database file, media, a real Celery
worker (``celery -A config worker -Q gpu``, prefork, optionally with embedded beat) and gunicorn.
Tests talk to it over HTTP and read its database file directly with ``sqlite3``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from scripts.procinfo import alive, children_of  # noqa: F401  (the one /proc parser; re-exported)

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
USERNAME = "loadtester"
PASSWORD = "a-long-load-test-password-42"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


class Proc:
    """A child process in its own session, logging to a file; stopped by process group."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.cmd, self.env, self.log = name, cmd, env, log
        self.proc: subprocess.Popen | None = None

    def start(self) -> Proc:
        fh = open(self.log, "ab")  # noqa: SIM115 - owned by the child's lifetime
        self.proc = subprocess.Popen(
            self.cmd, cwd=ROOT, env=self.env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
        )
        fh.close()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the whole process group (the process and its pool children)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass
        self.proc.wait(30)

    def stop(self, grace: float = 20.0) -> None:
        if not self.running():
            return
        try:
            os.killpg(self.pid, signal.SIGTERM)
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.kill()
        except ProcessLookupError:
            pass

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


@dataclass
class Stack:
    base: Path
    effort: str = "fast"
    worker_concurrency: int = 1
    torch_threads: int = 2
    visibility_timeout: int = 3600
    beat: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        self.db_dir = self.base / "db"
        self.db_dir.mkdir(exist_ok=True)
        self.db_path = self.db_dir / "gallery.sqlite3"
        self.redis_port = free_port()
        self.web_port = free_port()
        self.redis: Proc | None = None
        self.worker: Proc | None = None
        self.web: Proc | None = None
        self._worker_runs = 0

    # --- configuration -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "AWS_", "CACHE_URL"))}
        env.update(
            DJANGO_SETTINGS_MODULE="config.settings",
            PYTHONUNBUFFERED="1",
            DEBUG="0",
            SECRET_KEY="reliability-" + "k" * 60,
            ALLOWED_HOSTS="127.0.0.1,localhost",
            GALLERY_VAR_DIR=str(self.base / "var"),
            DATABASE_URL=f"sqlite:///{self.db_path}",
            MEDIA_ROOT=str(self.base / "media"),
            REDIS_URL=self.redis_url,
            CELERY_BROKER_URL=self.redis_url,
            CACHE_URL=f"redis://127.0.0.1:{self.redis_port}/1",
            GALLERY_ENCODE_EFFORT=self.effort,
            GALLERY_TORCH_THREADS=str(self.torch_threads),
            CELERY_VISIBILITY_TIMEOUT=str(self.visibility_timeout),
            LOG_LEVEL="INFO",
        )
        env.update(self.extra_env)
        return env

    def manage(self, *args: str, timeout: float = 300) -> str:
        out = subprocess.run(
            [PY, "manage.py", *args],
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if out.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
        return out.stdout

    # --- services ------------------------------------------------------------------------------
    def start_redis(self) -> None:
        server = shutil.which("redis-server")
        if server is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        rdir = self.base / "redis"
        rdir.mkdir(exist_ok=True)
        cmd = [server, "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", str(rdir), "--loglevel", "warning"]  # fmt: skip
        self.redis = Proc("redis", cmd, self.env(), self.base / "redis.log").start()
        wait_until(self.redis_ping, 20, "the private redis-server")

    def redis_ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.redis_port, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def redis_client(self):
        import redis

        return redis.Redis(port=self.redis_port, socket_connect_timeout=2, socket_timeout=5)

    def restart_redis(self) -> None:
        """Stop and start the private Redis on the same port: everything it held is gone."""
        assert self.redis is not None
        self.redis.stop()
        self.start_redis()

    def start_worker(self, concurrency: int | None = None) -> Proc:
        self._worker_runs += 1
        name = f"gpu{self._worker_runs}@reliability"
        procs = str(concurrency or self.worker_concurrency)
        cmd = [PY, "-m", "celery", "-A", "config", "worker", "-Q", "gpu", "-n", name,
               "-c", procs, "--pool", "prefork", "--loglevel", "INFO"]  # fmt: skip
        if self.beat:
            cmd += ["-B", "-s", str(self.base / "celerybeat-schedule")]
        self.worker = Proc("worker", cmd, self.env(), self.base / "worker.log").start()
        return self.worker

    def wait_worker_ready(self, timeout: float = 180) -> None:
        """Until the worker answers a ping (its pool children have loaded the model by then or soon)."""
        from celery import Celery

        app = Celery(broker=self.redis_url)
        try:

            def ping():
                assert self.worker is not None and self.worker.running(), self.worker.tail()
                return app.control.ping(timeout=1.0)

            wait_until(ping, timeout, "the Celery worker to answer a ping", interval=0.5)
        finally:
            app.close()

    def pool_children(self) -> list[int]:
        assert self.worker is not None
        return children_of(self.worker.pid)

    def start_web(self, workers: int = 2, threads: int = 4) -> None:
        cmd = [PY, "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{self.web_port}", "-w", str(workers),
               "--threads", str(threads), "--timeout", "120", "--graceful-timeout", "10"]  # fmt: skip
        self.web = Proc("web", cmd, self.env(), self.base / "web.log").start()
        import requests

        def healthy():
            assert self.web is not None and self.web.running(), self.web.tail()
            try:
                return requests.get(f"{self.url}/healthz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_until(healthy, 60, "gunicorn")

    def setup_database(self) -> None:
        self.manage("migrate", "--noinput", "-v", "0")
        code = (
            "from django.contrib.auth import get_user_model; U = get_user_model(); "
            f"U.objects.filter(username='{USERNAME}').exists() or "
            f"U.objects.create_user('{USERNAME}', 'load@example.com', '{PASSWORD}')"
        )
        self.manage("shell", "-c", code)

    def start(self, *, worker: bool = True, web: bool = True) -> Stack:
        self.start_redis()
        self.setup_database()
        if worker:
            self.start_worker()
        if web:
            self.start_web()
        return self

    def stop(self) -> None:
        for proc in (self.web, self.worker, self.redis):
            if proc is not None:
                proc.stop()

    # --- state ---------------------------------------------------------------------------------
    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        con = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=30)
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()

    def photo(self, photo_id: str) -> dict | None:
        rows = self.query(
            "SELECT status, error, attempts, created_at, ready_at, encoding_started_at "
            "FROM gallery_photo WHERE id = ?",
            (photo_id.replace("-", ""),),
        )
        if not rows:
            return None
        keys = ("status", "error", "attempts", "created_at", "ready_at", "encoding_started_at")
        return dict(zip(keys, rows[0], strict=True))

    def status_counts(self) -> dict[str, int]:
        return dict(self.query("SELECT status, COUNT(*) FROM gallery_photo GROUP BY status"))

    def staged_count(self) -> int:
        return self.query("SELECT COUNT(*) FROM gallery_stagedupload")[0][0]

    def staged_ids(self) -> set[str]:
        return {str(r[0]) for r in self.query("SELECT photo_id FROM gallery_stagedupload")}

    def queue_length(self) -> int:
        client = self.redis_client()
        try:
            return int(client.llen("gpu"))
        finally:
            client.close()


class Client:
    """A signed-in browser-like HTTP client of the stack (session cookie + CSRF token)."""

    def __init__(self, stack: Stack, timeout: float = 60) -> None:
        import requests

        self.stack = stack
        self.timeout = timeout
        self.http = requests.Session()
        self.http.headers["Referer"] = stack.url + "/"

    def login(self, username: str = USERNAME, password: str = PASSWORD) -> None:
        url = f"{self.stack.url}/accounts/login/"
        self.http.get(url, timeout=self.timeout).raise_for_status()
        r = self.http.post(
            url,
            {"username": username, "password": password, "csrfmiddlewaretoken": self.csrf},
            timeout=self.timeout,
            allow_redirects=False,
        )
        if r.status_code != 302:
            raise RuntimeError(f"login of {username} failed: {r.status_code} {r.text[:300]}")

    @property
    def csrf(self) -> str:
        return self.http.cookies.get("csrftoken", "")

    def upload(self, name: str, data: bytes, size: str = "small"):
        return self.http.post(
            f"{self.stack.url}/upload/",
            data={"size": size, "csrfmiddlewaretoken": self.csrf},
            files=[("files", (name, data, "application/octet-stream"))],
            headers={"Accept": "application/json", "X-CSRFToken": self.csrf},
            timeout=self.timeout,
        )

    @staticmethod
    def upload_result(r) -> dict:
        """``{"id", "error"}`` of a one-file `upload` response (an error text when it is not one)."""
        try:
            [result] = r.json()["results"]
            return {"id": result.get("id"), "error": result.get("error", "")}
        except (ValueError, KeyError, TypeError):
            return {"id": None, "error": f"HTTP {r.status_code}: {r.text[:200]}"}

    def status(self, photo_id: str) -> dict:
        r = self.http.get(f"{self.stack.url}/photos/{photo_id}/status.json", timeout=self.timeout)
        r.raise_for_status()
        return r.json()
