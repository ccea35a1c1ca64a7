"""What the patch layer's blend margin (`codec.encoder.guard.PATCH_MARGIN`) does to the files that carry one.

Margin 0 = replace mode throughout (the layers before 2026-12-02); any other margin = blend mode with it,
feather mode (`PATCH_FEATHER`) where blend cannot afford `MIN_PATCH_QUALITY` (as shipped).

    .venv/bin/python scripts/patch_margin_probe.py [--split heldout] [--bpp 0.05 0.10 0.15] [--side 512]
        [--margins 0 4] [--effort fast] [--images PNG ...] --out OUT.json [--crops DIR]

Every face ≥ 48 px of the ``--split`` training photos of the faces set (``docs/bench/faces/set.json``;
never Kodak) as a ``--side`` crop, coded at each bpp with the guard on (``codec.encode_result``, effort
``--effort``) and the first margin; the files where the guard acted (or the face failed) are coded
again with each other margin. ``--images``: whole images instead (no face metrics; to report on test
images, never to tune).
Per file: bytes, the guard's choice, patch bytes and quality, the file's own seam score of its windows
(`codec.metrics.seams`), worst block fidelity, the face's eye shape / identity / landmark shift, and
whole-image MS-SSIM / LPIPS. ``--crops``: one PNG per patched file, the patched area at 2×, original and
then each margin's decode.
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
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from calibrate_features import crops  # noqa: E402

import codec  # noqa: E402
from codec.container import parse as parse_file  # noqa: E402
from codec.container import patchlayer  # noqa: E402
from codec.encoder import guard  # noqa: E402
from codec.metrics import identity as idm  # noqa: E402
from codec.metrics import lpips, ms_ssim  # noqa: E402

shipped_feather = guard.PATCH_FEATHER


def measure(crop: np.ndarray, box: idm.FaceBox | None, budget: int, margin: int, effort: str = "fast"
            ) -> tuple[dict, np.ndarray, object]:
    guard.PATCH_MARGIN = margin
    guard.PATCH_FEATHER = shipped_feather if margin else 0  # margin 0: replace mode throughout
    t0 = time.time()
    res = codec.encode_result(crop, max_bytes=budget, effort=effort)
    seconds = time.time() - t0
    info = codec.info(res.data)
    dec = res.reconstruction
    f = idm.compare_faces(crop, dec, faces=[box], probe_small=False).measured[0] if box is not None else None
    feats = f.features.to_dict() if f is not None and f.features is not None else {}
    header = parse_file(res.data)[0]
    layer = (patchlayer.parse(header.patch_layer, header.width, header.height)
             if header.patch_layer is not None else None)
    row = {"margin": margin, "bytes": len(res.data), "seconds": round(seconds, 2), "guard": info.get("guard"),
           "protection_bytes": info.get("protection_bytes"), "faces_kept": info.get("faces_kept"),
           "patch_bytes": len(header.patch_layer) if header.patch_layer is not None else 0,
           "patch_windows": len(layer.indices) if layer is not None else 0,
           "patch_codec": layer.codec if layer is not None else None,
           "patch_seams": info.get("patch_seams"), "fidelity_min": info.get("fidelity_min"),
           "eye_shape": feats.get("eye_shape"), "identity": f.identity_distance if f else None,
           "landmark": f.landmark_shift if f else None, "ms_ssim": float(ms_ssim(crop, dec)),
           "lpips": float(lpips(crop, dec))}
    return row, dec, layer


def crop_panel(original: np.ndarray, decodes: list[np.ndarray], layer: patchlayer.PatchLayer) -> Image.Image:
    """The bounding box of the layer's windows (+16 px) in the original and each decode, side by side, 2×."""
    h, w = original.shape[:2]
    grid = patchlayer.Grid(h, w, layer.block)
    rects = [grid.rect(i) for i in layer.indices]
    x0 = max(0, min(r[0] for r in rects) - 16)
    y0 = max(0, min(r[1] for r in rects) - 16)
    x1 = min(w, max(r[0] + r[2] for r in rects) + 16)
    y1 = min(h, max(r[1] + r[3] for r in rects) + 16)
    tiles = [Image.fromarray(a[y0:y1, x0:x1]).resize(((x1 - x0) * 2, (y1 - y0) * 2), Image.NEAREST)
             for a in [original, *decodes]]
    out = Image.new("RGB", (sum(t.width for t in tiles) + 4 * (len(tiles) - 1), tiles[0].height), "white")
    x = 0
    for t in tiles:
        out.paste(t, (x, 0))
        x += t.width + 4
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", default=str(ROOT / "docs/bench/faces/set.json"))
    ap.add_argument("--split", default="heldout")
    ap.add_argument("--bpp", type=float, nargs="+", default=[0.05, 0.10, 0.15])
    ap.add_argument("--side", type=int, default=512)
    ap.add_argument("--margins", type=int, nargs="+", default=[0, 4])
    ap.add_argument("--out", required=True)
    ap.add_argument("--crops", default=None)
    ap.add_argument("--effort", default="fast")
    ap.add_argument("--images", nargs="*", default=None,
                    help="whole images instead of the faces set (no face metrics; to report, not tune)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    shipped = guard.PATCH_MARGIN
    spec = json.loads(Path(args.set).read_text())
    rows = []
    t0 = time.time()
    items = ([(Path(p).name, np.asarray(Image.open(p).convert("RGB")), None) for p in args.images]
             if args.images else crops(args.split, spec, args.side))
    for key, crop, box in items:
        for bpp in args.bpp:
            budget = int(bpp * crop.shape[0] * crop.shape[1] / 8)
            first, dec, layer = measure(crop, box, budget, args.margins[0], args.effort)
            row = {"face": key, "bpp": bpp, "budget": budget, "runs": [first]}
            decodes = [dec]
            if layer is not None or first["guard"] not in (None, "none") or first["faces_kept"] is False:
                for m in args.margins[1:]:
                    r, d, _ = measure(crop, box, budget, m, args.effort)
                    row["runs"].append(r)
                    decodes.append(d)
                if args.crops and layer is not None:
                    Path(args.crops).mkdir(parents=True, exist_ok=True)
                    crop_panel(crop, decodes, layer).save(
                        Path(args.crops) / f"{key.replace('#', '_')}_{bpp:.2f}.png")
            rows.append(row)
            print(key, bpp, " | ".join(
                f"m{r['margin']} {r['bytes']} B {r['guard']} patch {r['patch_bytes']} "
                f"seams {r['patch_seams']} shape {r['eye_shape']} id {r['identity']} "
                f"ms {r['ms_ssim']:.4f} lp {r['lpips']:.4f}" for r in row["runs"]), flush=True)
    guard.PATCH_MARGIN = shipped
    guard.PATCH_FEATHER = shipped_feather
    patched = [r for r in rows if any(run["patch_bytes"] for run in r["runs"])]

    def med(key: str, k: int) -> float | None:
        v = [r["runs"][k][key] for r in patched if len(r["runs"]) > k and r["runs"][k][key] is not None]
        return float(np.median(v)) if v else None

    summary = {"files": len(rows), "patched_at_some_margin": len(patched),
               "per_margin": {str(m): {key: med(key, k) for key in (
                   "patch_seams", "patch_bytes", "eye_shape", "identity", "landmark", "fidelity_min",
                   "ms_ssim", "lpips", "seconds")} | {
                   "with_patches": sum(len(r["runs"]) > k and r["runs"][k]["patch_bytes"] > 0
                                       for r in patched)}
                   for k, m in enumerate(args.margins)}}
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, 1 thread"
    out = {"what": f"patch-layer blend margin, guard on, effort {args.effort}", "split": args.split,
           "side": args.side, "bpp": args.bpp, "margins": args.margins, "images": args.images,
           "machine": machine,
           "date": time.strftime("%Y-%m-%d %H:%M"), "elapsed_s": round(time.time() - t0, 1),
           "summary": summary, "rows": rows}
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
