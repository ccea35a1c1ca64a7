"""CLI exit codes and one-line errors (subprocess: the real `python -m codec`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codec", *args], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env
    )


@pytest.fixture(scope="module")
def small_png(tmp_path_factory, kodak_image) -> Path:
    path = tmp_path_factory.mktemp("cli") / "in.png"
    rgb = np.asarray(Image.open(kodak_image(3)).convert("RGB"))[100:228, 200:392]
    Image.fromarray(rgb).save(path)
    return path


def test_encode_info_decode_ok(small_png: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.sdl"
    r = run("encode", str(small_png), str(out), "--max-bytes", "600", "--effort", "fast")
    assert r.returncode == 0, r.stderr
    assert 0 < out.stat().st_size <= 600
    r = run("info", str(out))
    assert r.returncode == 0, r.stderr
    meta = json.loads(r.stdout)
    assert (meta["width"], meta["height"]) == (192, 128)
    for ext in ("png", "jpg", "webp"):
        r = run("decode", str(out), str(tmp_path / f"y.{ext}"))
        assert r.returncode == 0, r.stderr
        assert Image.open(tmp_path / f"y.{ext}").size == (192, 128)


def test_usage_errors_exit_2(small_png: Path, tmp_path: Path) -> None:
    for args in (
        [],
        ["encode", str(small_png)],
        ["encode", str(small_png), str(tmp_path / "o"), "--quality", "500"],
        ["encode", str(small_png), str(tmp_path / "o"), "--quality", "5", "--bpp", "0.1"],
        ["decode", str(small_png), str(tmp_path / "o.bmp")],
    ):
        r = run(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert "Traceback" not in r.stderr


def test_corrupt_input_exits_3_with_one_line(tmp_path: Path, small_png: Path) -> None:
    bad = tmp_path / "bad.sdl"
    bad.write_bytes(b"\x00garbage" * 10)
    for args in (["info", str(bad)], ["decode", str(bad), str(tmp_path / "o.png")],
                 ["encode", str(bad), str(tmp_path / "o.sdl")], ["info", str(tmp_path / "missing")]):
        r = run(*args)
        assert r.returncode == 3, (args, r.stderr)
        assert "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1


def test_missing_weights_exit_4(small_png: Path, tmp_path: Path) -> None:
    import os

    env = dict(os.environ, CODEC_MODEL_DIR=str(tmp_path), CODEC_NO_SHARED_FALLBACK="1")
    r = run("encode", str(small_png), str(tmp_path / "o.sdl"), "--effort", "fast", env=env)
    assert r.returncode == 4, r.stderr
    assert "taesd_encoder.safetensors" in r.stderr


def test_decode_max_pixels_exits_3(small_png: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.sdl"
    assert run("encode", str(small_png), str(out), "--max-bytes", "600", "--effort", "fast").returncode == 0
    r = run("decode", str(out), str(tmp_path / "y.png"), "--max-pixels", str(192 * 128 - 1))
    assert r.returncode == 3, r.stderr
    assert "limit" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert run("decode", str(out), str(tmp_path / "y.png"), "--max-pixels", str(192 * 128)).returncode == 0
