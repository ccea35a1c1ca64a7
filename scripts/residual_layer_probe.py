"""Probe (issue 14, the quality ladder above ~0.2 bpp): does a classical residual layer over the latent
decode buy more at high rates than a bigger latent?  Training photos only.

For each photo and budget B: (a) the latent codec at B; (b) the latent at f·B plus the residual
(original − decode, offset to 128) coded with AVIF / WebP in the rest; (c) AVIF alone at B.

    .venv/bin/python scripts/residual_layer_probe.py --n 6 --bpp 0.25,0.5,0.8
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
from PIL import Image

import codec
from codec.baselines import decode_baseline, encode_at_budget
from codec.container import residuallayer
from codec.metrics import lpips, ms_ssim, psnr
from codec.options import bpp_to_bytes
from codec.weights import train_dir


def metrics(a: np.ndarray, b: np.ndarray) -> dict:
    return dict(psnr=round(float(psnr(a, b)), 3), msssim=round(float(ms_ssim(a, b)), 4),
                lpips=round(float(lpips(a, b)), 4))


def residual(rgb: np.ndarray, base: np.ndarray, fmt: str, budget: int, shift: int = 0) -> np.ndarray | None:
    r = residuallayer.residual_image(rgb, base, shift)
    res = encode_at_budget(r, fmt, budget, mode="quality")
    if not res.fits:
        return None
    return residuallayer.add(base, decode_baseline(res, (r.shape[1], r.shape[0])))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=6)
    ap.add_argument("--bpp", default="0.25,0.5,0.8")
    ap.add_argument("--fractions", default="0.4,0.6,0.8")
    ap.add_argument("--shifts", default="0")
    ap.add_argument("--codecs", default="avif")
    ap.add_argument("--skip", type=int, default=0)
    ap.add_argument("--out", default="/tmp/residual_probe.json")
    args = ap.parse_args()
    photos = sorted(p for d in ("urban100_x2", "imagenet_samples", "bsds500")
                    for p in (train_dir() / d).glob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    random.Random(7).shuffle(photos)
    rows = []
    for p in photos[args.skip : args.skip + args.n]:
        img = Image.open(p).convert("RGB")
        s = 640 / max(img.size)
        if s < 1:
            img = img.resize((int(img.width * s) // 8 * 8, int(img.height * s) // 8 * 8), Image.LANCZOS)
        rgb = np.asarray(img)
        h, w = rgb.shape[:2]
        for bpp in [float(b) for b in args.bpp.split(",")]:
            B = bpp_to_bytes(bpp, w, h)
            row = dict(photo=p.name, w=w, h=h, bpp=bpp)
            t = time.time()
            full = codec.encode(rgb, max_bytes=B, check_faces=False)
            row["latent"] = metrics(rgb, np.asarray(codec.decode(full))) | dict(bytes=len(full))
            a = encode_at_budget(rgb, "avif", B, mode="quality")
            row["avif"] = metrics(rgb, decode_baseline(a, (w, h))) | dict(bytes=len(a.data))
            for f in [float(x) for x in args.fractions.split(",")]:
                base = codec.encode(rgb, max_bytes=int(f * B), check_faces=False, min_fidelity=0)
                dec = np.asarray(codec.decode(base))
                for fmt in args.codecs.split(","):
                    for shift in [int(x) for x in args.shifts.split(",")]:
                        out = residual(rgb, dec, fmt, B - len(base) - 8, shift)
                        if out is not None:
                            row[f"res_{fmt}_{f}_s{shift}"] = metrics(rgb, out)
            row["s"] = round(time.time() - t, 1)
            print(json.dumps(row), flush=True)
            rows.append(row)
    Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
