"""The benchmark runner behind ``python -m codec bench`` (see `run_bench`)."""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from codec.device import THREADS_ENV, apply_thread_limit
from codec.errors import UsageError
from codec.imageio import load_image
from codec.metrics import lpips, ms_ssim, psnr
from codec.options import EFFORTS, bpp_to_bytes
from codec.tools.bench import report
from codec.tools.bench.codecs import ALL_CODECS, BenchCodec, make_codec
from codec.tools.bench.fidelity_hook import BenchContext, fidelity_section
from codec.tools.bench.machine import describe, load_average
from codec.tools.bench.plots import crop_grid, pick_crop, rd_plot
from codec.tools.bench.speed import measure_speed

#: Keys every row of results.json has (issue 2); rows carry a few more (max_bytes, width, note, …).
ROW_KEYS = ("image", "codec", "target_bpp", "fits", "bytes", "bpp", "psnr", "ms_ssim", "lpips",
            "encode_s", "decode_s")
#: Bump when the meaning of a cached row changes (forces re-measurement).
ROW_VERSION = 1
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".ppm", ".tif", ".tiff", ".bmp")
GRID_CODECS = ("latent", "jpeg", "webp", "avif")
DISPLAY = {"latent": "latent (ours)", "seed": "seed", "jpeg": "JPEG", "webp": "WebP", "avif": "AVIF",
           "jxl": "JPEG XL"}
#: Torch CPU threads for the bench (team rule, and the 2-core targets of issue 2).
BENCH_THREADS = 2


def list_images(images_dir: str | os.PathLike[str], limit: int | None = None) -> list[Path]:
    """Image files in ``images_dir`` (sorted by name), at most ``limit``."""
    folder = Path(images_dir)
    if not folder.is_dir():
        raise UsageError(f"--images {folder} is not a directory")
    paths = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if limit is not None:
        paths = paths[:limit]
    if not paths:
        raise UsageError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return paths


def max_bytes_for(bpp: float, width: int, height: int) -> int:
    """The byte budget of a bpp target (`codec.options.bpp_to_bytes`)."""
    return bpp_to_bytes(bpp, width, height)


def _bkey(bpp: float) -> str:
    return f"{bpp:.4f}"


