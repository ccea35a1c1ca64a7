"""Weight download against a real local HTTP server (real sockets, no mocks) and the lookup order.

The server serves a copy of a real weight file; its URL paths choose how it misbehaves:
``/ok/NAME`` the exact bytes, ``/corrupt/NAME`` the same length with flipped bytes, ``/truncated/NAME``
a Content-Length of the full file but half the body and a closed connection, ``/oversized/NAME``
a Content-Length larger than the file, anything else 404.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from codec import resources
from codec.errors import ModelNotFoundError, WeightsChecksumError
from codec.resources import catalog, locations

ROOT = Path(__file__).resolve().parents[2]
LIN = "lpips_alex_v0.1_lin.pth"  # a real 6 KB weight file: fast to serve
DECODER = "taesd_decoder.safetensors"  # a real TAESD file (2.4 MB) for the end-to-end case


def _real_file(name: str) -> bytes:
    """The bytes of a real weight file, found the normal way (env var or ../shared; never downloaded)."""
    try:
        return resources.resolve_file(catalog.FILES[name].kind, name, fetch=False).read_bytes()
    except ModelNotFoundError as exc:
        pytest.fail(f"{exc} (see ../shared/README.md)", pytrace=False)


class _Server:
    def __init__(self) -> None:
        self.requests: list[str] = []
        self.files = {name: _real_file(name) for name in (LIN, DECODER, "taesd_encoder.safetensors")}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                server.requests.append(self.path)
                mode, _, name = self.path.strip("/").partition("/")
                if name not in server.files or mode not in {"ok", "corrupt", "truncated", "oversized"}:
                    self.send_error(404)
                    return
                body = server.files[name]
                if mode == "corrupt":
                    mid = len(body) // 2
                    body = body[:mid] + bytes(b ^ 0xFF for b in body[mid : mid + 64]) + body[mid + 64 :]
                length = len(body) + (1000 if mode == "oversized" else 0)
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(length))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if mode == "truncated" else body)
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def base(self, mode: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{mode}/"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def server() -> Iterator[_Server]:
    s = _Server()
    yield s
    s.close()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Nothing found anywhere (empty env dirs, no ../shared), a fresh cache, downloads allowed."""
    for var in ("CODEC_MODEL_DIR", "CODEC_METRICS_DIR"):
        empty = tmp_path / var.lower()
        empty.mkdir()
        monkeypatch.setenv(var, str(empty))
    cache = tmp_path / "cache"
    monkeypatch.setenv("CODEC_CACHE_DIR", str(cache))
    monkeypatch.setenv("CODEC_NO_SHARED_FALLBACK", "1")
    monkeypatch.setenv("CODEC_DOWNLOAD_TIMEOUT", "5")
    monkeypatch.delenv("CODEC_OFFLINE", raising=False)
    resources._clear_cache()
    return cache


def _left_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_download_into_cache_verified_and_atomic(env: Path, server: _Server, monkeypatch, capsys) -> None:
    monkeypatch.setenv("CODEC_WEIGHTS_MIRROR", server.base("ok"))
    path = resources.weight_file(DECODER)
    assert path == env / "models" / "taesd" / DECODER
    assert resources.sha256_file(path) == catalog.SHA256[DECODER]
    assert _left_in(path.parent) == [DECODER]  # no temporary file left next to it
    assert path.stat().st_mode & 0o777 == 0o644
    assert f"fetching {DECODER}" in capsys.readouterr().err  # progress on stderr
    before = len(server.requests)
    assert resources.weight_file(DECODER) == path  # now a cache hit: no second request
    assert len(server.requests) == before


def test_corrupted_transfer_is_refused_and_leaves_nothing(env: Path, server: _Server, monkeypatch) -> None:
    monkeypatch.setenv("CODEC_WEIGHTS_MIRROR", server.base("corrupt"))
    with pytest.raises(WeightsChecksumError, match=r"sha256 mismatch.*corrupt/" + LIN.replace(".", r"\.")):
        resources.metrics_file(LIN)
    assert _left_in(env / "models" / "metrics") == []


def test_truncated_transfer_is_a_clean_error_and_leaves_nothing(env: Path, server: _Server, monkeypatch):
    monkeypatch.setenv("CODEC_WEIGHTS_MIRROR", server.base("truncated"))
    with pytest.raises(ModelNotFoundError) as info:
        resources.metrics_file(LIN)
    msg = str(info.value)
    assert "cut short" in msg and server.base("truncated") + LIN in msg
    assert _left_in(env / "models" / "metrics") == []


def test_announced_size_above_the_cap_is_refused(env: Path, server: _Server, monkeypatch) -> None:
    monkeypatch.setenv("CODEC_WEIGHTS_MIRROR", server.base("oversized"))
    with pytest.raises(ModelNotFoundError, match="expected exactly 6009"):
        resources.metrics_file(LIN)
    assert _left_in(env / "models" / "metrics") == []


def test_http_error_names_the_url(env: Path, server: _Server, monkeypatch) -> None:
    monkeypatch.setenv("CODEC_WEIGHTS_MIRROR", server.base("missing"))
    with pytest.raises(ModelNotFoundError, match="HTTP 404"):
        resources.metrics_file(LIN)


