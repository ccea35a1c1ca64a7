#!/usr/bin/env python
"""Run the whole gallery locally: broker, a real Celery worker and the web server (``make run``).

1. Broker: ``REDIS_URL`` (or ``CELERY_BROKER_URL``) when set; otherwise a private ``redis-server``
   (Debian package ``redis-server``) on a free port, keeping nothing on disk.
2. ``manage.py migrate`` and ``manage.py ensure_admin`` (DJANGO_SUPERUSER_* or a printed password).
3. ``celery -A config worker -Q gpu -c 1 -B`` (loads the model once, CUDA when present; ``-B`` runs
   the periodic sweeper) and the web server at http://127.0.0.1:8000 (``runserver``;
   ``--web gunicorn`` for the production server).
4. Ctrl-C (or SIGTERM) stops every child; when one child dies the others are stopped too.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def log(msg: str) -> None:
    print(f"[run] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((host, port)) == 0


def redis_ping(url: str, timeout: float = 1.0) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout).ping())
    except Exception:
        return False


class Stack:
    def __init__(self) -> None:
        self.children: list[tuple[str, subprocess.Popen]] = []
        self.stopping = False

    def start(self, name: str, cmd: list[str], env: dict[str, str], **kw) -> subprocess.Popen:
        # Own session: Ctrl-C reaches only this script, which then stops the children in order.
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True, **kw)
        self.children.append((name, proc))
        log(f"started {name} (pid {proc.pid}): {' '.join(cmd)}")
        return proc

    def stop(self, grace: float = 20.0) -> None:
        """Stop the children one by one, newest first (web, worker, broker): SIGTERM, then SIGKILL."""
        self.stopping = True
        for name, proc in reversed(self.children):
            if proc.poll() is not None:
                continue
            log(f"stopping {name} (pid {proc.pid})")
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(grace)
            except ProcessLookupError:
                continue
            except subprocess.TimeoutExpired:
                log(f"{name} did not stop in {grace:.0f} s; killing it")
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
        log("all stopped")

    def dead_child(self) -> tuple[str, int] | None:
        for name, proc in self.children:
            code = proc.poll()
            if code is not None:
                return name, code
        return None


def start_broker(stack: Stack, env: dict[str, str], var_dir: Path) -> None:
    url = env.get("CELERY_BROKER_URL") or env.get("REDIS_URL")
    if url:
        if url.startswith("redis") and not redis_ping(url, 3):
            sys.exit(f"[run] error: the broker at {url} (REDIS_URL/CELERY_BROKER_URL) does not answer.")
        log(f"using the broker at {url}")
        return
    server = shutil.which("redis-server")
    if server is None:
        sys.exit(
            "[run] error: no broker. Install Redis (Debian/Ubuntu: apt-get install redis-server) so that "
            "`redis-server` is on PATH, or set REDIS_URL=redis://host:6379/0 to use a running one."
        )
    port = free_port()
    redis_dir = var_dir / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    stack.start(
        "redis-server",
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(redis_dir), "--loglevel", "warning"],
        env,
    )
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(100):
        if redis_ping(url, 0.2):
            break
        time.sleep(0.1)
    else:
        stack.stop()
        sys.exit(f"[run] error: the private redis-server on port {port} did not start.")
    env["REDIS_URL"] = url
    env.setdefault("CACHE_URL", f"redis://127.0.0.1:{port}/1")
    log(f"private broker: {url} (in memory only; stops with this script)")


def manage(env: dict[str, str], *args: str) -> str:
    cmd = [PY, "manage.py", *args]
    out = subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.PIPE, text=True)
    if out.stdout.strip():
        print(out.stdout.strip(), flush=True)
    return out.stdout.strip()


def wait_http(url: str, stack: Stack, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stack.dead_child():
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.3)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--web", choices=["runserver", "gunicorn"], default="runserver")
    args = parser.parse_args(argv)

    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    env.setdefault("DEBUG", "1")
    env["PYTHONUNBUFFERED"] = "1"
    var_dir = Path(env.get("GALLERY_VAR_DIR", ROOT / "var")).resolve()
    var_dir.mkdir(parents=True, exist_ok=True)
    if port_in_use(args.host, args.port):
        sys.exit(f"[run] error: {args.host}:{args.port} is already in use (another `make run`?); use --port.")

    stack = Stack()

    def on_signal(signum, _frame):
        raise KeyboardInterrupt

    # Installed explicitly: a shell that starts this in the background may have set SIGINT to ignored.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    code = 0
    try:
        start_broker(stack, env, var_dir)
        log("migrating the database")
        manage(env, "migrate", "--noinput", "-v", "0")
        admin = manage(env, "ensure_admin")
        stack.start(
            "celery worker",
            # -B: the embedded beat scheduler runs the periodic sweeper (re-queues lost encodes).
            [PY, "-m", "celery", "-A", "config", "worker", "-Q", "gpu", "-c", "1", "-n", "gpu@%h",
             "-B", "--schedule", str(var_dir / "celerybeat-schedule"),
             "--loglevel", env.get("LOG_LEVEL", "INFO")],
            env,
        )
        if args.web == "gunicorn":
            web = [PY, "-m", "gunicorn", "config.wsgi", "-b", f"{args.host}:{args.port}", "-w", "2",
                   "--threads", "4", "--timeout", "120", "--access-logfile", "-"]
        else:
            web = [PY, "manage.py", "runserver", f"{args.host}:{args.port}", "--noreload"]
        stack.start("web server", web, env)
        base = f"http://{args.host}:{args.port}"
        if not wait_http(f"{base}/healthz", stack):
            log("error: the web server did not come up")
            code = 1
        else:
            log(f"ready: {base}/  (statistics: {base}/stats/, admin: {base}/admin/)")
            log(admin)
            log("Ctrl-C stops everything")
            while (dead := stack.dead_child()) is None:
                time.sleep(0.5)
            log(f"error: {dead[0]} exited with code {dead[1]}; stopping the rest")
            code = 1
    except KeyboardInterrupt:
        log("interrupted")
    except subprocess.CalledProcessError as exc:
        log(f"error: {' '.join(map(str, exc.cmd))} failed with code {exc.returncode}")
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()
    return code


if __name__ == "__main__":
    sys.exit(main())
