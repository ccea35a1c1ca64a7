"""1:1 crops for the residual rule A/B (`scripts/residual_ab.py`): original | rule before | shipped rule |
AVIF at the shipped file's bytes, one row per (image, crop window).

    PYTHONPATH=. .venv/bin/python scripts/residual_ab_crops.py --kodak ../shared/data/kodak \\
        --crops kodim01@0.5:250,180 kodim13@0.5:400,120 --out docs/bench/residual/ab_2026-12-01/crops_1to1.jpg
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

import codec
from codec.baselines import decode_baseline, encode_at_budget
from codec.imageio import load_image
from codec.options import bpp_to_bytes
from scripts.residual_ab import encode_with

SIZE = 192  # crop side, px (1:1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--kodak", type=Path, required=True)
    ap.add_argument("--crops", nargs="+", required=True, help="IMAGE@BPP:X,Y (top-left of the crop)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    rows = []
    for spec in args.crops:
        name, rest = spec.split("@")
        bpp_s, xy = rest.split(":")
        x, y = (int(v) for v in xy.split(","))
        rgb = load_image(args.kodak / f"{name}.png")
        h, w = rgb.shape[:2]
        budget = bpp_to_bytes(float(bpp_s), w, h)
        panels = [("original", rgb)]
        sizes = {}
        for rule in ("old", "new"):
            data = encode_with(rgb, budget, rule)
            sizes[rule] = len(data)
            panels.append((f"{rule} rule, {len(data):,} B", np.asarray(codec.decode(data).convert("RGB"))))
        avif = encode_at_budget(rgb, "avif", sizes["new"])
        panels.append((f"AVIF, {len(avif.data):,} B", decode_baseline(avif, (w, h))))
        row = Image.new("RGB", (len(panels) * (SIZE + 4), SIZE + 18), "white")
        draw = ImageDraw.Draw(row)
        for i, (label, img) in enumerate(panels):
            row.paste(Image.fromarray(img[y : y + SIZE, x : x + SIZE]), (i * (SIZE + 4), 18))
            draw.text((i * (SIZE + 4) + 2, 2), f"{name}@{bpp_s} {label}" if i == 0 else label, fill="black")
        rows.append(row)
    sheet = Image.new("RGB", (rows[0].width, sum(r.height for r in rows)), "white")
    top = 0
    for r in rows:
        sheet.paste(r, (0, top))
        top += r.height
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, quality=92)


if __name__ == "__main__":
    main()
