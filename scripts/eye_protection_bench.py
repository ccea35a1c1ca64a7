"""What the eye check (`codec.encoder.faces.EYE_SHAPE_FLOOR`) costs and buys on faces nobody tuned on.

    .venv/bin/python scripts/eye_protection_bench.py [--split heldout] [--bpp 0.10 0.15] [--side 512]
        [--out docs/bench/faces/eye_protection.json]

Every face ≥ 48 px of the ``--split`` training photos of the faces set (the held-out half by default:
the floor was chosen on the calibration half) as a ``--side`` crop (scripts/faces_bench.py's
``face_crop``; 512: eyes 40–60 px), coded at each bpp twice with the guard on (``codec.encode_result``,
effort fast): with the eye-shape floor as shipped and with it off (the encoder before it). Per file:
bytes, seconds, the guard's choice, protection bytes, the worst eye shape / identity / landmark shift of
the written file, whole-image MS-SSIM and LPIPS.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from calibrate_features import crops  # noqa: E402

import codec  # noqa: E402
from codec.encoder import faces as face_check  # noqa: E402
from codec.metrics import identity as idm  # noqa: E402
from codec.metrics import lpips, ms_ssim  # noqa: E402


def measure(crop: np.ndarray, box: idm.FaceBox, budget: int, floor: float) -> dict:
    face_check.EYE_SHAPE_FLOOR = floor
    t0 = time.time()
    res = codec.encode_result(crop, max_bytes=budget, effort="fast")
    seconds = time.time() - t0
    info = codec.info(res.data)
    dec = res.reconstruction
    (f,) = idm.compare_faces(crop, dec, faces=[box], probe_small=False).measured
    feats = f.features.to_dict() if f.features is not None else {}
    return {"bytes": len(res.data), "seconds": round(seconds, 2), "guard": info.get("guard"),
            "protection_bytes": info.get("protection_bytes"), "faces_kept": info.get("faces_kept"),
            "eye_shape": feats.get("eye_shape"), "identity": f.identity_distance,
            "landmark": f.landmark_shift,
            "ms_ssim": float(ms_ssim(crop, dec)), "lpips": float(lpips(crop, dec))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", default=str(ROOT / "docs/bench/faces/set.json"))
    ap.add_argument("--split", default="heldout")
    ap.add_argument("--bpp", type=float, nargs="+", default=[0.10, 0.15])
    ap.add_argument("--side", type=int, default=512)
    ap.add_argument("--out", default=str(ROOT / "docs/bench/faces/eye_protection.json"))
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    shipped = face_check.EYE_SHAPE_FLOOR
    spec = json.loads(Path(args.set).read_text())
    rows = []
    t0 = time.time()
    for key, crop, box in crops(args.split, spec, args.side):
        for bpp in args.bpp:
            budget = int(bpp * crop.shape[0] * crop.shape[1] / 8)
            row = {"face": key, "bpp": bpp, "budget": budget,
                   "with_eye_check": measure(crop, box, budget, shipped),
                   "without": measure(crop, box, budget, float("inf"))}
            rows.append(row)
            w, o = row["with_eye_check"], row["without"]
            print(f"{key} {bpp}: without {o['bytes']} B shape {o['eye_shape']} {o['seconds']} s | with "
                  f"{w['bytes']} B {w['guard']} prot {w['protection_bytes']} shape {w['eye_shape']} "
                  f"{w['seconds']} s", flush=True)
    face_check.EYE_SHAPE_FLOOR = shipped
    changed = [r for r in rows if r["with_eye_check"]["bytes"] != r["without"]["bytes"]
               or r["with_eye_check"]["guard"] != r["without"]["guard"]]

    def med(key: str, which: str, sel: list[dict]) -> float | None:
        v = [r[which][key] for r in sel if r[which][key] is not None]
        return float(np.median(v)) if v else None

    summary = {
        "files": len(rows), "changed_by_eye_check": len(changed),
        "over_floor_without": sum((r["without"]["eye_shape"] or 0) > shipped for r in rows),
        "over_floor_with": sum((r["with_eye_check"]["eye_shape"] or 0) > shipped for r in rows),
        "changed": {k: {"without": med(k, "without", changed), "with": med(k, "with_eye_check", changed)}
                    for k in ("eye_shape", "identity", "landmark", "ms_ssim", "lpips", "seconds",
                              "protection_bytes")},
        "seconds_all": {"without": med("seconds", "without", rows),
                        "with": med("seconds", "with_eye_check", rows)},
    }
    out = {"what": "eye-shape check on/off, guard on, effort fast", "split": args.split, "side": args.side,
           "bpp": args.bpp, "floor": shipped, "machine": f"{platform.processor() or platform.machine()}, "
           f"{os.cpu_count()} cores, 1 thread", "date": time.strftime("%Y-%m-%d %H:%M"),
           "elapsed_s": round(time.time() - t0, 1), "summary": summary, "rows": rows}
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
