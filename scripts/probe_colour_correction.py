"""Probe (issue 14, training photos only): does a per-image colour/contrast correction raise MS-SSIM?

For each photo (longer side ≤ 640 px) at 0.05/0.10/0.15 bpp: the codec's file, then a 3×4 affine RGB map
(≈ 24 B of side information) or a per-channel gain/bias, fitted by least squares from the decode to the
original as an encoder could; MS-SSIM and LPIPS of each (docs/bench/rd/msssim_gap/README.md).

    PYTHONPATH=. .venv/bin/python scripts/probe_colour_correction.py --photos 6 --out out.json
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
from codec.metrics.lpips import lpips
from codec.metrics.msssim import ms_ssim
from codec.resources import train_dir

BUDGETS = (0.05, 0.10, 0.15)


def training_photos(count: int, seed: int, side: int = 640) -> list[tuple[str, np.ndarray]]:
    """``count`` training photos in a seeded random order, the longer side at most ``side`` px."""
    files = sorted(p for p in Path(train_dir()).rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    random.Random(seed).shuffle(files)
    out = []
    for p in files[:count]:
        im = Image.open(p).convert("RGB")
        if max(im.size) > side:
            f = side / max(im.size)
            im = im.resize((round(im.width * f), round(im.height * f)), Image.LANCZOS)
        out.append((p.name, np.asarray(im)))
    return out


def corrected(rgb: np.ndarray, dec: np.ndarray) -> dict[str, np.ndarray]:
    """The decode after a least-squares affine RGB map and after a per-channel gain/bias."""
    o = rgb.reshape(-1, 3).astype(np.float64)
    d = dec.reshape(-1, 3).astype(np.float64)
    x = np.hstack([d, np.ones((len(d), 1))])
    a, *_ = np.linalg.lstsq(x, o, rcond=None)
    per_channel = np.empty_like(d)
    for c in range(3):
        gain, bias = np.polyfit(d[:, c], o[:, c], 1)
        per_channel[:, c] = gain * d[:, c] + bias

    def img(v: np.ndarray) -> np.ndarray:
        return np.clip(v, 0, 255).round().astype(np.uint8).reshape(dec.shape)

    return {"affine": img(x @ a), "perchan": img(per_channel)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--photos", type=int, default=6)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--out", default="colour_correction.json")
    args = ap.parse_args()
    rows = []
    for name, rgb in training_photos(args.photos, args.seed):
        for bpp in BUDGETS:
            t = time.time()
            data = codec.encode(rgb, bpp=bpp, check_faces=False)
            dec = np.asarray(codec.decode(data).convert("RGB"))
            row: dict = {"photo": name, "bpp": bpp, "bytes": len(data)}
            for k, v in {"plain": dec, **corrected(rgb, dec)}.items():
                row[k] = (round(float(ms_ssim(rgb, v)), 4), round(float(lpips(rgb, v)), 4))
            row["s"] = round(time.time() - t, 1)
            print(json.dumps(row), flush=True)
            rows.append(row)
    Path(args.out).write_text(json.dumps(rows, indent=1))
    for bpp in BUDGETS:
        sel = [r for r in rows if r["bpp"] == bpp]
        means = {k: tuple(round(float(np.mean([r[k][i] for r in sel])), 4) for i in (0, 1))
                 for k in ("plain", "affine", "perchan")}
        print(bpp, "mean (MS-SSIM, LPIPS):", means)


if __name__ == "__main__":
    main()