def test_offline_is_quick_and_says_how_to_place_the_file(env: Path, monkeypatch) -> None:
    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mirror = f"http://127.0.0.1:{port}/weights/"
    monkeypatch.setenv("CODEC_WEIGHTS_MIRROR", mirror)
    t0 = time.perf_counter()
    with pytest.raises(ModelNotFoundError) as info:
        resources.weight_file(DECODER)
    assert time.perf_counter() - t0 < 5
    msg = str(info.value)
    assert mirror + DECODER in msg  # which URL failed
    assert str(env / "models" / "taesd" / DECODER) in msg  # where to put it by hand
    assert catalog.SHA256[DECODER] in msg and "CODEC_MODEL_DIR" in msg
    assert "float32 .pth" in msg  # upstream's own files differ in format: said plainly
    assert _left_in(env / "models" / "taesd") == []


def test_codec_offline_makes_no_request(env: Path, server: _Server, monkeypatch) -> None:
    monkeypatch.setenv("CODEC_WEIGHTS_MIRROR", server.base("ok"))
    monkeypatch.setenv("CODEC_OFFLINE", "1")
    before = len(server.requests)
    with pytest.raises(ModelNotFoundError, match="CODEC_OFFLINE=1"):
        resources.metrics_file(LIN)
    assert len(server.requests) == before


def test_upstream_urls_are_pinned_except_the_documented_fork() -> None:
    for f in catalog.FILES.values():
        if f.url is None:
            assert "no upstream" in f.source
        elif catalog.TAESD_SAFETENSORS_REPO in f.url:
            assert "float32 .pth" in f.source  # unpinned ref: the sha256 is the pin, and it says why
        else:
            ref = f.url.split("/")[5]
            assert len(ref) == 40 and int(ref, 16) >= 0, f.url


def test_lookup_order_env_then_shared_then_cache(tmp_path: Path, monkeypatch) -> None:
    shared = locations.shared_root() / "models" / "metrics" / LIN
    if not shared.is_file():
        pytest.skip("../shared/models/metrics is not present on this machine")
    env_dir, cache = tmp_path / "env", tmp_path / "cache"
    (cache / "models" / "metrics").mkdir(parents=True)
    env_dir.mkdir()
    shutil.copy(shared, env_dir / LIN)
    shutil.copy(shared, cache / "models" / "metrics" / LIN)
    monkeypatch.setenv("CODEC_CACHE_DIR", str(cache))
    monkeypatch.delenv("CODEC_NO_SHARED_FALLBACK", raising=False)
    monkeypatch.setenv("CODEC_METRICS_DIR", str(env_dir))
    assert resources.metrics_file(LIN) == env_dir / LIN  # env beats shared and cache
    monkeypatch.delenv("CODEC_METRICS_DIR")
    assert resources.metrics_file(LIN) == shared  # shared beats cache
    monkeypatch.setenv("CODEC_NO_SHARED_FALLBACK", "1")
    assert resources.metrics_file(LIN) == cache / "models" / "metrics" / LIN  # then the cache
    assert resources.metrics_file(LIN, explicit=env_dir) == env_dir / LIN  # explicit first of all


def test_cache_root_is_xdg_aware(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("CODEC_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert locations.cache_root() == tmp_path / "latent-gallery"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")  # invalid per the spec: ignored
    assert locations.cache_root() == Path.home() / ".cache" / "latent-gallery"
    monkeypatch.setenv("CODEC_CACHE_DIR", str(tmp_path / "c"))
    assert locations.cache_root() == tmp_path / "c"


def test_ensure_file_replaces_a_damaged_copy_in_dest(env: Path, server: _Server, monkeypatch, tmp_path):
    monkeypatch.setenv("CODEC_WEIGHTS_MIRROR", server.base("ok"))
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / LIN).write_bytes(b"damaged")
    path, downloaded = resources.ensure_file(LIN, dest)
    assert downloaded and path == dest / LIN
    assert resources.sha256_file(path) == catalog.SHA256[LIN]
    assert resources.ensure_file(LIN, dest) == (path, False)


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "CODEC_OFFLINE"}
    full.update(env)
    return subprocess.run(
        [sys.executable, "-m", "codec", "fetch-weights", *args],
        cwd=ROOT, env=full, capture_output=True, text=True, timeout=120,
    )


def test_cli_fetch_weights_from_mirror_and_offline(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "w"
    r = _cli("--model", "taesd", "--dest", str(dest), CODEC_WEIGHTS_MIRROR=server.base("ok"))
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in dest.iterdir()) == [DECODER, "taesd_encoder.safetensors"]
    assert "fetched taesd_encoder.safetensors" in r.stdout
    r = _cli("--metrics", "--dest", str(tmp_path / "m"), CODEC_OFFLINE="1")
    assert r.returncode == 4, r.stderr
    assert "Traceback" not in r.stderr and r.stderr.strip().splitlines()[-1].startswith("error: 2 of 2")
    r = _cli("--model", "sd-vae")
    assert r.returncode == 2 and "no downloadable weights" in r.stderr
