"""What the face guard's fallback chooses when no protection is acceptable (issue 12), on training
photos only: every candidate `_FaceGuard.protect` measured, with its verdict and its whole-image
quality loss against the unprotected file, and the file it wrote.

    .venv/bin/python scripts/faces_fallback_calibration.py --split calibration --bpp 0.05,0.10,0.15

Writes ``<out>/<split>.json`` and ``<out>/<split>_sheet.jpg``: a row per case whose plain file did not
keep the face (original | plain | written | best face-keeping candidate, when one was found). Used to
set `codec.encoder.guard.FACE_FALLBACK_MAX_LOSS`; test images are never run through it.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np
from PIL import Image

import codec
from codec.encoder import guard
from codec.options import bpp_to_bytes

ROOT = Path(__file__).resolve().parents[1]


def _load(names: list[str]):
    import importlib.util

    spec = importlib.util.spec_from_file_location("fpb", ROOT / "scripts" / "faces_protection_bench.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.images(names), mod.crop


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--split", default="calibration", choices=("calibration", "heldout"))
    ap.add_argument("--bpp", default="0.05,0.10,0.15")
    ap.add_argument("--max", type=int, default=12)
    ap.add_argument("--out", default="docs/bench/faces/fallback")
    args = ap.parse_args()
    names = [i["path"] for i in json.loads((ROOT / "docs/bench/faces/set.json").read_text())["images"]
             if i["split"] == args.split][: args.max]
    photos, crop = _load([f"train:{n[6:]}" if n.startswith("train:") else n for n in names])
    seen: list[dict] = []
    orig_verdict = guard._FaceGuard.verdict

    def traced(self, cand):
        v = orig_verdict(self, cand)
        m = re.search(r"q(\d+)$", cand.note or "")
        seen.append(dict(kind=cand.kind, note=cand.note, bytes=len(cand.data), ok=v.ok,
                         badness=round(v.badness, 4), distance=v.worst_distance,
                         quality=round(self.g.quality(cand), 4),
                         patch_quality=int(m.group(1)) if (m and cand.kind == "patches") else None,
                         seams=round(self.g.seams(cand), 2),
                         decoded=cand.decoded))
        return v

    guard._FaceGuard.verdict = traced
    rows = []
    out = ROOT / args.out
    out.mkdir(parents=True, exist_ok=True)
    sheet_rows: list[list[Image.Image]] = []
    for name, rgb in photos:
        for bpp in [float(b) for b in args.bpp.split(",")]:
            seen.clear()
            t0 = time.time()
            data = codec.encode(rgb, max_bytes=bpp_to_bytes(bpp, rgb.shape[1], rgb.shape[0]))
            meta = codec.info(data)
            dec = np.asarray(codec.decode(data))
            if not seen:
                rows.append(dict(image=name, bpp=bpp, protected=False, seconds=round(time.time() - t0, 1)))
                continue
            plain_q = seen[0]["quality"]
            written = next((i for i, s in enumerate(seen) if s["decoded"] is not None
                            and np.array_equal(s["decoded"], dec)), None)
            cands = [{k: v for k, v in s.items() if k != "decoded"}
                     | {"loss": round(plain_q - s["quality"], 4)} for s in seen]
            row = dict(image=name, bpp=bpp, protected=True, bytes=len(data), guard=meta.get("guard"),
                       faces_kept=meta.get("faces_kept"), written=written, candidates=cands,
                       seconds=round(time.time() - t0, 1))
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "candidates"}), flush=True)
            for c in cands:
                print("   ", c, flush=True)
            if not meta.get("faces_kept"):
                from codec.encoder import faces as face_check

                boxes = face_check.detect(rgb).boxes
                keep = [i for i, s in enumerate(seen) if s["ok"]]
                best_keep = min(keep, key=lambda i: cands[i]["loss"]) if keep else None
                panels = [rgb, seen[0]["decoded"], dec]
                if best_keep is not None:
                    panels.append(seen[best_keep]["decoded"])
                sheet_rows.append([Image.fromarray(crop(p, boxes[0])).resize((160, 160)) for p in panels])
    (out / f"{args.split}.json").write_text(json.dumps(rows, indent=1, default=float))
    if sheet_rows:  # one JPEG: the face of every case left unkept by the plain file, 1 row each
        sheet = Image.new("RGB", (160 * 4, 160 * len(sheet_rows)), "white")
        for r, tiles in enumerate(sheet_rows):
            for i, t in enumerate(tiles):
                sheet.paste(t, (160 * i, 160 * r))
        sheet.save(out / f"{args.split}_sheet.jpg", quality=88)


if __name__ == "__main__":
    main()
