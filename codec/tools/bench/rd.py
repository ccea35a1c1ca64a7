"""Rate–distortion bench like the field: RD curves + BD-rate of the latent codec vs AVIF/WebP/JPEG XL.

    python -m codec.tools.bench.rd --out docs/bench/rd              # `make bench-rd`: the full run
    python -m codec.tools.bench.rd --kodak-limit 8 --heldout 8 --default-limit 3   # a subset

Two image sets: Kodak, and ``heldout`` = training-set windows the tuned encoder never saw and no
calibration read (`codec.tools.bench.heldout`). Every image is encoded at every target bpp by:

- ``latent-<effort>``: ``codec.encode(max_bytes=...)`` (fidelity guard on, as shipped);
- ``avif``, ``webp``, ``jxl``: `codec.baselines.encode_at_budget` quality search at full size;
- ``avif-ds``: AVIF with downscale-to-fit (``mode="downscale"``): below its quality floor the file is
  a SMALLER picture, upsampled on decode (labelled "downscaled" everywhere).

Each row is the real file: when a codec cannot reach the budget its smallest file is still a valid
RD point at its own rate (``fits`` false); curves and BD-rates use actual rates. Rows are cached in
``--cache`` (keyed by the codec's fingerprint), so a rerun only measures what changed.

BD-rate (`codec.tools.bench.bdrate`): per image, PCHIP of log-rate over the shared quality range, for
PSNR (dB), MS-SSIM (as dB: -10·log10(1 − MS-SSIM)) and LPIPS (as −LPIPS); median and mean over
the images where the curves overlap. Negative = the latent needs fewer bytes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import itertools
import json
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from codec.baselines import encode_at_budget
from codec.imageio import load_image
from codec.options import bpp_to_bytes
from codec.tools.bench.bdrate import bd_rate, msssim_db
from codec.tools.bench.codecs import BaselineCodec, BenchCodec, Encoded, LatentCodec
from codec.tools.bench.heldout import build_heldout
from codec.tools.bench.machine import describe, load_average
from codec.tools.bench.plots import _agg_figure, crop_grid, pick_crop
from codec.tools.bench.runner import image_metrics, list_images
from codec.weights import kodak_dir, project_root

BPPS = (0.03, 0.06, 0.10, 0.15, 0.25, 0.40, 0.60)
ANCHORS = ("avif", "avif-ds", "webp", "jxl")
METRICS = {  # key → (label, quality transform for BD-rate: higher is better)
    "psnr": ("PSNR (dB)", lambda v: v),
    "ms_ssim": ("MS-SSIM (dB = -10·log10(1−MS-SSIM))", msssim_db),
    "lpips": ("LPIPS-alex (−LPIPS)", lambda v: -v),
}
LABEL = {"avif": "AVIF", "avif-ds": "AVIF (downscale-to-fit)", "webp": "WebP", "jxl": "JPEG XL"}
COLORS = {
    "latent-fast": "#ff9896",
    "latent-default": "#d62728",
    "latent-max": "#8c564b",
    "avif": "#1f77b4",
    "avif-ds": "#17becf",
    "webp": "#2ca02c",
    "jxl": "#9467bd",
}
GRID_BPPS = (0.06, 0.15, 0.40)
ROW_VERSION = 1


def _label(name: str) -> str:
    if name.startswith("latent-"):
        return f"latent (ours, effort {name.split('-', 1)[1]})"
    return LABEL.get(name, name)


#: a step to a larger budget counts as "worse" when MS-SSIM drops or LPIPS rises by more than this
MONOTONE_TOL = 1e-4


def monotone_breaks(rows: list[dict], codec: str, tol: float = MONOTONE_TOL) -> tuple[int, list[str]]:
    """Issue 12's "quality monotone in bytes": for each image, ``codec``'s rows in order of target bpp;
    returns (steps checked, one line per step where the larger budget lowered MS-SSIM or raised LPIPS)."""
    by_image: dict[str, list[dict]] = {}
    for r in rows:
        if r["codec"] == codec:
            by_image.setdefault(r["image"], []).append(r)
    steps, breaks = 0, []
    for image, rs in sorted(by_image.items()):
        rs.sort(key=lambda r: r["target_bpp"])
        for lo, hi in itertools.pairwise(rs):
            steps += 1
            worse = [f"{k} {lo[k]:.4f} → {hi[k]:.4f}" for k, sign in (("ms_ssim", -1), ("lpips", 1))
                     if sign * (hi[k] - lo[k]) > tol]
            if worse:
                breaks.append(f"{image} {lo['target_bpp']} → {hi['target_bpp']} bpp: {', '.join(worse)}")
    return steps, breaks


class AvifDownscale(BaselineCodec):
    """AVIF with downscale-to-fit: below its quality floor the file is a smaller picture."""

    def __init__(self) -> None:
        super().__init__("avif", mode="downscale")
        self.name = "avif-ds"

    def encode(self, rgb: np.ndarray, max_bytes: int) -> Encoded:
        r = encode_at_budget(rgb, "avif", max_bytes, mode="downscale")
        extra = {"quality": r.quality, "coded_width": r.width, "coded_height": r.height}
        return Encoded(r.data, r.fits, r.encode_s, r.note, extra)


def make(name: str) -> BenchCodec:
    if name.startswith("latent-"):
        return LatentCodec(effort=name.split("-", 1)[1])
    if name == "avif-ds":
        return AvifDownscale()
    return BaselineCodec(name)


class Cache:
    """One JSON per (set, image, codec, bpp, codec fingerprint) + the crop window of its decode (for
    the grids).

    The fingerprint is part of the file name, so runs of two codec versions (or two inference backends)
    keep each other's rows instead of overwriting them: a rerun of either measures nothing again.
    Entries written before the name carried it (``<codec>@<bpp>.json``) are still read when their
    stored fingerprint matches.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(
        self, set_name: str, stem: str, codec: str, bpp: float, ext: str, fp: str | None = None
    ) -> Path:
        tag = "" if fp is None else "-" + hashlib.sha256(fp.encode()).hexdigest()[:12]
        return self.root / set_name / stem / f"{codec}@{bpp:.4f}{tag}{ext}"

    def load(self, set_name: str, stem: str, codec: str, bpp: float, fp: str) -> dict | None:
        for p in (self._path(set_name, stem, codec, bpp, ".json", fp),
                  self._path(set_name, stem, codec, bpp, ".json")):  # the legacy name
            try:
                d = json.loads(p.read_text())
            except (OSError, ValueError):
                continue
            if d.get("fingerprint") == fp and d.get("row_version") == ROW_VERSION:
                return d["row"]
        return None

    def save(
        self, set_name: str, stem: str, codec: str, bpp: float, fp: str, row: dict, crop: np.ndarray
    ) -> None:
        target = self._path(set_name, stem, codec, bpp, ".json", fp)
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(crop).save(self._path(set_name, stem, codec, bpp, ".png", fp))
        tmp = self._path(set_name, stem, codec, bpp, ".tmp", fp)
        tmp.write_text(json.dumps({"fingerprint": fp, "row_version": ROW_VERSION, "row": row}))
        tmp.replace(target)  # atomic: an interrupted run never leaves half an entry

    def crop(
        self, set_name: str, stem: str, codec: str, bpp: float, fp: str | None = None
    ) -> np.ndarray | None:
        """The crop saved with the row of fingerprint ``fp`` (None: the legacy un-keyed file only)."""
        paths = [self._path(set_name, stem, codec, bpp, ".png")]
        if fp is not None:
            paths.insert(0, self._path(set_name, stem, codec, bpp, ".png", fp))
        p = next((q for q in paths if q.is_file()), None)
        return np.asarray(Image.open(p).convert("RGB")) if p is not None else None


