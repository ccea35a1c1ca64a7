"""Face protection before/after (issue 12): the latent without and with the identity check, AVIF at the
same bytes; identity per face, protection bytes, whole-image LPIPS / MS-SSIM; a crop grid.

    .venv/bin/python scripts/faces_protection_bench.py --bpp 0.10 --out docs/bench/faces/protection

Test images by default (Kodak portraits + skimage's astronaut): nothing here calibrates anything;
``--images train:bsds500/15062.jpg,...`` runs training photos (the calibration split of
docs/bench/faces/set.json) — the only ones a design choice may be tuned on. The floors
are `codec.encoder.faces` (calibrated on training faces). Writes ``<out>.json``, ``<out>.md`` and
``<out>_grid_<bpp>bpp.png`` (original | latent before | latent after | AVIF, one row per face).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import codec
from codec.baselines import decode_baseline, encode_at_budget
from codec.encoder import faces as face_check
from codec.metrics import lpips, ms_ssim
from codec.metrics.identity import compare_faces
from codec.options import bpp_to_bytes
from codec.resources import kodak_dir

PORTRAITS = ("kodim04", "kodim15", "kodim18", "kodim19", "kodim20")
CROP = 128


def crop256(name: str, rgb: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """H6's ``crop256`` rows: a 256×256 face photo (2× the face box, resized) per face of ``rgb``."""
    found = face_check.detect(rgb)
    out = []
    for i, b in enumerate(found.boxes if found else ()):
        cx, cy = (b.left + b.right) // 2, (b.top + b.bottom) // 2
        half = min(b.right - b.left, rgb.shape[0] // 2, rgb.shape[1] // 2)
        x0 = int(np.clip(cx - half, 0, rgb.shape[1] - 2 * half))
        y0 = int(np.clip(cy - half, 0, rgb.shape[0] - 2 * half))
        tile = Image.fromarray(rgb[y0:y0 + 2 * half, x0:x0 + 2 * half]).resize((256, 256), Image.LANCZOS)
        out.append((f"{name}#{i}/crop256", np.asarray(tile)))
    return out


def images(names: list[str], crops: bool = False) -> list[tuple[str, np.ndarray]]:
    out = []
    for name in names:
        if name == "astronaut":
            from skimage import data

            out.append((name, np.asarray(data.astronaut())))
        elif name.startswith("train:"):  # a training photo (docs/bench/faces/set.json's splits)
            from codec.resources import train_dir

            out.append((name, np.asarray(Image.open(train_dir() / name[6:]).convert("RGB"))))
        else:
            out.append((name, np.asarray(Image.open(kodak_dir() / f"{name}.png").convert("RGB"))))
    if crops:
        return [c for name, rgb in out for c in crop256(name, rgb)]
    return out


def avif_at(rgb: np.ndarray, budget: int) -> tuple[bytes, np.ndarray]:
    res = encode_at_budget(rgb, "avif", budget, mode="quality")
    if not res.fits:
        res = encode_at_budget(rgb, "avif", budget, mode="downscale")
    return res.data, decode_baseline(res, (rgb.shape[1], rgb.shape[0]))


def crop(rgb: np.ndarray, box) -> np.ndarray:
    cx, cy = (box.left + box.right) / 2, (box.top + box.bottom) / 2
    half = 0.8 * max(box.right - box.left, box.bottom - box.top)
    x0, y0 = int(max(0, cx - half)), int(max(0, cy - half))
    x1, y1 = int(min(rgb.shape[1], cx + half)), int(min(rgb.shape[0], cy + half))
    return np.asarray(Image.fromarray(rgb[y0:y1, x0:x1]).resize((CROP, CROP), Image.LANCZOS))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", default=",".join((*PORTRAITS, "astronaut")))
    ap.add_argument("--bpp", default="0.10")
    ap.add_argument("--effort", default="default")
    ap.add_argument("--out", default="docs/bench/faces/protection")
    ap.add_argument("--crop256", action="store_true", help="code 256×256 face photos instead of whole images")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows, grids = [], {}
    for name, rgb in images(args.images.split(","), args.crop256):
        found = face_check.detect(rgb)
        boxes = list(found.boxes) if found else []
        for bpp in [float(b) for b in args.bpp.split(",")]:
            budget = bpp_to_bytes(bpp, rgb.shape[1], rgb.shape[0])
            t0 = time.perf_counter()
            before = codec.encode(rgb, max_bytes=budget, effort=args.effort, check_faces=False)
            t1 = time.perf_counter()
            after = codec.encode(rgb, max_bytes=budget, effort=args.effort)
            t2 = time.perf_counter()
            avif, dec_avif = avif_at(rgb, budget)
            decs = {"before": np.asarray(codec.decode(before)), "after": np.asarray(codec.decode(after)),
                    "avif": dec_avif}
            sizes = {"before": len(before), "after": len(after), "avif": len(avif)}
            meta = codec.info(after)
            row = {"image": name, "bpp": bpp, "budget": budget, "faces": len(boxes),
                   "faces_too_small": found.too_small if found else None,
                   "protection_bytes": meta.get("protection_bytes"), "guard": meta.get("guard"),
                   "faces_kept": meta.get("faces_kept"), "encode_s_before": round(t1 - t0, 1),
                   "encode_s_after": round(t2 - t1, 1)}
            for key, dec in decs.items():
                row[f"{key}_bytes"] = sizes[key]
                row[f"{key}_lpips"] = lpips(rgb, dec)
                row[f"{key}_msssim"] = ms_ssim(rgb, dec)
                if boxes:
                    rep = compare_faces(rgb, dec, faces=boxes, probe_small=False)
                    row[f"{key}_identity"] = [f.identity_distance for f in rep.measured]
                    row[f"{key}_shift"] = [f.landmark_shift for f in rep.measured]
                    row[f"{key}_detected"] = [f.detected_in_decoded for f in rep.measured]
            rows.append(row)
            print(json.dumps(row), flush=True)
            for box in boxes:
                grids.setdefault(bpp, []).append(np.concatenate(
                    [crop(rgb, box)] + [crop(decs[k], box) for k in ("before", "after", "avif")], axis=1))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"machine": platform.platform(), "effort": args.effort,
                                                    "rows": rows}, indent=1))
    for bpp, strips in grids.items():
        Image.fromarray(np.concatenate(strips)).save(f"{out}_grid_{bpp:.2f}bpp.png")
        print(f"{out}_grid_{bpp:.2f}bpp.png")
    out.with_suffix(".md").write_text(report(rows, args.effort))


