"""Seam scores of face patch layers on training photos (issue 12), to set the guard's seam floor.

For each training face photo of a split of docs/bench/faces/set.json (never a test image) and each
budget: the plain latent file at that budget (guard and face check off), the face's guard windows
(`codec.encoder.faces.face_blocks`) patched with WebP and AVIF at a ladder of qualities, and per layer
the seam score (`codec.metrics.seams.seam_score`) and the identity distance of the face.

    .venv/bin/python scripts/seam_calibration.py --split calibration --bpp 0.05,0.10,0.15

Writes ``<out>/<split>.json`` and ``<out>/<split>_sheet.jpg`` (per photo at the middle budget: the
face at 2× for the plain file and each layer, labelled with codec, quality and score).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

import codec
from codec.container import patchlayer
from codec.container.patchlayer import Grid
from codec.encoder import faces as face_check
from codec.encoder.guard import BLOCK, build_layer
from codec.metrics.seams import seam_score
from codec.resources import train_dir

ROOT = Path(__file__).resolve().parents[1]
QUALITIES = (0, 5, 10, 15, 20, 30, 45)
CODECS = ("webp", "avif")


def face_crop(rgb: np.ndarray, box, scale: int = 2, side: int = 160) -> Image.Image:
    cx, cy = (box.left + box.right) // 2, (box.top + box.bottom) // 2
    half = max(box.right - box.left, box.bottom - box.top) * 3 // 4
    x0, y0 = max(0, cx - half), max(0, cy - half)
    tile = Image.fromarray(rgb[y0:cy + half, x0:cx + half])
    f = min(scale, side / max(tile.size))
    return tile.resize((max(1, round(tile.width * f)), max(1, round(tile.height * f))), Image.NEAREST)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--split", default="calibration", choices=("calibration", "heldout"))
    ap.add_argument("--bpp", default="0.05,0.10,0.15")
    ap.add_argument("--max", type=int, default=12)
    ap.add_argument("--out", default="docs/bench/faces/seams")
    args = ap.parse_args()
    names = [i["path"][6:] for i in json.loads((ROOT / "docs/bench/faces/set.json").read_text())["images"]
             if i["split"] == args.split][: args.max]
    budgets = [float(b) for b in args.bpp.split(",")]
    rows, sheet_rows = [], []
    t0 = time.time()
    for name in names:
        rgb = np.asarray(Image.open(train_dir() / name).convert("RGB"))
        found = face_check.detect(rgb)
        if not found or not found.boxes:
            continue
        grid = Grid(rgb.shape[0], rgb.shape[1], BLOCK)
        idx = face_check.face_blocks(found, grid)
        rects = [grid.rect(i) for i in idx]
        box = found.boxes[0]
        for bpp in budgets:
            data = codec.encode(rgb, bpp=bpp, check_faces=False, min_fidelity=0)
            base = np.asarray(codec.decode(data).convert("RGB"))
            plain = face_check.check(rgb, base, found)
            row = dict(photo=name, bpp=bpp, bytes=len(data), face_px=box.right - box.left, blocks=len(idx),
                       plain=dict(seam=round(seam_score(rgb, base, rects), 3),
                                  distance=plain.worst_distance), layers=[])
            tiles = [("plain", row["plain"]["seam"], face_crop(base, box))]
            for c in CODECS:
                for q in QUALITIES:
                    layer = build_layer(rgb, grid, idx, c, q)
                    dec = patchlayer.apply(base, layer)
                    v = face_check.check(rgb, dec, found)
                    s = round(seam_score(rgb, dec, rects), 3)
                    row["layers"].append(dict(codec=c, q=q, bytes=len(layer.atlas), seam=s,
                                              distance=v.worst_distance))
                    if bpp == budgets[len(budgets) // 2]:
                        tiles.append((f"{c} q{q}", s, face_crop(dec, box)))
            rows.append(row)
            print(json.dumps({k: row[k] for k in ("photo", "bpp", "bytes", "plain")}),
                  [(x["codec"], x["q"], x["seam"]) for x in row["layers"]], flush=True)
            if tiles[1:]:
                sheet_rows.append(tiles)
    out = ROOT / args.out
    out.mkdir(parents=True, exist_ok=True)
    result = dict(split=args.split, bpp=budgets, qualities=QUALITIES, elapsed_s=round(time.time() - t0, 1),
                  rows=rows)
    (out / f"{args.split}.json").write_text(json.dumps(result, indent=1))
    if sheet_rows:
        tiles = [t for r in sheet_rows for _, _, t in r]
        cell = max(t.width for t in tiles), max(t.height for t in tiles)
        cols = max(len(r) for r in sheet_rows)
        sheet = Image.new("RGB", (cols * cell[0], len(sheet_rows) * (cell[1] + 14)), "white")
        draw = ImageDraw.Draw(sheet)
        for j, r in enumerate(sheet_rows):
            for i, (label, s, t) in enumerate(r):
                x, y = i * cell[0], j * (cell[1] + 14)
                sheet.paste(t, (x, y + 14))
                draw.text((x + 2, y + 1), f"{label} {s:.1f}", fill="black")
        sheet.save(out / f"{args.split}_sheet.jpg", quality=90)


if __name__ == "__main__":
    main()
