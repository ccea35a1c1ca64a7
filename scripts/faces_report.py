"""Write docs/bench/faces/report.md from the JSON results of faces_bench.py, text_bench.py and
calibrate_identity.py (numbers only from those files; nothing typed in by hand).

    .venv/bin/python scripts/faces_report.py [--dir docs/bench/faces]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import numpy as np

CODECS = ("latent", "avif", "webp")


def face_rows(path: Path) -> list[dict]:
    rows = []
    if not path.exists():
        return rows
    for img in json.loads(path.read_text())["images"]:
        groups = [("full", img.get("rows", []))]
        groups += [("crop256", [{**r, "face": c["face"]} for r in c.get("rows", []) if "face" in r])
                       for c in img.get("crops", []) if c.get("box_from") != "mapped"]
        for kind, group in groups:
            rows += [{**r, "split": img["split"], "image": img["name"], "kind": kind}
                     for r in group if "face" in r]
    return rows


def fmt(v: float | None, nd: int = 3) -> str:
    return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{nd}f}"


def table(rows: list[dict], title: str) -> list[str]:
    out = [f"#### {title}", "",
           "| bpp | codec | faces | mean bytes | identity dist. mean | median | max | landmark shift mean "
           "| still detected | rank-1 kept | faces ≥ 64 px above 0.45 | over budget |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for bpp in sorted({r["bpp"] for r in rows}):
        for c in CODECS:
            sel = [r for r in rows if r["bpp"] == bpp and r["codec"] == c]
            if not sel:
                continue
            d = np.array([r["identity_distance"] for r in sel])
            s = np.array([r["landmark_shift"] for r in sel])
            big = [r for r in sel if r["face_px"] >= 64]
            out.append(
                f"| {bpp:.2f} | {c} | {len(sel)} | {np.mean([r['bytes'] for r in sel]):.0f} | "
                f"{d.mean():.3f} | "
                f"{np.median(d):.3f} | {d.max():.3f} | {s.mean():.3f} | "
                f"{sum(r['detected'] for r in sel)}/{len(sel)} | {sum(r['rank1'] for r in sel)}/{len(sel)} | "
                f"{sum(r['identity_distance'] > 0.45 for r in big)}/{len(big)} | "
                f"{sum(not r['fits'] for r in sel)} |")
    return [*out, ""]


def per_face(rows: list[dict], bpp: float) -> list[str]:
    out = [f"#### Per face at {bpp:.2f} bpp (identity distance / landmark shift / detected)", "",
           "| image | kind | face px | " + " | ".join(CODECS) + " |", "|---|---|---|" + "---|" * len(CODECS)]
    keys = sorted({(r["image"], r["kind"], r["face"]) for r in rows if r["bpp"] == bpp})
    for image, kind, face in keys:
        cells = []
        px = ""
        for c in CODECS:
            m = [r for r in rows if (r["image"], r["kind"], r["face"], r["codec"]) == (image, kind, face, c)
                 and r["bpp"] == bpp]
            if m:
                r = m[0]
                px = r["face_px"]
                cells.append(f"{r['identity_distance']:.2f} / {r['landmark_shift']:.3f} / "
                             f"{'yes' if r['detected'] else '**no**'}")
            else:
                cells.append("–")
        out.append(f"| {image}#{face} | {kind} | {px} | " + " | ".join(cells) + " |")
    return [*out, ""]


def text_section(path: Path) -> list[str]:
    if not path.exists():
        return ["(text benchmark not run)", ""]
    data = json.loads(path.read_text())
    rows = [r for img in data["images"] for r in img["rows"]]
    out = [f"Photos: {', '.join(img['photo'] for img in data['images'])}; effort `{data['effort']}`. "
           "Lines found by the metric's own region search on the originals: "
           + "; ".join(f"{img['photo']}: {len(img['search_found'])}/{len(img['lines'])}"
                       for img in data["images"]),
           "", "| bpp | codec | cap px | lines | mean bytes | CER vs OCR(original) | CER vs rendered truth |",
           "|---|---|---|---|---|---|---|"]
    for bpp in sorted({r["bpp"] for r in rows}):
        for c in CODECS:
            for cap in sorted({r["cap_px"] for r in rows}):
                sel = [r for r in rows if r["bpp"] == bpp and r["codec"] == c and r["cap_px"] == cap
                       and r["cer"] is not None]
                if sel:
                    nbytes = np.mean([r["bytes"] for r in sel])
                    out.append(f"| {bpp:.2f} | {c} | {cap} | {len(sel)} | {nbytes:.0f} "
                               f"| {np.mean([r['cer'] for r in sel]):.3f} | "
                               f"{np.mean([r['cer_truth'] for r in sel]):.3f} |")
    return [*out, ""]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="docs/bench/faces")
    args = ap.parse_args()
    d = Path(args.dir)
    test = face_rows(d / "results_test_crops.json") + face_rows(d / "results_test_full.json")
    train = face_rows(d / "results_train_crops.json")
    calib = json.loads((d / "calibration.json").read_text()) if (d / "calibration.json").exists() else None
    setinfo = json.loads((d / "set.json").read_text())
    meta = {}
    for name in ("results_test_crops.json", "results_train_crops.json", "results_test_full.json"):
        if (d / name).exists():
            meta[name] = json.loads((d / name).read_text())
    lines = ["# Faces and text: today's codec against AVIF and WebP at the same bytes (issue 12)", "",
             f"Machine: {platform.platform()}, {os.cpu_count()} CPU cores shared with other developers "
             "(torch 1 thread, load average 4–10 while measuring), no GPU. Codec: the last commit's "
             "`codec.encode(img, max_bytes=…)` (effort "
             f"`{next(iter(meta.values()))['effort'] if meta else '?'}`), baselines via "
             "`codec.baselines.encode_at_budget` (quality mode; 'over budget' counts baseline files "
             "whose smallest quality was still larger than the budget — they got MORE bytes than the "
             "latent).",
             "", "Elapsed: " + ", ".join(f"{k}: {v.get('elapsed_s', '?')} s" for k, v in meta.items()), "",
             "Metric: `codec.metrics.identity.compare_faces` (dlib HOG detector, 5-point alignment, 128-D "
             "ResNet embedding; see codec/metrics/IDENTITY.md). Faces are the detector's boxes on the "
             "original. "
             "'rank-1 kept' = the decode's embedding is nearer to its own original than to any other face "
             "of the set.", "",
             f"Set (`scripts/faces_set.py`, {setinfo['scanned_train_photos']} training photos scanned, "
             "faces ≥ "
             f"{setinfo['min_face_px']} px): test = Kodak portraits kodim04/15/18/19/20, skimage astronaut, "
             "matplotlib Grace Hopper (reported only); training photos with faces alternate into "
             "calibration / "
             "held-out (8 each used here). `crop256` rows: a 256×256 face photo (2× the face box, "
             "resized) coded alone; `full` rows: the whole photo.", ""]
    lines += ["## Test faces (never calibrated on)", ""]
    for kind in ("crop256", "full"):
        sel = [r for r in test if r["kind"] == kind]
        if sel:
            lines += table(sel, f"{kind}: {len({(r['image'], r['face']) for r in sel})} faces")
    if test:
        lines += per_face(test, 0.10)
    lines += ["## Training faces (calibration + held-out halves)", ""]
    for split in ("calibration", "heldout"):
        sel = [r for r in train if r["split"] == split]
        if sel:
            lines += table(sel, f"{split}, crop256: {len({(r['image'], r['face']) for r in sel})} faces")
    lines += ["## Calibrated floors", ""]
    if calib:
        lines += ["```json", json.dumps(calib, indent=1), "```", ""]
    lines += ["## Text (rendered signs on training photos)", "", *text_section(d / "text_results.json")]
    lines += ["## Crop grids", "",
              "* `results_test_crops_crops256_grid_0.10bpp.png`, "
              "`results_train_crops_crops256_grid_0.10bpp.png`: "
              "original | latent | AVIF | WebP at 0.10 bpp, one row per face.",
              "* `results_test_full_grid_0.10bpp.png` (when the full-image run finished): the same for "
              "whole photos.",
              "* `text_grid_0.10bpp.png`: the 12-px line, original | latent | AVIF | WebP.", ""]
    (d / "report.md").write_text("\n".join(lines))
    print(f"wrote {d / 'report.md'}")


if __name__ == "__main__":
    main()
