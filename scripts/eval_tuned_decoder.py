"""The same codec files decoded by the stock TAESD decoder and by a tuned one (issue 14 item 2).

    PYTHONPATH=. .venv/bin/python scripts/eval_tuned_decoder.py WEIGHTS [--set heldout|kodak] [--limit N]
        [--bpp 0.05 0.10 0.15] [--out F.json] [--against OTHER_WEIGHTS]

Every image is encoded once per budget (``codec.encode``, effort default, torch engine); the file is then
decoded twice with everything the file carries (latent denoiser, patch and region layers): by the stock
decoder and by the stock decoder with the tuned tensors of ``WEIGHTS`` loaded over it. Same bytes, so the
difference is the decoder's alone. ``heldout``: the bench's held-out training windows
(`codec.tools.bench.heldout`, pixels no training crop covers) — the set to decide on; ``kodak``: report only.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import codec  # noqa: E402
from codec import decoder  # noqa: E402
from codec.decoder import decode_rgb  # noqa: E402

# each column's decoder is the model passed in, not the one the file's latent filter names (filter 2 would
# send the "stock" column through the shipped tuned decoder too)
decoder.filter_decoder = lambda header, model: model
from codec.metrics import lpips, ms_ssim, psnr  # noqa: E402
from codec.models import tuned_decoder  # noqa: E402
from codec.models.registry import get_model  # noqa: E402


def images(which: str, limit: int) -> list[tuple[str, np.ndarray]]:
    if which == "kodak":
        from codec.resources import kodak_dir

        paths = sorted(kodak_dir().glob("kodim*.png"))[:limit]
    else:
        from codec.tools.bench.heldout import build_heldout
        from codec.tools.training.data import cache_dir

        paths = build_heldout(cache_dir() / "heldout-windows", limit)
    return [(p.stem, np.asarray(Image.open(p).convert("RGB"))) for p in paths]


def quality(row: dict, label: str) -> float:
    """The encoder's own criterion, MS-SSIM − LPIPS."""
    return row[label]["msssim"] - row[label]["lpips"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("weights")
    ap.add_argument("--set", default="heldout", choices=("heldout", "kodak"))
    ap.add_argument("--limit", type=int, default=10)
    ap.add_argument("--bpp", type=float, nargs="+", default=[0.05, 0.10, 0.15])
    ap.add_argument("--out", default=None)
    ap.add_argument("--against", default=None,
                    help="another tuned-decoder file, a third column 'against' (e.g. the shipped one)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(2)
    stock = get_model("taesd", "cpu", backend="torch")
    tuned = tuned_decoder.build(stock, Path(args.weights))
    columns = [("stock", stock), ("tuned", tuned)]
    if args.against:
        columns.append(("against", tuned_decoder.build(stock, Path(args.against))))
    labels = [label for label, _ in columns]
    rows = []
    t0 = time.time()
    for name, rgb in images(args.set, args.limit):
        for bpp in args.bpp:
            data = codec.encode(rgb, bpp=bpp, effort="default")
            row = {"image": name, "bpp": bpp, "bytes": len(data)}
            for label, model in columns:
                dec = decode_rgb(data, model=model)
                row[label] = {"psnr": psnr(rgb, dec), "msssim": ms_ssim(rgb, dec), "lpips": lpips(rgb, dec)}
            rows.append(row)
            shown = {k: {m: round(v, 4) for m, v in row[k].items()} for k in labels}
            print(name, bpp, len(data), shown, flush=True)
    summary = {}
    for bpp in args.bpp:
        sel = [r for r in rows if r["bpp"] == bpp]
        summary[str(bpp)] = {f"{label}_{m}": statistics.fmean(r[label][m] for r in sel)
                             for label in labels for m in ("psnr", "msssim", "lpips")}
        wins = sum(quality(r, "tuned") > quality(r, "stock") for r in sel)
        summary[str(bpp)]["wins_msssim_minus_lpips"] = wins
        if args.against:  # the tuned column against the third one
            summary[str(bpp)]["wins_over_against"] = sum(
                quality(r, "tuned") > quality(r, "against") for r in sel)
        summary[str(bpp)]["images"] = len(sel)
        s = summary[str(bpp)]
        print(f"{bpp} bpp ({len(sel)} images): PSNR {s['stock_psnr']:.2f} → {s['tuned_psnr']:.2f}, MS-SSIM "
              f"{s['stock_msssim']:.4f} → {s['tuned_msssim']:.4f}, LPIPS {s['stock_lpips']:.4f} → "
              f"{s['tuned_lpips']:.4f}, wins {s['wins_msssim_minus_lpips']}/{len(sel)}")
        if args.against:
            print(f"   against {args.against}: PSNR {s['against_psnr']:.2f}, "
                  f"MS-SSIM {s['against_msssim']:.4f}, "
                  f"LPIPS {s['against_lpips']:.4f}; tuned wins {s['wins_over_against']}/{len(sel)}")
    if args.out:
        Path(args.out).write_text(json.dumps({"machine": platform.platform(), "weights": args.weights,
                                              "set": args.set, "elapsed_s": round(time.time() - t0, 1),
                                              "summary": summary, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