def measure(
    codec: BenchCodec, rgb: np.ndarray, bpp: float, window: tuple[int, int, int]
) -> tuple[dict, np.ndarray]:
    h, w = rgb.shape[:2]
    max_bytes = bpp_to_bytes(bpp, w, h)
    enc = codec.encode(rgb, max_bytes)
    t0 = time.perf_counter()
    rec = codec.decode(enc.data, (w, h))
    decode_s = time.perf_counter() - t0
    x, y, s = window
    row = {
        "target_bpp": bpp,
        "max_bytes": max_bytes,
        "fits": bool(enc.fits),
        "bytes": len(enc.data),
        "bpp": len(enc.data) * 8 / (w * h),
        **image_metrics(rgb, rec),
        "encode_s": round(enc.encode_s, 3),
        "decode_s": round(decode_s, 3),
        "note": enc.note,
        **{k: v for k, v in enc.extra.items() if k in ("coded_width", "coded_height", "levels", "quality")},
    }
    row["downscaled"] = bool(row.get("coded_width", w) < w or row.get("coded_height", h) < h)
    return row, np.ascontiguousarray(rec[y : y + s, x : x + s])


def run_set(
    set_name: str,
    paths: Sequence[Path],
    plan: dict[str, Sequence[Path]],
    bpps: Sequence[float],
    cache: Cache,
    log=print,
    fps: dict[str, str] | None = None,
) -> list[dict]:
    """Measure (or load) every row of one set; ``plan``: codec name → the images it runs on.
    ``fps``: codec name → the fingerprint its rows are stored under (computed here when missing)."""
    rows: list[dict] = []
    fps = {} if fps is None else fps
    for path in paths:
        rgb = load_image(path)
        window = pick_crop(rgb)
        for name, imgs in plan.items():
            if path not in imgs:
                continue
            codec = make(name)
            fp = fps.setdefault(name, codec.fingerprint())
            for bpp in bpps:
                row = cache.load(set_name, path.stem, name, bpp, fp)
                if row is None:
                    t0 = time.perf_counter()
                    row, crop = measure(codec, rgb, bpp, window)
                    row.update(
                        image=path.name,
                        codec=name,
                        set=set_name,
                        width=rgb.shape[1],
                        height=rgb.shape[0],
                        crop=list(window),
                    )
                    cache.save(set_name, path.stem, name, bpp, fp, row, crop)
                    log(
                        f"[{set_name}] {path.name} {name} @{bpp}: {row['bytes']} B psnr {row['psnr']:.2f} "
                        f"ms-ssim {row['ms_ssim']:.4f} lpips {row['lpips']:.4f} "
                        f"({time.perf_counter() - t0:.1f} s)"
                        f"  load {load_average()}"
                    )
                rows.append(row)
    return rows


