"""Calibrate per-face floors (identity distance, landmark shift) on the CALIBRATION half of the faces set.

    .venv/bin/python scripts/calibrate_identity.py docs/bench/faces/results_train_crops.json [...]
        [--out docs/bench/faces/calibration.json]

Label of a coded face (from scripts/faces_bench.py rows): **kept** when the detector still finds it in
the decode AND the decode's embedding is nearer to its own original than to every other face of the set
(rank-1 identification, other people as distractors); otherwise **failed**. Only rows of split
``calibration`` are used to choose floors; ``heldout`` rows are scored with the chosen floors.

The label shares the embedding network with the identity distance, so the distance floor is not an
independent ground truth; the landmark shift and the detector are independent of it.

Floors reported for each metric:
* ``safe`` — the largest value below which no calibration face failed (precision 1 for "kept");
* ``youden`` — the value maximising TPR − FPR (kept below, failed above);
* ``precision90`` — the largest value below which ≥ 90 % of the calibration faces were kept;
* ``recommended`` — the lower of ``youden`` and ``precision90`` (dropped when below the kept faces'
  10th percentile), rounded down to 0.01 (the encoder's
  protection target). ``safe`` is reported but not used: one noisy failure makes it useless.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

METRICS = ("identity_distance", "landmark_shift")


def face_rows(paths: list[str]) -> list[dict]:
    rows = []
    for path in paths:
        for img in json.loads(Path(path).read_text())["images"]:
            groups = [("full", img.get("rows", []))]
            groups += [("crop256", [{**r, "face": c["face"]} for r in c.get("rows", []) if "face" in r])
                       for c in img.get("crops", []) if c.get("box_from") != "mapped"]
            for kind, group in groups:
                for r in group:
                    if "face" in r:
                        rows.append({**r, "split": img["split"], "image": img["name"], "kind": kind,
                                     "kept": bool(r["detected"]) and bool(r["rank1"])})
    return rows


def floors(values: np.ndarray, kept: np.ndarray) -> dict:
    if kept.all() or not kept.any():
        return {"safe": None, "youden": None, "recommended": None,
                "note": "calibration rows are all one class: no separation to measure"}
    failed_min = float(values[~kept].min())
    grid = np.unique(np.concatenate([values, [failed_min]]))
    best, best_j = grid[0], -1.0
    for t in grid:
        tpr = float((values[kept] < t).mean())
        fpr = float((values[~kept] < t).mean())
        if tpr - fpr > best_j:
            best, best_j = float(t), tpr - fpr
    # Largest value below which at least 90 % of the calibration faces were kept.
    p90 = None
    for t in grid:
        below = values < t
        if below.any() and kept[below].mean() >= 0.9:
            p90 = float(t)
    # A precision-90 floor below the kept faces' 10th percentile is degenerate (it would reject 90 % of
    # the faces that were kept): the metric does not separate at that precision, so use Youden's.
    if p90 is not None and p90 < np.percentile(values[kept], 10):
        p90 = None
    rec = np.floor(min(best, p90 if p90 is not None else best) * 100) / 100
    return {"safe": failed_min, "youden": best, "youden_j": best_j, "precision90": p90,
            "recommended": float(rec)}


def summary(values: np.ndarray) -> dict:
    if values.size == 0:
        return {"n": 0}
    q = np.percentile(values, [10, 50, 90])
    return {"n": int(values.size), "p10": float(q[0]), "median": float(q[1]), "p90": float(q[2]),
            "min": float(values.min()), "max": float(values.max())}


def score(rows: list[dict], rec: dict) -> dict:
    if not rows:
        return {"n": 0}
    kept = np.array([r["kept"] for r in rows])
    ok = np.ones(len(rows), bool)
    for m in METRICS:
        if rec[m]["recommended"] is not None:
            ok &= np.array([r[m] for r in rows]) < rec[m]["recommended"]
    return {"n": len(rows), "kept": int(kept.sum()), "pass_floors": int(ok.sum()),
            "pass_and_kept": int((ok & kept).sum()), "pass_but_failed": int((ok & ~kept).sum()),
            "reject_but_kept": int((~ok & kept).sum())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("results", nargs="+")
    ap.add_argument("--out", default="docs/bench/faces/calibration.json")
    args = ap.parse_args()
    rows = face_rows(args.results)
    calib = [r for r in rows if r["split"] == "calibration"]
    kept = np.array([r["kept"] for r in calib])
    out: dict = {"label": "kept = still detected AND rank-1 identified among the set's faces",
                 "calibration_rows": len(calib), "calibration_kept": int(kept.sum()) if calib else 0,
                 "faces": len({(r["image"], r["face"]) for r in calib}),
                 "calibration_failed_not_detected": sum(not r["detected"] for r in calib),
                 "calibration_failed_rank1": sum(not r["rank1"] for r in calib)}
    for m in METRICS:
        v = np.array([r[m] for r in calib], float)
        out[m] = {"kept": summary(v[kept]) if calib else {}, "failed": summary(v[~kept]) if calib else {},
                  **(floors(v, kept) if calib else {"recommended": None})}
    out["heldout_score"] = score([r for r in rows if r["split"] == "heldout"], out)
    out["calibration_score"] = score(calib, out)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
