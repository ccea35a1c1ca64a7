"""A/B of the residual layer's encoder rule, same process and machine: the shipped rule
(`codec.encoder.residual.latent_budgets` + `RESIDUAL_OPTIONS`) against the rule before 2026-12-01 late
(latents at 0.4 and 0.6 of the budget, AVIF residual at the format's own 4:2:0), both through
``codec.encode(max_bytes=...)`` with everything else as shipped (guard, face check).

    PYTHONPATH=. .venv/bin/python scripts/residual_ab.py --images ../shared/data/kodak --bpp 0.25,0.5 \\
        --out docs/bench/residual/ab_2026-12-01/kodak.jsonl

One JSON line per (image, bpp, rule): bytes, PSNR / MS-SSIM / LPIPS of the decode, encode seconds and
what the file holds (latent / residual bytes). Test images are only reported here, never tuned on.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import codec
from codec.container.header import parse
from codec.encoder import residual
from codec.imageio import load_image
from codec.metrics import lpips, ms_ssim, psnr
from codec.options import bpp_to_bytes


def old_budgets(max_bytes: int, width: int, height: int) -> list[int]:
    return [int(0.4 * max_bytes), int(0.6 * max_bytes)]


RULES = {
    "new": (residual.latent_budgets, residual.RESIDUAL_OPTIONS),
    "old": (old_budgets, {}),
}


def encode_with(rgb: np.ndarray, max_bytes: int, rule: str) -> bytes:
    """``codec.encode(max_bytes=...)`` (effort default) with the residual rule ``rule`` of `RULES`."""
    budgets, options = RULES[rule]
    saved = residual.latent_budgets, residual.RESIDUAL_OPTIONS
    residual.latent_budgets, residual.RESIDUAL_OPTIONS = budgets, options
    try:
        return codec.encode(rgb, max_bytes=max_bytes, effort="default")
    finally:
        residual.latent_budgets, residual.RESIDUAL_OPTIONS = saved


def run(rgb: np.ndarray, max_bytes: int, rule: str) -> dict:
    t = time.perf_counter()
    data = encode_with(rgb, max_bytes, rule)
    enc_s = time.perf_counter() - t
    dec = np.asarray(codec.decode(data).convert("RGB"))
    header, _payload = parse(data)
    res = len(header.residual_layer) if header.residual_layer is not None else 0
    return dict(bytes=len(data), residual_bytes=res, encode_s=round(enc_s, 1),
                psnr=round(float(psnr(rgb, dec)), 3), msssim=round(float(ms_ssim(rgb, dec)), 4),
                lpips=round(float(lpips(rgb, dec)), 4))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--images", type=Path, required=True)
    ap.add_argument("--bpp", default="0.25,0.5")
    ap.add_argument("--rules", default="new,old")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("a") as f:
        for p in sorted(args.images.glob("*.png")):
            rgb = load_image(p)
            h, w = rgb.shape[:2]
            for bpp in [float(b) for b in args.bpp.split(",")]:
                for rule in args.rules.split(","):
                    row = dict(image=p.stem, bpp=bpp, rule=rule) | run(rgb, bpp_to_bytes(bpp, w, h), rule)
                    f.write(json.dumps(row) + "\n")
                    f.flush()
                    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
