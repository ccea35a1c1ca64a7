"""Fetch one catalogued file into a folder: pinned URL or mirror, size cap, timeouts, sha256, atomic write.

The bytes stream into a temporary file *in the destination folder* (``.NAME.XXXX.part``), are hashed
on the way, fsync'ed, checked (exact size, sha256) and only then renamed to ``NAME`` — so a reader
never sees a partial or wrong file, and a failed transfer leaves nothing behind. Progress goes to
stderr. Every failure is a :class:`~codec.errors.SetupError` whose message names the URL and the way
to place the file by hand.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO, TextIO

from codec.errors import ModelNotFoundError, WeightsChecksumError
from codec.resources.catalog import RemoteFile
from codec.resources.locations import env_flag, kind

MIRROR_ENV = "CODEC_WEIGHTS_MIRROR"
OFFLINE_ENV = "CODEC_OFFLINE"
TIMEOUT_ENV = "CODEC_DOWNLOAD_TIMEOUT"
DEFAULT_TIMEOUT_S = 20.0
CHUNK = 1 << 16
USER_AGENT = "latent-gallery-fetch/1"


def offline() -> bool:
    """True when ``CODEC_OFFLINE`` forbids downloads."""
    return env_flag(OFFLINE_ENV)


def source_url(file: RemoteFile) -> str | None:
    """The mirror URL (``$CODEC_WEIGHTS_MIRROR`` + name) when a mirror is set, else the pinned upstream."""
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if mirror:
        return mirror.rstrip("/") + "/" + file.name
    return file.url


def manual_step(file: RemoteFile, dest_dir: Path) -> str:
    """How to place ``file`` by hand (folder, name, size, sha256) — part of every failure message."""
    spec = kind(file.kind)
    return (
        f"to place it by hand, copy the file to {dest_dir / file.name} (or into the folder named by "
        f"{spec.env}) — exact name {file.name}, {file.size} bytes, sha256 {file.sha256} "
        f"({file.source}); or set {MIRROR_ENV} to a base URL that serves it"
    )


def _timeout() -> float:
    try:
        value = float(os.environ.get(TIMEOUT_ENV, "") or DEFAULT_TIMEOUT_S)
    except ValueError:
        return DEFAULT_TIMEOUT_S
    return value if value > 0 else DEFAULT_TIMEOUT_S


class _Progress:
    """``fetching NAME: 1.2/2.3 MiB`` on stderr, at most a few lines a second; one final line."""

    def __init__(self, name: str, total: int, stream: TextIO | None) -> None:
        self.name, self.total, self.stream = name, total, stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.last = 0.0

    def update(self, done: int, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.last < (0.2 if self.tty else 2.0):
            return
        self.last = now
        line = f"fetching {self.name}: {done / 2**20:.1f}/{self.total / 2**20:.1f} MiB"
        end = "\n" if final or not self.tty else ""
        self.stream.write(("\r" if self.tty else "") + line + end)
        self.stream.flush()


def fetch(file: RemoteFile, dest_dir: Path, *, progress: TextIO | None = None) -> Path:
    """Download ``file`` into ``dest_dir`` and return its path (verified, atomically in place).

    Raises ModelNotFoundError (offline, no source, network/HTTP failure, truncated or oversized
    transfer, folder not writable) or WeightsChecksumError (the bytes are not the expected ones).
    """
    url = source_url(file)
    if offline():
        raise ModelNotFoundError(
            f"{file.name} is not present and downloads are off ({OFFLINE_ENV}=1); "
            f"{manual_step(file, dest_dir)}"
        )
    if url is None:
        raise ModelNotFoundError(f"{file.name} has no upstream download; {manual_step(file, dest_dir)}")
    if not url.startswith(("http://", "https://")):
        raise ModelNotFoundError(f"{MIRROR_ENV} must be an http(s) URL, got {url!r}")
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{file.name}.", suffix=".part", dir=dest_dir)
    except OSError as exc:
        raise ModelNotFoundError(
            f"cannot write into {dest_dir} to download {file.name}: {exc.strerror or exc}; "
            f"{manual_step(file, dest_dir)}"
        ) from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            digest = _transfer(file, url, out, dest_dir, progress)
            out.flush()
            os.fsync(out.fileno())
        if digest != file.sha256:
            raise WeightsChecksumError(
                f"sha256 mismatch for {file.name} downloaded from {url}: expected {file.sha256}, got "
                f"{digest}; the download was discarded; {manual_step(file, dest_dir)}"
            )
        target = dest_dir / file.name
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; the cache may serve workers of other users
        os.replace(tmp, target)
        _fsync_dir(dest_dir)
        return target
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _transfer(file: RemoteFile, url: str, out: BinaryIO, dest_dir: Path, progress: TextIO | None) -> str:
    """Stream ``url`` into ``out``; return the hex sha256. Network errors → ModelNotFoundError."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})

    def fail(reason: str) -> ModelNotFoundError:
        return ModelNotFoundError(
            f"could not download {file.name} from {url}: {reason}; {manual_step(file, dest_dir)}"
        )

    h = hashlib.sha256()
    done = 0
    try:
        with urllib.request.urlopen(request, timeout=_timeout()) as resp:
            length = resp.headers.get("Content-Length")
            if length is not None and length.strip().isdigit() and int(length) != file.size:
                raise fail(f"the server announces {int(length)} bytes, expected exactly {file.size}")
            bar = _Progress(file.name, file.size, progress)
            while True:
                chunk = resp.read(CHUNK)
                if not chunk:
                    break
                done += len(chunk)
                if done > file.size:  # size cap: never store more than the expected file
                    raise fail(f"more than the expected {file.size} bytes")
                h.update(chunk)
                out.write(chunk)
                bar.update(done)
            bar.update(done, final=True)
    except ModelNotFoundError:
        raise
    except urllib.error.HTTPError as exc:
        raise fail(f"HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise fail(f"{exc.reason}") from exc
    except http.client.IncompleteRead as exc:
        raise fail(f"transfer cut short after {done + len(exc.partial)} of {file.size} bytes") from exc
    except (OSError, http.client.HTTPException) as exc:  # timeouts, resets, protocol errors
        raise fail(f"{type(exc).__name__}: {exc}") from exc
    if done != file.size:
        raise fail(f"transfer cut short after {done} of {file.size} bytes")
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    """Make the rename durable (best effort: not every platform can open a directory)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
