"""The bench runner end to end on one small Kodak crop, one budget and a subset of codecs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from codec.errors import UsageError
from codec.tools.bench import ROW_KEYS, run_bench
from codec.tools.bench.runner import max_bytes_for

CODECS = ["latent", "seed", "jpeg", "webp"]
BPP = 0.3
QUICK = {"speed": False, "fidelity": False}  # the speed/fidelity parts are for `make bench`


@pytest.fixture(scope="module")
def bench(tmp_path_factory, kodak_image):
    images = tmp_path_factory.mktemp("images")
    Image.open(kodak_image(23)).crop((264, 120, 456, 248)).save(images / "k23crop.png")  # 192×128
    out = tmp_path_factory.mktemp("bench")
    lines: list[str] = []
    rows = run_bench(images, [BPP], None, "fast", out, codecs=CODECS, log=lines.append, **QUICK)
    return images, out, rows, lines


def test_rows_have_the_keys_and_sane_values(bench):
    _images, out, rows, _lines = bench
    saved = json.loads((out / "results.json").read_text())
    assert saved == json.loads(json.dumps(rows))
    assert [r["codec"] for r in saved] == CODECS
    budget = max_bytes_for(BPP, 192, 128)
    for r in saved:
        assert set(ROW_KEYS) <= set(r), r
        assert r["image"] == "k23crop.png" and r["target_bpp"] == BPP and r["max_bytes"] == budget
        assert "error" not in r, r
        assert isinstance(r["fits"], bool) and r["fits"] == (r["bytes"] <= budget)
        assert r["bpp"] == pytest.approx(r["bytes"] * 8 / (192 * 128))
        assert 15 < r["psnr"] < 50 and 0.5 < r["ms_ssim"] <= 1.0 and 0.0 <= r["lpips"] < 0.8
        assert r["encode_s"] > 0 and r["decode_s"] > 0
        assert (out / "streams" / r["codec"]).is_dir()
    by = {r["codec"]: r for r in saved}
    assert by["jpeg"]["fits"] and by["webp"]["fits"] and by["latent"]["fits"]  # 0.3 bpp is generous


def test_report_plot_and_crop_grid(bench):
    _images, out, _rows, _lines = bench
    report = (out / "report.md").read_text()
    for text in ("## Machine", "torch:", "cpu:", "| latent | 0.3 | 1/1 |", "| jpeg | 0.3 |",
                 "## What fit and what did not", "## Fidelity guard (issue 5)"):
        assert text in report, text
    for name in ("rd.png", "crops_0.30bpp.png"):
        with Image.open(out / name) as im:
            assert im.format == "PNG" and im.width > 400 and im.height > 150
            pixels = np.asarray(im.convert("L"))
            assert pixels.std() > 10  # not a blank canvas


def test_second_run_reuses_the_cache_and_redoes_stale_rows(bench):
    images, out, rows, first_lines = bench
    assert sum(" fits " in ln or " OVER " in ln for ln in first_lines) == len(CODECS)
    stale = out / "cache" / "rows" / "jpeg" / f"k23crop@{BPP:.4f}.json"
    entry = json.loads(stale.read_text())
    entry["fingerprint"] = "stale"
    stale.write_text(json.dumps(entry))
    lines: list[str] = []
    again = run_bench(images, [BPP], None, "fast", out, codecs=CODECS, log=lines.append, **QUICK)
    measured = [ln for ln in lines if " fits " in ln or " OVER " in ln]
    assert len(measured) == 1 and " jpeg " in measured[0]
    strip = ("encode_s", "decode_s", "search_trials", "final_encode_s")
    assert [{k: v for k, v in r.items() if k not in strip} for r in again] == [
        {k: v for k, v in r.items() if k not in strip} for r in rows]


def test_bad_arguments(tmp_path):
    with pytest.raises(UsageError, match="unknown codec"):
        run_bench(tmp_path, [0.1], None, "fast", tmp_path / "o", codecs=["png"])
    with pytest.raises(UsageError, match="no images"):
        run_bench(tmp_path, [0.1], None, "fast", tmp_path / "o", codecs=["jpeg"])


def test_latent_fingerprint_covers_the_library_not_the_tools():
    """The cache key of the latent rows hashes the whole library (encoder, decoder, container, zoo
    weights) and none of the tools: moving the bench must not shrink it to the bench's own folder."""
    from codec.tools.bench import codecs

    files = codecs._codec_files(exclude=codecs.LATENT_EXCLUDE)
    rel = {p.relative_to(codecs.CODEC_DIR).as_posix() for p in files}
    zoo = "zoo/taesd_encoder_rdo.safetensors"
    for needed in ("encoder/rdo.py", "decoder.py", "container/header.py", zoo):
        assert needed in rel, needed
    assert not any(r.startswith("tools/") for r in rel)


def test_anchor_fingerprint_ignores_metrics_the_rows_do_not_hold():
    """A classical row holds PSNR / MS-SSIM / LPIPS only: its cache key hashes those metric modules
    and the baselines, so a new metric file (e.g. seams.py) keeps every cached AVIF/WebP/JXL row."""
    from codec.tools.bench import codecs

    rel = {p.relative_to(codecs.CODEC_DIR).as_posix()
           for p in codecs._codec_files(include=["baselines.py", *codecs.ROW_METRIC_FILES])}
    assert {"baselines.py", "metrics/psnr.py", "metrics/msssim.py", "metrics/lpips_alex.py"} <= rel
    assert "metrics/seams.py" not in rel and "metrics/identity.py" not in rel


def test_speed_section_judges_both_budgets_against_the_decode_target():
    from codec.tools.bench.report import DECODE_TARGET_S, _speed

    speed = {"image": "k.png", "bpp": 0.1, "bytes": 4900, "effort": "default", "cpu_threads": 2,
             "cpu_decode_s_median": 0.8, "cpu_decode_repeats": 5, "cpu_encode_s": 9.0,
             "heavy": {"bpp": 0.5, "bytes": 24000, "cpu_encode_s": 40.0, "latent_shape": [4, 64, 96],
                       "residual": True, "cpu_decode_s_median": DECODE_TARGET_S + 0.1}}
    text = _speed(speed)
    assert "decode: 0.800 s" in text and "met)" in text
    assert "at 0.5 bpp (24000 B: latent 4×64×96, residual layer)" in text
    assert f"decode {DECODE_TARGET_S + 0.1:.3f} s (target ≤ {DECODE_TARGET_S:g} s: NOT met)" in text
    del speed["heavy"]  # a speed.json written before the second budget was timed
    assert "0.5 bpp" not in _speed(speed)
