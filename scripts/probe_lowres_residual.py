"""Probe (issue 14, MS-SSIM at 0.05–0.15 bpp): does a LOW-resolution residual pay below 0.2 bpp?

The residual layer (`codec.container.residuallayer`) is used from 0.2 bpp up; at 0.10/0.15 bpp a full or
half-resolution residual made LPIPS worse on every training photo tried (docs/bench/residual/README.md).
This probe asks about the low frequencies only, in two steps per photo and budget B:

- **oracle**: the shipped file's decode plus the *uncoded* residual at 1/2^s resolution (s = 2, 3, 4;
  box-filtered down, bilinear up as the decoder does) — what a perfect low-frequency correction gives;
- **coded**: the shipped encoder at B − k (k = 5 % / 10 % of B) plus the residual at s = 2 / 3 coded with
  WebP, JPEG XL or AVIF (4:4:4) at the largest quality that fits the bytes left.

Training photos only (never Kodak, none of the RD bench's held-out photos; `probe_residual_settings`
picks them, shrunk to a 768-px longer side); faces off (`check_faces=False`), guard on.

    PYTHONPATH=. .venv/bin/python scripts/probe_lowres_residual.py --n 6 \\
        --out docs/bench/rd/msssim_gap/lowres_residual_train.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from probe_residual_settings import pick_photos

import codec
from codec.baselines import encode_at_budget
from codec.container import residuallayer
from codec.container.residuallayer import ResidualLayer, residual_image
from codec.decoder import decode_rgb
from codec.encoder.residual import FRAMING
from codec.metrics import lpips, ms_ssim, psnr
from codec.options import bpp_to_bytes

CODECS = (("webp", None), ("jxl", None), ("avif", {"subsampling": "4:4:4"}))


def load(path: Path, longer: int = 768) -> np.ndarray:
    """The photo as RGB uint8, its longer side shrunk to at most ``longer`` px (Lanczos)."""
    with Image.open(path) as im:
        im = im.convert("RGB")
        f = longer / max(im.size)
        if f < 1:
            im = im.resize((round(im.width * f), round(im.height * f)), Image.LANCZOS)
        return np.asarray(im)


def metrics(a: np.ndarray, b: np.ndarray) -> list[float]:
    return [round(float(psnr(a, b)), 2), round(float(ms_ssim(a, b)), 4), round(float(lpips(a, b)), 4)]


def oracle(rgb: np.ndarray, dec: np.ndarray, shift: int) -> np.ndarray:
    """``dec`` plus the uncoded residual at 1/2^shift (any shift: resized here, not by the layer)."""
    h, w = rgb.shape[:2]
    small = Image.fromarray(residual_image(rgb, dec, 0)).resize(
        (max(1, w >> shift), max(1, h >> shift)), Image.BOX)
    return residuallayer.add(dec, np.asarray(small))


def add_photo_args(ap: argparse.ArgumentParser, n: int) -> None:
    """The photo picking and output options every low-rate residual probe shares."""
    ap.add_argument("--n", type=int, default=n)
    ap.add_argument("--skip", type=int, default=0)
    ap.add_argument("--seed", type=int, default=23)
    ap.add_argument("--bpp", default="0.05,0.1,0.15")
    ap.add_argument("--out", required=True)


def shipped_files(args: argparse.Namespace) -> Iterator[tuple[np.ndarray, dict, bytes, np.ndarray]]:
    """(original, row, file, decode) of the shipped file of every picked photo at every ``--bpp``; the row
    already holds the photo, size, budget and the file's metrics and bytes."""
    for path in pick_photos(args.n + args.skip, args.seed)[args.skip:]:
        rgb = load(path)
        h, w = rgb.shape[:2]
        for bpp in (float(b) for b in args.bpp.split(",")):
            budget = bpp_to_bytes(bpp, w, h)
            data = codec.encode(rgb, max_bytes=budget, check_faces=False)
            dec = decode_rgb(data)
            yield rgb, dict(photo=f"{path.parent.name}/{path.name}", w=w, h=h, bpp=bpp, budget=budget,
                            shipped=[*metrics(rgb, dec), len(data)]), data, dec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    add_photo_args(ap, 4)
    args = ap.parse_args()
    with open(args.out, "a") as out:
        for rgb, row, _data, dec in shipped_files(args):
            budget = row["budget"]
            for shift in (2, 3, 4):
                row[f"oracle_s{shift}"] = metrics(rgb, oracle(rgb, dec, shift))
            for share in (0.05, 0.1):
                base = codec.encode(rgb, max_bytes=budget - int(share * budget), check_faces=False)
                base_dec = decode_rgb(base)
                allowance = budget - len(base) - FRAMING
                for shift in (2, 3):
                    res_img = residual_image(rgb, base_dec, shift)
                    for fmt, opts in CODECS:
                        res = encode_at_budget(res_img, fmt, allowance, mode="quality", options=opts)
                        key = f"coded_{share}_{fmt}_s{shift}"
                        if not res.fits or not res.data:
                            row[key] = None
                            continue
                        shown = residuallayer.apply(base_dec, ResidualLayer(fmt, shift, res.data))
                        row[key] = [*metrics(rgb, shown), len(base) + len(res.data) + FRAMING]
            out.write(json.dumps(row) + "\n")
            out.flush()
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