def _clean(value: Any) -> Any:
    """JSON-safe: non-finite floats (PSNR of identical images) become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def image_metrics(a: np.ndarray, b: np.ndarray) -> dict[str, float | None]:
    """PSNR, MS-SSIM and LPIPS of ``b`` against the original ``a`` (CPU)."""
    return {"psnr": _clean(psnr(a, b)), "ms_ssim": ms_ssim(a, b), "lpips": lpips(a, b)}


class _Store:
    """Files in the output folder: per-row cache, coded streams, grid crops."""
    def __init__(self, out_dir: Path) -> None:
        self.out = out_dir

    def row_path(self, codec: str, stem: str, key: str) -> Path:
        return self.out / "cache" / "rows" / codec / f"{stem}@{key}.json"

    def stream_path(self, codec: BenchCodec, stem: str, key: str) -> Path:
        return self.out / "streams" / codec.name / f"{stem}@{key}{codec.extension}"

    def crop_path(self, codec: str, fingerprint: str, stem: str, key: str) -> Path:
        return self.out / "cache" / "crops" / f"{codec}-{fingerprint}" / f"{stem}@{key}.png"

    def load_row(self, codec: BenchCodec, fingerprint: str, stem: str, key: str) -> dict | None:
        path = self.row_path(codec.name, stem, key)
        try:
            cached = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if cached.get("fingerprint") != fingerprint or cached.get("row_version") != ROW_VERSION:
            return None
        if not self.stream_path(codec, stem, key).is_file():
            return None
        return cached["measurement"]

    def save(self, codec: BenchCodec, fingerprint: str, stem: str, key: str, meas: dict, data: bytes) -> None:
        stream = self.stream_path(codec, stem, key)
        stream.parent.mkdir(parents=True, exist_ok=True)
        stream.write_bytes(data)
        path = self.row_path(codec.name, stem, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"fingerprint": fingerprint, "row_version": ROW_VERSION,
                                   "measurement": meas}, indent=1))
        tmp.replace(path)  # atomic: an interrupted run never leaves half a cache entry


def _measure(codec: BenchCodec, rgb: np.ndarray, max_bytes: int) -> tuple[dict, bytes, np.ndarray]:
    h, w = rgb.shape[:2]
    enc = codec.encode(rgb, max_bytes)
    t0 = time.perf_counter()
    rec = codec.decode(enc.data, (w, h))
    decode_s = time.perf_counter() - t0
    if rec.shape != rgb.shape:
        raise RuntimeError(f"{codec.name} decoded {rec.shape}, expected {rgb.shape}")
    meas = {"fits": bool(enc.fits), "bytes": len(enc.data), "bpp": len(enc.data) * 8 / (w * h),
            **image_metrics(rgb, rec), "encode_s": enc.encode_s, "decode_s": decode_s, "note": enc.note,
            **enc.extra}
    return meas, enc.data, rec


def run_bench(
    images_dir: str | os.PathLike[str],
    bpps: Sequence[float],
    limit: int | None = None,
    effort: str = "default",
    out_dir: str | os.PathLike[str] = "bench-out",
    codecs: Sequence[str] | None = None,
    *,
    device: str | None = None,
    resume: bool = True,
    speed: bool = True,
    fidelity: bool = True,
    grid_images: int = 2,
    log: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Benchmark the latent codec against `seed` and the classical codecs; write the results.

    For each image (sorted, at most ``limit``) × codec (``codecs``, default all of `ALL_CODECS`) ×
    budget in ``bpps`` (``max_bytes = floor(bpp·W·H/8)``) it encodes, decodes and measures PSNR,
    MS-SSIM, LPIPS and encode/decode seconds. ``effort`` (and ``device``, None = the codec's default)
    go to ``codec.encode`` for the ``latent`` rows. Into ``out_dir`` it writes:

    * ``results.json`` – a JSON list, one row per image × codec × budget with the keys `ROW_KEYS`
      (plus ``max_bytes``, ``width``, ``height``, ``note`` and codec details). A codec that cannot
      meet a budget still has its row, with ``fits: false`` and the numbers of the smallest file it
      could make; ``seed`` (no rate control) has one file per image, compared with every budget.
    * ``report.md`` – machine, mean/median tables, what fit and what did not, the issue-2 targets,
      decode speed (CPU; CUDA fp16 batch 1/16 when a GPU is present) and the fidelity-guard hook.
    * ``rd.png`` – bpp vs MS-SSIM and bpp vs LPIPS; ``crops_<bpp>bpp.png`` – for each budget the
      same crop of the first ``grid_images`` images: original | latent | JPEG | WebP | AVIF.
    * ``streams/`` (every coded file) and ``cache/`` (per-row results).

    Incremental: a row whose cache entry matches the current code/library fingerprint of its codec
    is reused (``resume=False`` re-measures everything), so an interrupted run continues where it
    stopped. ``speed=False`` / ``fidelity=False`` skip the decode-speed part and the fidelity-guard
    comparison (issue 5, `codec.tools.bench.fidelity_hook`). torch uses at most `BENCH_THREADS` CPU
    threads. Returns the rows.
    """
    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    names = list(codecs) if codecs else list(ALL_CODECS)
    unknown = [c for c in names if c not in ALL_CODECS]
    if unknown:
        raise UsageError(f"unknown codec(s) {', '.join(unknown)}; known: {', '.join(ALL_CODECS)}")
    names = [c for c in ALL_CODECS if c in names]  # canonical order, no duplicates
    if effort not in EFFORTS:
        raise UsageError(f"effort must be one of {', '.join(EFFORTS)}, got {effort!r}")
    bpps = sorted({float(b) for b in bpps})
    if not bpps or any(b <= 0 or not math.isfinite(b) for b in bpps):
        raise UsageError("bpp budgets must be positive numbers")
    if limit is not None and limit < 1:
        raise UsageError("limit must be at least 1")
    paths = list_images(images_dir, limit)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    store = _Store(out)
    _limit_threads()

    load_at_start = load_average()

    adapters = {n: make_codec(n, effort=effort, device=device) for n in names}
    fingerprints = {n: a.fingerprint() for n, a in adapters.items()}
    rows: list[dict[str, Any]] = []
    new_row_seconds: list[float] = []
    total = len(paths) * sum(len(bpps) if a.budgeted else 1 for a in adapters.values())
    done = 0
    for i, path in enumerate(paths):
        rgb = load_image(path)
        h, w = rgb.shape[:2]
        crop_box = pick_crop(rgb) if i < grid_images else None
        for name, codec in adapters.items():
            fp = fingerprints[name]
            keys = [_bkey(b) for b in bpps] if codec.budgeted else ["natural"]
            measured: dict[str, dict] = {}
            for b, key in zip(bpps if codec.budgeted else [max(bpps)], keys, strict=True):
                done += 1
                meas = store.load_row(codec, fp, path.stem, key) if resume else None
                if meas is None:
                    t0 = time.perf_counter()
                    try:
                        meas, data, rec = _measure(codec, rgb, max_bytes_for(b, w, h))
                    except (KeyboardInterrupt, MemoryError):
                        raise
                    except Exception as exc:  # one broken codec/image must not end a long run
                        meas = {"fits": False, "bytes": None, "bpp": None, "psnr": None, "ms_ssim": None,
                                "lpips": None, "encode_s": None, "decode_s": None,
                                "error": f"{type(exc).__name__}: {exc}"}
                        say(f"[{done}/{total}] {path.name} {name} @{key}: ERROR {meas['error']}")
                    else:
                        store.save(codec, fp, path.stem, key, meas, data)
                        if crop_box is not None:
                            _save_crop(store.crop_path(name, fp, path.stem, key), rec, crop_box)
                        new_row_seconds.append(time.perf_counter() - t0)
                        say(f"[{done}/{total}] {path.name} {name} @{key}: {meas['bytes']} B "
                            f"{'fits' if meas['fits'] else 'OVER'} ms-ssim {meas['ms_ssim']:.4f} "
                            f"lpips {meas['lpips']:.4f} ({new_row_seconds[-1]:.1f} s)")
                measured[key] = meas
            for b in bpps:
                meas = measured[_bkey(b)] if codec.budgeted else measured["natural"]
                rows.append(_row(path.name, name, b, w, h, meas, codec.budgeted))
        _write_results(out, rows)

    row_seconds = statistics.fmean(new_row_seconds) if new_row_seconds else None
    return _finish(out, store, rows, paths, bpps, names, adapters, fingerprints, effort, device,
                   speed, fidelity, grid_images, row_seconds, say, load_at_start)


