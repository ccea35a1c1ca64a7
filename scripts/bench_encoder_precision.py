"""Encoder precision A/B (issue 13): the same photos and budgets under two ``CODEC_BACKEND`` values.

Run once per backend (each in its own process, the engine is chosen at model load), then compare:

    CODEC_BACKEND=openvino .venv/bin/python scripts/bench_encoder_precision.py run
    CODEC_BACKEND=openvino-bf16enc .venv/bin/python scripts/bench_encoder_precision.py run
    .venv/bin/python scripts/bench_encoder_precision.py compare openvino openvino-bf16enc

Photos: 6 Kodak images and 6 training photos (every 90th of bsds500); budgets 0.05 / 0.10 / 0.15 bpp,
effort default, guard on, text check off. Per file: bytes, encode wall time (``codec.encode_result``,
warm), LPIPS, MS-SSIM and PSNR of the reconstruction. Results: ``<out>/quality-<backend>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KODAK = (1, 4, 7, 13, 19, 23)
BUDGETS = (0.05, 0.10, 0.15)
DEFAULT_OUT = ROOT / "docs/bench/gallery/ab-bf16enc-2026-12-01"


def photos() -> list[Path]:
    from codec.resources import kodak_dir, train_dir

    kodak = [kodak_dir() / f"kodim{i:02d}.png" for i in KODAK]
    train = sorted((train_dir() / "bsds500").glob("*.jpg"))[::90][:6]
    return kodak + train


def run(out: Path) -> None:
    import numpy as np
    from PIL import Image

    import codec
    from codec.metrics import lpips, ms_ssim, psnr

    backend = os.environ.get("CODEC_BACKEND", "torch")
    paths = photos()
    codec.encode(np.asarray(Image.open(paths[0]).convert("RGB")), bpp=0.1)  # warm: export + compile
    rows = []
    for path in paths:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        for bpp in BUDGETS:
            t = time.perf_counter()
            res = codec.encode_result(rgb, bpp=bpp, check_text=False)
            dt = time.perf_counter() - t
            dec = res.reconstruction
            rows.append({"img": path.name, "bpp": bpp, "bytes": len(res.data), "t": dt,
                         "lpips": lpips(rgb, dec), "msssim": ms_ssim(rgb, dec), "psnr": psnr(rgb, dec)})
            print(backend, rows[-1], flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"quality-{backend}.json").write_text(json.dumps(rows, indent=1))


def compare(out: Path, a_name: str, b_name: str) -> None:
    a = json.loads((out / f"quality-{a_name}.json").read_text())
    b = json.loads((out / f"quality-{b_name}.json").read_text())
    print(f"| bpp | set | LPIPS {a_name} → {b_name} | MS-SSIM | bytes | encode s (median) "
          "| max per-file ΔLPIPS |")
    print("|---|---|---|---|---|---|---:|")
    for bpp in BUDGETS:
        for name, is_set in (("kodak", True), ("train", False)):
            ra = [r for r in a if r["bpp"] == bpp and r["img"].startswith("kodim") == is_set]
            rb = [r for r in b if r["bpp"] == bpp and r["img"].startswith("kodim") == is_set]

            def mean(rows: list[dict], key: str) -> float:
                return statistics.mean(r[key] for r in rows)

            dmax = max(abs(x["lpips"] - y["lpips"]) for x, y in zip(ra, rb, strict=True))
            print(f"| {bpp:.2f} | {name} | {mean(ra, 'lpips'):.4f} → {mean(rb, 'lpips'):.4f} "
                  f"| {mean(ra, 'msssim'):.4f} → {mean(rb, 'msssim'):.4f} "
                  f"| {mean(ra, 'bytes'):.0f} → {mean(rb, 'bytes'):.0f} "
                  f"| {statistics.median(r['t'] for r in ra):.2f} → "
                  f"{statistics.median(r['t'] for r in rb):.2f} "
                  f"| {dmax:.4f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=("run", "compare"))
    ap.add_argument("backends", nargs="*", help="compare: the two CODEC_BACKEND values")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    if args.mode == "run":
        run(args.out)
    else:
        if len(args.backends) != 2:
            ap.error("compare needs two backends")
        compare(args.out, *args.backends)


if __name__ == "__main__":
    main()
