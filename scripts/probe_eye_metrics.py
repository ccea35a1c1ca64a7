"""Probe: which eye metric separates a REDRAWN iris from a classical codec's softening (issue 12, the
kodim04 "Standard" iris that `eye_shape` = 0.042 passes under its 0.07 floor).

    .venv/bin/python scripts/probe_eye_metrics.py --cache bench-out/face_features_512 \
        --rows bench-out/face_features_512/rows.json --out docs/bench/faces/eye_metrics_probe.json

Reads the decodes `scripts/calibrate_features.py --side 512 --bpp 0.10 0.15` cached (training faces only,
calibration / held-out halves of docs/bench/faces/set.json; Kodak never) and its rows (``id_ok``). For
every candidate metric (worst over the eyes ≥ `ff.SHAPE_MIN_EYE_PX`):

* positives: AVIF and WebP id-accepted decodes (softened but faithful, `POSITIVE_CODECS` of the
  calibration script);
* negatives: synthetic redraws on the id-accepted latent and classical decodes and on the original —
  `reshape_irises` at share 0.5 and 0.25 (a milder wedge), `turn_gaze` at 0.2 and 0.1 eye widths;
* the floor: Youden's point on the CALIBRATION half, then scored on the held-out half; plus the share of
  the latent's own id-accepted decodes over it (what the encoder would then protect).

``--report IMAGE DECODE…`` also prints the candidates for an image outside the set (reported only).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from calibrate_features import crops, youden  # noqa: E402

from codec.metrics import face_features as ff  # noqa: E402
from codec.metrics import identity as idm  # noqa: E402
from codec.metrics.fidelity import luma  # noqa: E402

Metric = Callable[[np.ndarray, np.ndarray, ff.Region, float], float | None]


def shape(blur: float) -> Metric:
    def f(o: np.ndarray, d: np.ndarray, eye: ff.Region, ew: float) -> float | None:
        return ff._structure(o, d, eye, ew, blur=blur)
    return f


def bandpass(s1: float, s2: float) -> Metric:
    """Energy of the decode's band-pass error over the original's band-pass energy in the eye ellipse
    (band = G(s1·ew) − G(s2·ew)): ≈ 1 for a decode with no detail in that band, < 1 where it follows the
    original, larger where it draws other structure."""
    def f(o: np.ndarray, d: np.ndarray, eye: ff.Region, ew: float) -> float | None:
        h, w = o.shape[:2]
        x0, y0, x1, y1 = eye.bounds(h, w, pad=1.0)
        m = int(3 * s2 * ew) + 2
        X0, Y0, X1, Y1 = max(0, x0 - m), max(0, y0 - m), min(w, x1 + m), min(h, y1 + m)
        a, c = luma(o[Y0:Y1, X0:X1]), luma(d[Y0:Y1, X0:X1])

        def band(z: np.ndarray) -> np.ndarray:
            return (gaussian_filter(z, s1 * ew) if s1 > 0 else z) - gaussian_filter(z, s2 * ew)
        inner = (slice(y0 - Y0, y1 - Y0), slice(x0 - X0, x1 - X0))
        mask = eye.mask(x0, y0, x1, y1)
        ha, hc = band(a)[inner], band(c)[inner]
        return float((((hc - ha) ** 2) * mask).sum() / max(((ha ** 2) * mask).sum(), 4 * mask.sum()))
    return f


def lab_error(blur: float, region: str = "aperture") -> Metric:
    """Mean CIELAB distance (ΔE*ab) per pixel in the eye's opening (`ff.APERTURE` ellipse, or the eye
    ellipse) after blurring both crops by ``blur`` eye widths: where iris, pupil and sclera sit, in colour."""
    def f(o: np.ndarray, d: np.ndarray, eye: ff.Region, ew: float) -> float | None:
        reg = eye if region == "eye" else ff.Region(eye.cx, eye.cy, ff.APERTURE[0] * ew, ff.APERTURE[1] * ew,
                                                    eye.angle)
        h, w = o.shape[:2]
        x0, y0, x1, y1 = reg.bounds(h, w, pad=1.0)
        m = int(3 * blur * ew) + 2
        X0, Y0, X1, Y1 = max(0, x0 - m), max(0, y0 - m), min(w, x1 + m), min(h, y1 + m)
        lo, ld = ff.srgb_to_lab(o[Y0:Y1, X0:X1]), ff.srgb_to_lab(d[Y0:Y1, X0:X1])
        lo = np.stack([gaussian_filter(lo[..., i], blur * ew) for i in range(3)], -1)
        ld = np.stack([gaussian_filter(ld[..., i], blur * ew) for i in range(3)], -1)
        inner = (slice(y0 - Y0, y1 - Y0), slice(x0 - X0, x1 - X0))
        mask = reg.mask(x0, y0, x1, y1)
        de = np.linalg.norm(lo[inner] - ld[inner], axis=-1)
        return float((de * mask).sum() / max(mask.sum(), 1e-9))
    return f


METRICS: dict[str, Metric] = {
    "lab_ap_0.03": lab_error(0.03), "lab_ap_0.05": lab_error(0.05), "lab_ap_0.08": lab_error(0.08),
    "lab_eye_0.05": lab_error(0.05, "eye"),
    "shape_0.05": shape(0.05), "shape_0.08": shape(0.08), "shape_0.12": shape(0.12),
    "bp_0.03_0.12": bandpass(0.03, 0.12), "bp_0.05_0.15": bandpass(0.05, 0.15),
    "bp_0.05_0.25": bandpass(0.05, 0.25), "bp_0.08_0.25": bandpass(0.08, 0.25),
}
FAILURES = {
    "reshape_0.5": lambda img, lm: ff.reshape_irises(img, lm, 0.5),
    "reshape_0.25": lambda img, lm: ff.reshape_irises(img, lm, 0.25),
    "gaze_0.2": lambda img, lm: ff.turn_gaze(img, lm, 0.2),
    "gaze_0.1": lambda img, lm: ff.turn_gaze(img, lm, 0.1),
}


def worst(o: np.ndarray, d: np.ndarray, lm: np.ndarray) -> dict[str, float | None]:
    reg = ff.feature_regions(lm)
    out: dict[str, float | None] = {}
    for name, fn in METRICS.items():
        v = [fn(o, d, eye, ew) for eye, ew in zip(reg.eyes, reg.eye_width, strict=True)
             if ew >= ff.SHAPE_MIN_EYE_PX]
        v = [x for x in v if x is not None]
        out[name] = max(v) if v else None
    return out


def collect(spec: dict, rows: list[dict], cache: Path, side: int) -> list[dict]:
    ok = {(r["split"], r["face"], r["codec"], round(float(r["bpp"]), 2)): r["id_ok"] for r in rows
          if r["kind"] == "natural"}
    out = []
    for split in ("calibration", "heldout"):
        for key, crop, box in crops(split, spec, side):
            lm = idm.face_landmarks(crop, box)
            decodes = [("original", 0.0, crop, True)]
            for (s, f, c, b), good in sorted(ok.items()):
                if s == split and f == key:
                    png = cache / f"{split}/{key}_{c}_{b:.2f}.png"
                    decodes.append((c, b, np.asarray(Image.open(png).convert("RGB")), good))
            for codec_name, bpp, dec, good in decodes:
                base = {"split": split, "face": key, "codec": codec_name, "bpp": bpp, "id_ok": good}
                if codec_name != "original":
                    out.append({**base, "kind": "natural", **worst(crop, dec, lm)})
                if good:
                    for fname, fn in FAILURES.items():
                        out.append({**base, "kind": fname, **worst(crop, fn(dec, lm), lm)})
            print(split, key, flush=True)
    return out


def evaluate(rows: list[dict]) -> dict:
    res = {}
    for m in METRICS:
        def vals(split: str, pred: Callable[[dict], bool], m: str = m) -> np.ndarray:
            return np.asarray([r[m] for r in rows
                               if r["split"] == split and r.get(m) is not None and pred(r)])

        def pos(r: dict) -> bool:
            return r["kind"] == "natural" and r["id_ok"] and r["codec"] in ("avif", "webp")

        def lat(r: dict) -> bool:
            return r["kind"] == "natural" and r["id_ok"] and r["codec"] == "latent"
        cal_pos, cal_neg = vals("calibration", pos), vals("calibration", lambda r: r["kind"] in FAILURES)
        floor, j = youden(list(cal_pos), list(cal_neg))
        entry = {"youden": floor, "youden_j": j, "classical_p90": float(np.percentile(cal_pos, 90)),
                 "classical_max": float(cal_pos.max())}
        for split in ("calibration", "heldout"):
            p, la = vals(split, pos), vals(split, lat)
            entry[split] = {"classical_over": f"{int((p > floor).sum())}/{p.size}",
                            "latent_id_ok_over": f"{int((la > floor).sum())}/{la.size}",
                            **{f: f"{int((v > floor).sum())}/{v.size}" for f in FAILURES
                               for v in [vals(split, lambda r, f=f: r["kind"] == f)]}}
        res[m] = entry
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", default=str(ROOT / "docs/bench/faces/set.json"))
    ap.add_argument("--cache", default=str(ROOT / "bench-out/face_features_512"))
    ap.add_argument("--rows", default=str(ROOT / "bench-out/face_features_512/rows.json"))
    ap.add_argument("--side", type=int, default=512)
    ap.add_argument("--metric-rows", default=str(ROOT / "bench-out/eye_metric_rows.json"))
    ap.add_argument("--reuse", action="store_true", help="re-evaluate --metric-rows only")
    ap.add_argument("--out", default="")
    ap.add_argument("--report", nargs="+", default=None, metavar="IMAGE DECODE",
                    help="print the candidates for IMAGE's faces in each DECODE (reported, not calibrated)")
    args = ap.parse_args()
    if args.report:
        o = np.asarray(Image.open(args.report[0]).convert("RGB"))
        for p in args.report[1:]:
            d = np.asarray(Image.open(p).convert("RGB"))
            for box in idm.detect_faces(o):
                print(p, box.size, {k: None if v is None else round(v, 4)
                                    for k, v in worst(o, d, idm.face_landmarks(o, box)).items()})
        return
    if args.reuse:
        mrows = json.loads(Path(args.metric_rows).read_text())
    else:
        spec = json.loads(Path(args.set).read_text())
        mrows = collect(spec, json.loads(Path(args.rows).read_text()), Path(args.cache), args.side)
        Path(args.metric_rows).write_text(json.dumps(mrows))
    res = evaluate(mrows)
    print(json.dumps(res, indent=1))
    if args.out:
        command = "scripts/probe_eye_metrics.py " + " ".join(sys.argv[1:])
        Path(args.out).write_text(json.dumps({"command": command, "metrics": res}, indent=1))


if __name__ == "__main__":
    main()
