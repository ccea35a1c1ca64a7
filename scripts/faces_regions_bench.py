"""Region latents vs patch layers for faces (issue 12), the way the gallery encodes: a preset's nominal
budget with ``target="faithful"`` searching upwards to a cap (`codec.encode(target=..., base_bytes=...,
max_bytes=...)`), once with region latents (`codec.encoder.guard.REGION_LATENTS`) and once without
(patch layers and AVIF only, as before), plus the plain file without any face check.

    .venv/bin/python scripts/faces_regions_bench.py --split calibration --max 6 --bpp 0.10
    .venv/bin/python scripts/faces_regions_bench.py --images kodim04,kodim18,astronaut --bpp 0.10

``--split calibration|heldout`` takes training photos with faces from docs/bench/faces/set.json (only
the calibration split may tune anything); ``--images`` takes names as in faces_protection_bench.py
(test images: reported, never tuned on). Writes ``<out>.json``, ``<out>.md`` and a crop grid
(original | plain | target, patches | target, regions) per face.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import codec
from codec.encoder import faces as face_check
from codec.encoder import guard
from codec.metrics import lpips, ms_ssim
from codec.metrics.identity import compare_faces
from codec.options import bpp_to_bytes

ROOT = Path(__file__).resolve().parents[1]


def _load(names: list[str]) -> list[tuple[str, np.ndarray]]:
    import importlib.util

    spec = importlib.util.spec_from_file_location("fpb", ROOT / "scripts" / "faces_protection_bench.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.images(names), mod.crop


def measure(rgb: np.ndarray, data: bytes, boxes: list) -> dict:
    dec = np.asarray(codec.decode(data))
    meta = codec.info(data)
    out = {"bytes": len(data), "guard": meta.get("guard"), "target_met": meta.get("target_met"),
           "faces_kept": meta.get("faces_kept"), "fidelity_min": meta.get("fidelity_min"),
           "fidelity_floor_met": meta.get("fidelity_floor_met"),
           "protection_bytes": meta.get("protection_bytes"), "lpips": lpips(rgb, dec),
           "msssim": ms_ssim(rgb, dec)}
    if boxes:
        rep = compare_faces(rgb, dec, faces=boxes, probe_small=False)
        out["identity"] = [f.identity_distance for f in rep.measured]
        out["shift"] = [f.landmark_shift for f in rep.measured]
        out["detected"] = [f.detected_in_decoded for f in rep.measured]
    return out, dec


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", default="")
    ap.add_argument("--split", default="")
    ap.add_argument("--max", type=int, default=6)
    ap.add_argument("--bpp", type=float, default=0.10)
    ap.add_argument("--cap", type=float, default=2.0, help="cap = this × the nominal budget (the gallery's)")
    ap.add_argument("--effort", default="default")
    ap.add_argument("--out", default="docs/bench/faces/regions/bench")
    args = ap.parse_args()
    torch.set_num_threads(1)
    names = [n for n in args.images.split(",") if n]
    if args.split:
        sets = json.loads((ROOT / "docs/bench/faces/set.json").read_text())["images"]
        names += [im["path"] for im in sets if im["split"] == args.split][: args.max]
    imgs, crop = _load(names)
    rows, strips = [], []
    for name, rgb in imgs:
        found = face_check.detect(rgb)
        boxes = list(found.boxes) if found else []
        nominal = bpp_to_bytes(args.bpp, rgb.shape[1], rgb.shape[0])
        cap = int(args.cap * nominal)
        row = {"image": name, "faces": len(boxes), "face_px": [b.size for b in boxes], "nominal": nominal,
               "cap": cap}
        decs = {}
        t = time.perf_counter()
        plain = codec.encode(rgb, max_bytes=nominal, effort=args.effort, check_faces=False)
        row["plain_s"] = round(time.perf_counter() - t, 1)
        row["plain"], decs["plain"] = measure(rgb, plain, boxes)
        for key, on in (("patches", False), ("regions", True)):
            guard.REGION_LATENTS = on
            t = time.perf_counter()
            data = codec.encode(rgb, max_bytes=cap, base_bytes=nominal, target="faithful", effort=args.effort)
            row[f"{key}_s"] = round(time.perf_counter() - t, 1)
            row[key], decs[key] = measure(rgb, data, boxes)
        guard.REGION_LATENTS = True
        rows.append(row)
        print(json.dumps(row), flush=True)
        for b in boxes:
            tiles = [crop(rgb, b)] + [crop(decs[k], b) for k in ("plain", "patches", "regions")]
            strips.append(np.concatenate(tiles, axis=1))
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"machine": platform.platform(), "cores": os.cpu_count(), "load": os.getloadavg(),
            "effort": args.effort, "bpp": args.bpp, "cap_factor": args.cap, "rows": rows}
    Path(f"{out}.json").write_text(json.dumps(meta, indent=1))
    if strips:
        Image.fromarray(np.concatenate(strips)).save(f"{out}_grid.png")
    Path(f"{out}.md").write_text(report(meta))
    print(f"{out}.md")


def _f(v: object) -> str:
    if isinstance(v, list):
        return " ".join(f"{x:.2f}" if isinstance(x, float) else str(x) for x in v) or "–"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def report(meta: dict) -> str:
    lines = [f"# Region latents vs patch layers (effort {meta['effort']}, nominal {meta['bpp']} bpp, "
             f"target faithful, cap {meta['cap_factor']}× nominal)", "",
             f"Machine: {meta['machine']}, {meta['cores']} cores, load at the end {meta['load'][0]:.1f}.", "",
             "| image | face px | nominal B | variant | bytes | guard | target met | faces kept | identity | "
             "shift | block min | LPIPS | MS-SSIM | encode s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in meta["rows"]:
        for key in ("plain", "patches", "regions"):
            m = r[key]
            lines.append(
                f"| {r['image']} | {_f(r['face_px'])} | {r['nominal']} | {key} | {m['bytes']} | "
                f"{m['guard']} | {m['target_met']} | {m['faces_kept']} | {_f(m.get('identity', []))} | "
                f"{_f(m.get('shift', []))} | "
                f"{_f(m['fidelity_min'])} | {m['lpips']:.3f} | {m['msssim']:.3f} | {r[key + '_s']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
