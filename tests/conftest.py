"""Shared, generic fixtures for the whole test suite (codec and gallery alike)."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _shared_dir(kind: str) -> Path:
    """A shared data folder through the project's one resolver (env var → ../shared → user cache)."""
    from codec.errors import ModelNotFoundError
    from codec.resources import resolve_dir

    try:
        return resolve_dir(kind)
    except ModelNotFoundError as exc:
        pytest.fail(f"{exc} (see ../shared/README.md)", pytrace=False)


def pytest_configure(config) -> None:
    # Local runs serve static files from the finders; STATIC_ROOT exists only after collectstatic.
    config.addinivalue_line("filterwarnings", "ignore:No directory at:UserWarning")
    # No test reads the developer's weight cache or the network (subprocesses and workers inherit
    # this); the download tests point CODEC_WEIGHTS_MIRROR at their own local server and lift it.
    os.environ["CODEC_CACHE_DIR"] = tempfile.mkdtemp(prefix="codec-test-cache-")
    os.environ["CODEC_OFFLINE"] = "1"


def pytest_unconfigure(config) -> None:
    cache = os.environ.get("CODEC_CACHE_DIR", "")
    if Path(cache).name.startswith("codec-test-cache-"):
        shutil.rmtree(cache, ignore_errors=True)


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def kodak_dir() -> Path:
    """The Kodak test images: CODEC_KODAK_DIR, else ../shared/data/kodak."""
    return _shared_dir("kodak")


@pytest.fixture(scope="session")
def kodak_image(kodak_dir) -> Callable[[int], Path]:
    """``kodak_image(n)`` → path of kodimNN.png."""

    def get(n: int) -> Path:
        path = kodak_dir / f"kodim{n:02d}.png"
        if not path.is_file():
            pytest.fail(f"{path} is missing (Kodak set, see ../shared/README.md)", pytrace=False)
        return path

    return get


def synthetic_rgb(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A smooth, photo-like test picture (gradients + a few shapes + mild noise), uint8 HxWx3."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 127 + 100 * np.sin(x / max(width, 1) * 3.1 + seed)
    g = 127 + 100 * np.cos(y / max(height, 1) * 2.7)
    b = 127 + 80 * np.sin((x + y) / max(width + height, 1) * 5.0)
    img = np.stack([r, g, b], axis=-1)
    cy, cx, rad = height * 0.5, width * 0.4, min(width, height) * 0.25
    img[(x - cx) ** 2 + (y - cy) ** 2 < rad**2] = (230, 200, 40)
    img += rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture
def make_image_bytes() -> Callable[..., bytes]:
    """``make_image_bytes(w, h, fmt="PNG", mode="RGB", **save_kwargs)`` → encoded image bytes."""
    from PIL import Image

    def make(
        width: int = 64, height: int = 48, fmt: str = "PNG", mode: str = "RGB", seed: int = 0, **kw
    ) -> bytes:
        img = Image.fromarray(synthetic_rgb(width, height, seed), "RGB")
        if mode != "RGB":
            img = img.convert(mode)
        out = io.BytesIO()
        img.save(out, fmt, **kw)
        return out.getvalue()

    return make


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """SQLite tests use a file database, not the shared-cache in-memory one.

    The gallery's integration tests run a real Celery worker in a thread of the test process; with
    the in-memory database its writes take table locks that make concurrent reads fail at once
    ("database table is locked") instead of waiting, which turned polls into 503s under load.
    """
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        db.setdefault("TEST", {})["NAME"] = str(tmp_path_factory.mktemp("sqlite") / "test.sqlite3")