def _row(image: str, codec: str, bpp: float, w: int, h: int, meas: dict, budgeted: bool) -> dict[str, Any]:
    max_bytes = max_bytes_for(bpp, w, h)
    meas = dict(meas)
    if not budgeted and meas.get("bytes") is not None:
        meas["fits"] = meas["bytes"] <= max_bytes
    row = {"image": image, "codec": codec, "target_bpp": bpp}
    row.update({k: meas.get(k) for k in ROW_KEYS if k not in row})
    row.update({"max_bytes": max_bytes, "width": w, "height": h})
    row.update({k: v for k, v in meas.items() if k not in row})
    return row


def _write_results(out: Path, rows: list[dict[str, Any]]) -> None:
    tmp = out / "results.json.tmp"
    tmp.write_text(json.dumps([{k: _clean(v) for k, v in r.items()} for r in rows], indent=1,
                              allow_nan=False))
    tmp.replace(out / "results.json")


def _limit_threads() -> None:

    if os.environ.get(THREADS_ENV):
        apply_thread_limit()
    elif torch.get_num_threads() > BENCH_THREADS:
        torch.set_num_threads(BENCH_THREADS)


def _save_crop(path: Path, rec: np.ndarray, box: tuple[int, int, int]) -> None:
    x, y, s = box
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(rec[y : y + s, x : x + s])).save(path)


def _finish(out, store, rows, paths, bpps, names, adapters, fingerprints, effort, device, speed,
            fidelity, grid_images, row_seconds, say, load_at_start) -> list[dict[str, Any]]:

    _write_results(out, rows)
    rd_plot(rows, names, out / "rd.png", len(paths))
    grids = _crop_grids(out, store, rows, paths[:grid_images], bpps, names, adapters, fingerprints, say)

    speed_result = None
    if speed and "latent" in names:
        speed_result = _speed(out, paths, fingerprints["latent"], effort, say)
    ctx = BenchContext(images=paths, bpps=bpps, effort=effort, device=device, out_dir=out, rows=rows,
                       load=load_image, metrics=image_metrics, log=say)
    fidelity_md: str | None = "Skipped in this run (`fidelity=False`)."
    if "latent" not in names:
        fidelity_md = "Not run: the guard belongs to the latent codec, which is not in this run."
    elif fidelity:
        try:
            fidelity_md = fidelity_section(ctx)
        except Exception as exc:  # the main results must not be lost to the optional part
            fidelity_md = f"Failed: {type(exc).__name__}: {exc}"
            say(f"fidelity hook failed: {exc}")
    machine = {"load_average_at_start": load_at_start, **describe(device)}
    text = report.render(rows=rows, codecs=names, bpps=bpps, images=[p.name for p in paths], effort=effort,
                         machine=machine, speed=speed_result, fidelity=fidelity_md, grids=grids,
                         row_seconds=row_seconds)
    (out / "report.md").write_text(text, encoding="utf-8")
    return rows


