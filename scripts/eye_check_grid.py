"""Crops of the eyes with the eye-shape check off and on, for judging it by eye (issue 12).

    .venv/bin/python scripts/eye_check_grid.py [--out docs/bench/faces/eye_check_blur012_heldout.jpg]

Held-out training faces (never calibrated on) as 512×512 crops (`calibrate_features.crops`), each coded
with ``codec.encode_result(max_bytes=bpp × pixels / 8, effort="fast")`` twice — `EYE_SHAPE_FLOOR` off
(∞) and as shipped — and shown at 2× (Lanczos): original | check off | check on.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from calibrate_features import crops  # noqa: E402

import codec  # noqa: E402
from codec.encoder import faces as fc  # noqa: E402
from codec.metrics import face_features as ff  # noqa: E402
from codec.metrics import identity as idm  # noqa: E402

FACES = [("bsds500_147077.jpg#0", 0.10), ("bsds500_189011.jpg#0", 0.10), ("bsds500_14085.jpg#0", 0.10),
         ("bsds500_302008.jpg#0", 0.15), ("bsds500_198087.jpg#0", 0.15), ("bsds500_376001.jpg#1", 0.15),
         ("bsds500_365072.jpg#0", 0.10)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", default=str(ROOT / "docs/bench/faces/set.json"))
    ap.add_argument("--out", default=str(ROOT / "docs/bench/faces/eye_check_blur012_heldout.jpg"))
    args = ap.parse_args()
    spec = json.loads(Path(args.set).read_text())
    shipped = fc.EYE_SHAPE_FLOOR
    faces = {k: (c, b) for k, c, b in crops("heldout", spec, 512)}
    tiles = []
    for key, bpp in FACES:
        crop, box = faces[key]
        decs = [crop]
        for floor in (float("inf"), shipped):
            fc.EYE_SHAPE_FLOOR = floor
            budget = int(bpp * crop.shape[0] * crop.shape[1] / 8)
            res = codec.encode_result(crop, max_bytes=budget, effort="fast")
            decs.append(np.asarray(res.reconstruction))
        fc.EYE_SHAPE_FLOOR = shipped
        reg = ff.feature_regions(idm.face_landmarks(crop, box))
        cx, cy = (reg.eyes[0].cx + reg.eyes[1].cx) / 2, (reg.eyes[0].cy + reg.eyes[1].cy) / 2
        half, hh = 0.75 * reg.iod + 0.6 * max(reg.eye_width), 0.9 * max(reg.eye_width)
        x0, x1, y0, y1 = int(max(0, cx - half)), int(cx + half), int(max(0, cy - hh)), int(cy + hh)
        t = Image.fromarray(np.concatenate([d[y0:y1, x0:x1] for d in decs], 0))
        t = t.resize((t.width * 2, t.height * 2), Image.Resampling.LANCZOS)
        draw = ImageDraw.Draw(t)
        draw.rectangle((0, 0, t.width, 11), fill="black")
        draw.text((2, 0), f"{key} {bpp}: original | eye check off | on (floor {shipped})", fill="yellow")
        tiles.append(t)
    out = Image.new("RGB", (max(t.width for t in tiles), sum(t.height for t in tiles)), "white")
    y = 0
    for t in tiles:
        out.paste(t, (0, y))
        y += t.height
    out.save(args.out, quality=85)


if __name__ == "__main__":
    main()
