"""The eye-shape check on the gallery's path: held-out training photos at "Standard", check off vs on.

    .venv/bin/python scripts/eye_check_standard_probe.py [--min-face 80] \
        [--out docs/bench/faces/eye_check_standard_heldout.json]

Whole photos of the faces set's ``heldout`` split (training photos; the floor was calibrated on the other
half) whose largest face is at least ``--min-face`` px (eyes ≥ 32 px, where `eye_shape` is measured), coded
as the gallery codes "Standard": ``codec.encode_result(max_bytes=2 × base, base_bytes=base,
target="faithful")`` with base = 0.15 bpp (`gallery.sizes`, headroom 2), once with `EYE_SHAPE_FLOOR` off (∞)
and once as shipped. Per file: bytes, seconds, the guard's choice, protection bytes, faces kept, target met.
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

from faces_set import load  # noqa: E402

import codec  # noqa: E402
from codec.encoder import faces as fc  # noqa: E402
from codec.metrics import lpips, ms_ssim  # noqa: E402


def code(rgb: np.ndarray, floor: float) -> dict:
    base = int(0.15 * rgb.shape[0] * rgb.shape[1] / 8)
    fc.EYE_SHAPE_FLOOR = floor
    t0 = time.time()
    res = codec.encode_result(rgb, max_bytes=2 * base, base_bytes=base, target="faithful")
    seconds = time.time() - t0
    info = codec.info(res.data)
    dec = np.asarray(res.reconstruction)
    return {"base": base, "bytes": len(res.data), "seconds": round(seconds, 1), "guard": info.get("guard"),
            "payload_kind": info.get("payload_kind"), "protection_bytes": info.get("protection_bytes"),
            "faces_kept": info.get("faces_kept"), "target_met": info.get("target_met"),
            "ms_ssim": float(ms_ssim(rgb, dec)), "lpips": float(lpips(rgb, dec))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", default=str(ROOT / "docs/bench/faces/set.json"))
    ap.add_argument("--min-face", type=int, default=80)
    ap.add_argument("--out", default=str(ROOT / "docs/bench/faces/eye_check_standard_heldout.json"))
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    shipped = fc.EYE_SHAPE_FLOOR
    spec = json.loads(Path(args.set).read_text())
    rows = []
    for it in spec["images"]:
        if it["split"] != "heldout" or it["largest_face"] < args.min_face:
            continue
        rgb = load(it["path"])
        row = {"photo": it["name"], "size": list(rgb.shape[:2]), "largest_face": it["largest_face"],
               "off": code(rgb, float("inf")), "on": code(rgb, shipped)}
        fc.EYE_SHAPE_FLOOR = shipped
        rows.append(row)
        print(json.dumps(row), flush=True)
    out = {"what": "gallery Standard (0.15 bpp base, 2x cap, target faithful), eye-shape check off vs on",
           "floor": shipped,
           "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, 1 thread",
           "date": time.strftime("%Y-%m-%d %H:%M"), "rows": rows}
    Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