def _speed(out: Path, paths: list[Path], fingerprint: str, effort: str, say) -> dict[str, Any]:
    """Decode-speed part, cached like the rows (same latent fingerprint and effort)."""
    cache = out / "cache" / "speed.json"
    try:
        cached = json.loads(cache.read_text())
        if cached.get("fingerprint") == fingerprint and cached.get("effort") == effort \
                and "heavy" in cached["speed"]:  # older caches timed 0.10 bpp only
            return cached["speed"]
    except (OSError, ValueError):
        pass
    try:
        result = measure_speed(paths, load_image, effort=effort, log=say)
    except (KeyboardInterrupt, MemoryError):
        raise
    except Exception as exc:
        say(f"speed measurement failed: {exc}")
        return {"error": f"{type(exc).__name__}: {exc}"}
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"fingerprint": fingerprint, "effort": effort, "speed": result}, indent=1))
    (out / "speed.json").write_text(json.dumps(result, indent=1))
    return result


def _crop_grids(out, store, rows, paths, bpps, names, adapters, fingerprints, say) -> list[str]:
    """One PNG per budget: original | latent | JPEG | WebP | AVIF on the same crops."""
    cols = [c for c in GRID_CODECS if c in names]
    if not cols or not paths:
        return []
    files = []
    for b in bpps:
        key = _bkey(b)
        grid_rows = []
        for path in paths:
            rgb = load_image(path)
            box = pick_crop(rgb)
            x, y, s = box
            panels = [(np.ascontiguousarray(rgb[y : y + s, x : x + s]),
                       ["original", f"{path.name} {s}×{s} at ({x},{y})"])]
            for name in cols:
                row = next((r for r in rows if r["image"] == path.name and r["codec"] == name
                            and r["target_bpp"] == b), None)
                if row is None or row.get("error"):
                    continue
                try:
                    panels.append(_panel(store, adapters[name], fingerprints[name], path, key, rgb, box, row))
                except Exception as exc:
                    say(f"crop grid: {name} on {path.name} @{key} failed: {exc}")
            grid_rows.append(panels)
        name = f"crops_{b:.2f}bpp.png"
        crop_grid(grid_rows, out / name,
                  f"Budget {b:g} bpp, crops at 1:1; each panel says its own bytes.\nA classical codec that "
                  "cannot reach the budget at full size is shown downscaled to fit: that is not the file "
                  "of its row in the table (which does not fit and is left out of the means).")
        files.append(name)
    return files


def _panel(store: _Store, codec: BenchCodec, fp: str, path: Path, key: str, rgb: np.ndarray,
           box: tuple[int, int, int], row: dict) -> tuple[np.ndarray, list[str]]:
    x, y, s = box
    h, w = rgb.shape[:2]
    label = DISPLAY.get(codec.name, codec.name)
    if not row["fits"] and codec.name in ("jpeg", "webp", "avif", "jxl"):
        # The gallery's comparison: shrink until the format's quality floor fits the budget.
        from codec.baselines import decode_baseline, encode_at_budget

        crop_file = store.crop_path(codec.name + "-downscale", fp, path.stem, key)
        label_file = crop_file.with_suffix(".json")
        if crop_file.is_file() and label_file.is_file():
            return np.asarray(Image.open(crop_file).convert("RGB")), json.loads(label_file.read_text())
        r = encode_at_budget(rgb, codec.name, row["max_bytes"], mode="downscale")
        rec = decode_baseline(r)
        line2 = (f"downscaled to {r.width}×{r.height} to fit" if r.fits else
                 f"OVER budget even downscaled ({len(r.data):,} B)")
        lines = [f"{label} {len(r.data):,} B ({r.bpp:.3f} bpp)", line2]
        _save_crop(crop_file, rec, box)
        label_file.write_text(json.dumps(lines))
        return rec[y : y + s, x : x + s], lines
    crop_file = store.crop_path(codec.name, fp, path.stem, key)
    if crop_file.is_file():
        crop = np.asarray(Image.open(crop_file).convert("RGB"))
    else:
        rec = codec.decode(store.stream_path(codec, path.stem, key).read_bytes(), (w, h))
        _save_crop(crop_file, rec, box)
        crop = rec[y : y + s, x : x + s]
    if not row["fits"]:
        line2 = f"OVER budget ({row['bytes']:,} B > {row['max_bytes']:,} B)"
    elif "quality" in row:
        line2 = f"quality {row['quality']}"
    elif row.get("coded_width") and (row["coded_width"], row.get("coded_height")) != (w, h):
        line2 = f"coded at {row['coded_width']}×{row['coded_height']}, levels {row.get('levels', '?')}"
    else:
        line2 = f"levels {row['levels']}" if row.get("levels") else ""
    return crop, [f"{label} {row['bytes']:,} B ({row['bpp']:.3f} bpp)", line2]