# ----------------------------------------------------------------------------------------- analysis


def bd_table(rows: list[dict], tests: Sequence[str], anchors: Sequence[str] = ANCHORS) -> dict[str, Any]:
    """{test: {anchor: {metric: {median, mean, n, per_image}}}} over images both codecs ran on."""
    by: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        by.setdefault((r["codec"], r["image"]), []).append(r)
    out: dict[str, Any] = {}
    for t in tests:
        for a in anchors:
            for key, (_, tf) in METRICS.items():
                per: dict[str, float] = {}
                for (c, img), trows in by.items():
                    if c != t or (a, img) not in by:
                        continue
                    arows = by[(a, img)]
                    v = bd_rate(
                        [r["bpp"] for r in arows],
                        [tf(r[key]) for r in arows],
                        [r["bpp"] for r in trows],
                        [tf(r[key]) for r in trows],
                    )
                    if v is not None:
                        per[img] = round(v, 2)
                vals = list(per.values())
                out.setdefault(t, {}).setdefault(a, {})[key] = {
                    "median": round(statistics.median(vals), 1) if vals else None,
                    "mean": round(statistics.fmean(vals), 1) if vals else None,
                    "n": len(vals),
                    "per_image": per,
                }
    return out


def curve(rows: list[dict], name: str, key: str, images: set[str]) -> tuple[list[float], list[float]]:
    """Mean actual bpp and mean metric per target bpp over ``images`` (the images every codec ran)."""
    xs, ys = [], []
    for bpp in sorted({r["target_bpp"] for r in rows}):
        sel = [r for r in rows if r["codec"] == name and r["target_bpp"] == bpp and r["image"] in images]
        if sel and len(sel) == len(images) and all(r[key] is not None for r in sel):
            xs.append(statistics.fmean(r["bpp"] for r in sel))
            ys.append(statistics.fmean(r[key] for r in sel))
    return xs, ys