def _f(v: object) -> str:
    if isinstance(v, list):
        return " ".join(f"{x:.2f}" if isinstance(x, float) else str(x) for x in v) or "–"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def report(rows: list[dict], effort: str) -> str:
    lines = [f"# Face protection: latent before / after the identity check vs AVIF (effort {effort})", "",
             "| image | bpp | faces | bytes before / after / AVIF | protection B | identity before | after | "
             "AVIF | shift before | after | AVIF | LPIPS before / after / AVIF "
             "| MS-SSIM before / after / AVIF |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['image']} | {r['bpp']:.2f} | {r['faces']} | {r['before_bytes']} / {r['after_bytes']} / "
            f"{r['avif_bytes']} | {r['protection_bytes']} | {_f(r.get('before_identity', []))} | "
            f"{_f(r.get('after_identity', []))} | {_f(r.get('avif_identity', []))} | "
            f"{_f(r.get('before_shift', []))} | {_f(r.get('after_shift', []))} | "
            f"{_f(r.get('avif_shift', []))} | "
            f"{r['before_lpips']:.3f} / {r['after_lpips']:.3f} / {r['avif_lpips']:.3f} | "
            f"{r['before_msssim']:.3f} / {r['after_msssim']:.3f} / {r['avif_msssim']:.3f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
