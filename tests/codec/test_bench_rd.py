"""The RD bench (codec.tools.bench.rd): BD table from rows, labelled crop grids, the held-out set."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from codec.tools.bench import rd
from codec.tools.bench.heldout import _calibration_names, heldout_windows, pack_windows

BPPS = (0.03, 0.06, 0.1, 0.15, 0.25, 0.4, 0.6)


def _rows(codec: str, image: str, factor: float, downscaled: bool = False) -> list[dict]:
    out = []
    for b in BPPS:
        q = np.log2(b / 0.03)
        out.append({"codec": codec, "image": image, "target_bpp": b, "bpp": b * factor, "fits": True,
                    "bytes": int(b * factor * 1000), "psnr": 20 + 3 * q, "ms_ssim": 1 - 0.3 * 2 ** (-q),
                    "lpips": 0.5 * 2 ** (-q / 2), "encode_s": 1.0, "decode_s": 0.1,
                    "downscaled": downscaled, "coded_width": 32 if downscaled else 64, "coded_height": 32})
    return out


def test_bd_table_recovers_a_known_rate_factor() -> None:
    rows = _rows("latent-fast", "a.png", 1.0) + _rows("avif", "a.png", 2.0) + _rows("webp", "a.png", 0.5)
    rows += _rows("latent-fast", "b.png", 1.0) + _rows("avif", "b.png", 2.0)
    bd = rd.bd_table(rows, ["latent-fast"], ["avif", "webp"])
    for key in ("psnr", "ms_ssim", "lpips"):
        assert bd["latent-fast"]["avif"][key]["median"] == pytest.approx(-50.0, abs=0.1)
        assert bd["latent-fast"]["avif"][key]["n"] == 2
        assert bd["latent-fast"]["webp"][key]["median"] == pytest.approx(100.0, abs=0.1)
        assert bd["latent-fast"]["webp"][key]["n"] == 1  # only where both ran


def test_crop_grid_per_image_labels_downscaled_files(tmp_path) -> None:
    cache = rd.Cache(tmp_path / "cache")
    rows = []
    for img in ("a.png", "b.png"):
        rows += _rows("latent-fast", img, 1.0) + _rows("avif-ds", img, 1.0, downscaled=True)
    crop = np.zeros((16, 16, 3), np.uint8)
    for r in rows:
        cache.save("s", r["image"][:-4], r["codec"], r["target_bpp"], "fp", r, crop)
    made = rd.crop_grids(rows, cache, "s", ["latent-fast", "avif-ds"], tmp_path / "crops",
                         fingerprints={"latent-fast": "fp", "avif-ds": "fp"})
    assert [m[0] for m in made] == ["a.png", "b.png"]  # every image gets its grid
    assert all((tmp_path / "crops" / f).is_file() for _, f in made)
    assert Image.open(tmp_path / "crops" / made[0][1]).width > 32


def test_heldout_windows_overlap_no_training_crop_and_no_calibration_photo() -> None:
    wins = heldout_windows(4)
    assert len(wins) == 4
    pack = pack_windows()
    skip = _calibration_names(pack[0].path.parents[1])
    for w in wins:
        assert w.path.name not in skip
        for o in pack:
            if o.path == w.path:
                assert abs(o.y - w.y) >= 256 or abs(o.x - w.x) >= 256


def test_cache_keeps_rows_of_two_fingerprints_apart(tmp_path) -> None:
    """Two codec versions (or backends) alternating on one cache must not overwrite each other."""
    cache = rd.Cache(tmp_path / "cache")
    a, b = np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 200, np.uint8)
    cache.save("s", "img", "latent-fast", 0.1, "fp-old", {"bytes": 1}, a)
    cache.save("s", "img", "latent-fast", 0.1, "fp-new", {"bytes": 2}, b)
    assert cache.load("s", "img", "latent-fast", 0.1, "fp-old") == {"bytes": 1}
    assert cache.load("s", "img", "latent-fast", 0.1, "fp-new") == {"bytes": 2}
    assert cache.load("s", "img", "latent-fast", 0.1, "fp-other") is None
    assert cache.crop("s", "img", "latent-fast", 0.1, "fp-old").max() == 0
    assert cache.crop("s", "img", "latent-fast", 0.1, "fp-new").max() == 200


def test_cache_reads_entries_written_under_the_legacy_name(tmp_path) -> None:
    legacy = tmp_path / "cache" / "s" / "img" / "avif@0.1000.json"
    legacy.parent.mkdir(parents=True)
    legacy.write_text(json.dumps({"fingerprint": "fp", "row_version": rd.ROW_VERSION, "row": {"bytes": 3}}))
    Image.fromarray(np.full((4, 4, 3), 7, np.uint8)).save(legacy.with_suffix(".png"))
    cache = rd.Cache(tmp_path / "cache")
    assert cache.load("s", "img", "avif", 0.1, "fp") == {"bytes": 3}
    assert cache.load("s", "img", "avif", 0.1, "other") is None
    assert cache.crop("s", "img", "avif", 0.1, "fp").max() == 7


def test_monotone_breaks_names_each_step_that_gets_worse_with_more_bytes() -> None:
    rows = _rows("latent-default", "a.png", 1.0) + _rows("latent-default", "b.png", 1.0)
    rows += _rows("avif", "a.png", 2.0)
    assert rd.monotone_breaks(rows, "latent-default") == (12, [])
    worse = next(r for r in rows if r["image"] == "b.png" and r["target_bpp"] == 0.25)
    worse["lpips"] += 0.2  # 0.25 bpp now looks worse than 0.15 bpp (and 0.4 better than it again)
    steps, breaks = rd.monotone_breaks(rows, "latent-default")
    assert steps == 12 and len(breaks) == 1
    assert breaks[0].startswith("b.png 0.15 → 0.25 bpp: lpips")
    assert rd.monotone_breaks(rows, "webp") == (0, [])