def rd_plots(rows: list[dict], codecs: Sequence[str], path: Path, title: str) -> None:
    fig = _agg_figure(15, 4.6)
    axes = fig.subplots(1, 3)
    for ax, (key, (label, _)) in zip(axes, METRICS.items(), strict=True):
        for name in codecs:
            imgs = {r["image"] for r in rows if r["codec"] == name}
            xs, ys = curve(rows, name, key, imgs)
            if not xs:
                continue
            pts = [r for r in rows if r["codec"] == name]
            ax.scatter([r["bpp"] for r in pts], [r[key] for r in pts], s=6, alpha=0.2, color=COLORS.get(name))
            ax.plot(
                xs,
                ys,
                marker="o",
                ms=3,
                color=COLORS.get(name),
                label=f"{_label(name)} (n={len(imgs)})",
                ls="--" if name == "avif-ds" else "-",
            )
        ax.set_xscale("log")
        ax.set_xlabel("bits per pixel (actual, log scale)")
        ax.set_ylabel(label.split(" (")[0] + (" (lower is better)" if key == "lpips" else ""))
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.suptitle(
        f"{title}: mean over the images of each curve per target bpp (dots: single files)", fontsize=10
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def crop_grids(
    rows: list[dict],
    cache: Cache,
    set_name: str,
    codecs: Sequence[str],
    out: Path,
    bpps: Sequence[float] = GRID_BPPS,
    fingerprints: Mapping[str, str] | None = None,
) -> list[tuple[str, str]]:
    """One grid per image: a row per target bpp, a panel per codec; returns [(image, file)].

    ``fingerprints`` (codec name → fingerprint of the rows) picks the crops of those rows."""
    fingerprints = fingerprints or {}
    made = []
    images = sorted({r["image"] for r in rows})
    for img in images:
        stem = Path(img).stem
        grid_rows = []
        for bpp in bpps:
            panels = []
            for name in codecs:
                r = next(
                    (x for x in rows if x["image"] == img and x["codec"] == name and x["target_bpp"] == bpp),
                    None,
                )
                crop = cache.crop(set_name, stem, name, bpp, fingerprints.get(name))
                if r is None or crop is None:
                    continue
                size = f"{r['bytes']} B, {r['bpp']:.3f} bpp" + ("" if r["fits"] else " OVER budget")
                short = {"avif-ds": "AVIF-fit", "jxl": "JXL"}
                tag = short.get(name) or _label(name).replace("latent (ours, effort ", "latent ")
                tag = tag.replace(")", "")
                if r.get("downscaled"):
                    tag += f" DOWNSCALED {r['coded_width']}×{r['coded_height']}"
                panels.append((crop, [tag, size]))
            if panels:
                grid_rows.append(panels)
        if not grid_rows:
            continue
        f = out / f"{stem}.png"
        crop_grid(
            grid_rows,
            f,
            f"{img}: rows = budgets {', '.join(str(b) for b in bpps)} bpp; each panel says "
            "its own bytes; 'DOWNSCALED' = a smaller picture, upsampled; AVIF-fit = AVIF downscale-to-fit",
        )
        made.append((img, f.name))
    return made


def _fmt(v: Any) -> str:
    return "–" if v is None else f"{v:+.1f} %"


def write_report(
    out: Path,
    sets: dict[str, list[dict]],
    bd: dict[str, Any],
    meta: dict[str, Any],
    grids: dict[str, list[tuple[str, str]]],
) -> None:
    lines = [
        "# RD bench: BD-rate of the latent codec vs AVIF / WebP / JPEG XL",
        "",
        f"Made by `{meta['command']}` on {meta['date']} UTC; wall {meta['seconds']:.0f} s.",
        "",
        f"Machine: {meta['machine'].get('cpu')}, {meta['machine'].get('cpu_cores')} cores, torch "
        f"{meta['machine'].get('torch')} ({meta['torch_threads']} thread), load average at start "
        f"{meta['load_start']}, at end {meta['load_end']} (a shared machine: times are not speeds).",
        "",
        "What ran:",
        "",
    ]
    for s, info in meta["plan"].items():
        for c, imgs in info.items():
            n = sum(1 for r in sets[s] if r["codec"] == c)
            lines.append(f"- {s}: `{c}` on {len(imgs)} images ({n} rows): {', '.join(imgs)}")
    lines += [
        "",
        f"Target rates (bpp): {', '.join(str(b) for b in meta['bpps'])}. Every row is the real "
        "file: a codec that cannot reach a budget contributes its smallest file at its own rate.",
        "",
        "## BD-rate (latent vs anchor; negative = fewer bytes for the same quality)",
        "",
        "Per image: PCHIP interpolation of log(bpp) over the quality range both curves share "
        "(`codec/tools/bench/bdrate.py`); median (mean) over the images, n = images with overlap. "
        "MS-SSIM in dB (-10·log10(1−MS-SSIM)), LPIPS as −LPIPS.",
        "",
    ]
    for s in sets:
        for t, per_anchor in bd[s].items():
            lines += [f"### {s}: `{t}`", "", "| anchor | PSNR | MS-SSIM | LPIPS |", "|---|---|---|---|"]
            for a, m in per_anchor.items():
                cells = [f"{_fmt(m[k]['median'])} ({_fmt(m[k]['mean'])}, n={m[k]['n']})" for k in METRICS]
                lines.append(f"| {LABEL[a]} | " + " | ".join(cells) + " |")
            lines.append("")
    for s, rows in sets.items():
        lines += [
            f"## {s}: means per target bpp",
            "",
            f"![RD {s}](rd_{s}.png)",
            "",
            "| codec | target bpp | n | fits | actual bpp (mean) | PSNR | MS-SSIM | LPIPS | "
            "median encode s | median decode s |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name in sorted({r["codec"] for r in rows}):
            for bpp in meta["bpps"]:
                sel = [r for r in rows if r["codec"] == name and r["target_bpp"] == bpp]
                if not sel:
                    continue
                fits = sum(r["fits"] for r in sel)
                ds = sum(r.get("downscaled", False) for r in sel)
                def mean(k: str, sel: list[dict] = sel) -> float:
                    return statistics.fmean(r[k] for r in sel)

                def med(k: str, sel: list[dict] = sel) -> float:
                    return statistics.median(r[k] for r in sel)

                fit_cell = f"{fits}" + (f" ({ds} downscaled)" if ds else "")
                lines.append(
                    f"| {_label(name)} | {bpp} | {len(sel)} | {fit_cell} | {mean('bpp'):.3f} | "
                    f"{mean('psnr'):.2f} | {mean('ms_ssim'):.4f} | {mean('lpips'):.4f} | "
                    f"{med('encode_s'):.2f} | {med('decode_s'):.2f} |"
                )
        for name in sorted({r["codec"] for r in rows if r["codec"].startswith("latent-")}):
            steps, breaks = monotone_breaks(rows, name)
            lines += ["", f"Monotone in bytes ({_label(name)}): {steps} steps to a larger budget over "
                      f"{len({r['image'] for r in rows if r['codec'] == name})} images, {len(breaks)} where "
                      f"MS-SSIM dropped or LPIPS rose by more than {MONOTONE_TOL:g}"
                      + (":" if breaks else ".")]
            lines += [f"- {b}" for b in breaks]
        lines += [
            "",
            f"Crop grids ({s}), one per image (rows: {', '.join(map(str, GRID_BPPS))} bpp; a panel's "
            "caption gives its own bytes; 'DOWNSCALED W×H' marks a smaller picture upsampled on decode, "
            "'OVER budget' a file larger than the budget):",
            "",
        ]
        lines.append(" · ".join(f"[{img}](crops/{s}/{f})" for img, f in grids.get(s, [])))
        lines.append("")
    (out / "report.md").write_text("\n".join(lines) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kodak", default=None, help="Kodak folder (default: CODEC_KODAK_DIR / ../shared)")
    ap.add_argument("--kodak-limit", type=int, default=None, help="first N Kodak images (default all 24)")
    ap.add_argument("--heldout", type=int, default=24, help="held-out training windows (0: skip)")
    ap.add_argument("--sets", default="kodak,heldout", help="which sets (comma-separated)")
    ap.add_argument("--bpp", default=",".join(map(str, BPPS)))
    ap.add_argument("--efforts", default="fast,default", help="latent efforts, e.g. fast,default")
    ap.add_argument(
        "--default-limit",
        type=int,
        default=None,
        help="run efforts other than the first on only the first N images of each set",
    )
    ap.add_argument("--anchors", default=",".join(ANCHORS))
    ap.add_argument("--out", type=Path, default=project_root() / "docs" / "bench" / "rd")
    ap.add_argument("--cache", type=Path, default=project_root() / "bench-out" / "rd-cache")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--report-only", action="store_true", help="only rows already in the cache")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    t0 = time.time()
    load_start = load_average()
    bpps = [float(b) for b in a.bpp.split(",")]
    efforts = [e for e in a.efforts.split(",") if e]
    anchors = [x for x in a.anchors.split(",") if x]
    sets: dict[str, list[Path]] = {}
    if "kodak" in a.sets:
        sets["kodak"] = list_images(a.kodak or kodak_dir(), a.kodak_limit)
    if a.heldout and "heldout" in a.sets:
        sets["heldout"] = build_heldout(a.cache / "heldout-images", a.heldout)
    cache = Cache(a.cache)
    # the codecs' fingerprints, taken once: a source file edited during a long run must not hide the rows
    # (and crops) the run itself stored (2026-12-01: the latent column was missing from every grid)
    fps: dict[str, str] = {}
    results: dict[str, list[dict]] = {}
    plan_meta: dict[str, dict[str, list[str]]] = {}
    for s, paths in sets.items():
        plan: dict[str, list[Path]] = {}
        for i, e in enumerate(efforts):
            plan[f"latent-{e}"] = paths if i == 0 or a.default_limit is None else paths[: a.default_limit]
        for x in anchors:
            plan[x] = paths
        plan_meta[s] = {c: [p.name for p in v] for c, v in plan.items()}
        if a.report_only:
            rows = []
            for name, imgs in plan.items():
                fp = fps.setdefault(name, make(name).fingerprint())
                for p in imgs:
                    rows += [r for b in bpps if (r := cache.load(s, p.stem, name, b, fp)) is not None]
        else:
            rows = run_set(s, paths, plan, bpps, cache, log=lambda m: print(m, flush=True), fps=fps)
        results[s] = rows
        # what actually ran (a --report-only run may have fewer rows than planned)
        plan_meta[s] = {c: sorted({r["image"] for r in rows if r["codec"] == c}) for c in plan}
    a.out.mkdir(parents=True, exist_ok=True)
    tests = [f"latent-{e}" for e in efforts]
    bd = {s: bd_table(rows, tests, anchors) for s, rows in results.items()}
    grids = {}
    for s, rows in results.items():
        codecs = tests + anchors
        rd_plots(rows, codecs, a.out / f"rd_{s}.png", s)
        grids[s] = crop_grids(rows, cache, s, codecs, a.out / "crops" / s, fingerprints=fps)
    meta = {
        "command": "python -m codec.tools.bench.rd " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M"),
        "seconds": time.time() - t0,
        "machine": describe(),
        "torch_threads": a.threads,
        "load_start": load_start,
        "load_end": load_average(),
        "bpps": bpps,
        "plan": plan_meta,
    }
    (a.out / "results.json").write_text(json.dumps({"meta": meta, "bd_rate": bd, "rows": results}, indent=1))
    write_report(a.out, results, bd, meta, grids)
    print(f"wrote {a.out / 'report.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
