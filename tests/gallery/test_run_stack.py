"""`make run`'s script end to end: private redis-server, real worker process, web server, Ctrl-C."""

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
import urllib.parse
import urllib.request
import uuid

import pytest

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


def test_run_stack_serves_encodes_and_stops_cleanly(project_root, tmp_path):
    if not any(os.access(os.path.join(d, "redis-server"), os.X_OK) for d in os.environ["PATH"].split(":")):
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "REDIS_URL",
            "CELERY_BROKER_URL",
            "CACHE_URL",
            "DATABASE_URL",
            "DJANGO_SUPERUSER_USERNAME",
            "DJANGO_SUPERUSER_PASSWORD",
            "DJANGO_SETTINGS_MODULE",
        }
    }
    env.update(
        GALLERY_VAR_DIR=str(tmp_path / "var"),
        GALLERY_ENCODE_EFFORT="fast",
        GALLERY_WARM_MODEL="0",
        LOG_LEVEL="WARNING",
    )
    log_path = tmp_path / "run.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "scripts/run_stack.py", "--port", str(port)],
            cwd=project_root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 90
        while "[run] ready:" not in log_path.read_text():
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.3)
        text = log_path.read_text()
        pids = {name: int(pid) for name, pid in re.findall(r"started (.+?) \(pid (\d+)\)", text)}
        assert set(pids) == {"redis-server", "celery worker", "web server"}
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
        if proc.poll() is None:  # the test failed half-way: stop the stack the normal way first
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        # The children run in their own sessions; make sure none outlives the test.
        for pid in map(int, re.findall(r"started .+? \(pid (\d+)\)", log_path.read_text())):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
