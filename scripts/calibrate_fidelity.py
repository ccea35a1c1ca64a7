"""Calibrate the fidelity floor on TRAINING photos (never Kodak): natural decodes vs structural failures.

    .venv/bin/python scripts/calibrate_fidelity.py --n 36 --faces 12 --bpps 0.05 0.10 0.15 \
        --cache /tmp/fidcal/decodes --out docs/bench/fidelity/calibration.json

1. NATURAL: ``--n`` photos sampled from ``$CODEC_TRAIN_DIR`` (→ ../shared/data/train; fixed seed, the
   same share from each subfolder) plus ``--faces`` training photos with faces (the non-test entries of
   docs/bench/faces/set.json), each encoded with the guard OFF at every ``--bpps`` (effort default) and
   decoded (decodes kept as PNG in ``--cache``, so changing the score only re-scores). The worst block
   of each decode is what the guard would see.
2. SYNTHETIC STRUCTURAL FAILURES, built on the 0.10 bpp decodes (so the rest of the picture carries the
   codec's ordinary damage): what users saw at small budgets (issue 12) —
   ``head_mean`` / ``head_dark`` / ``head_vanished`` (a head box, from dlib's detector on the original,
   filled with its mean colour / a near-black rectangle / the surrounding background), ``eyes_black``,
   ``object_removed`` (the most structured box inpainted with the surrounding mean + grain),
   ``edge_bent`` (a box around the strongest edges warped by a smooth 6 px bulge), ``hatching_painted``
   (the box with most fine detail blurred and overlaid with smooth painted texture), and the existing
   synthetic text / line-art / road-sign cases (`codec.tools.bench.synthetic`) encoded at 0.10 bpp.
   For each failure the score that matters is the worst block INSIDE the damaged box (the guard must
   see those blocks); ``grain`` (the decode + Gaussian grain σ = 6) is a control that must NOT fail.
3. Prints, per score (fine = the 32×32 SSIM × colour, coarse, combined), the natural worst-block
   percentiles per bpp, the share of natural decodes under a floor (false alarms) and the share of
   failures caught, and writes everything to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FLOORS = (0.10, 0.15, 0.20, 0.25, 0.30)


def sample(train: Path, n: int, seed: int = 5) -> list[Path]:
    subs = sorted(p for p in train.iterdir() if p.is_dir())
    rng = random.Random(seed)
    per = -(-n // len(subs))
    out: list[Path] = []
    for sub in subs:
        files = sorted(p for p in sub.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        out += rng.sample(files, min(per, len(files)))
    return out[:n]


def face_photos(train: Path, k: int) -> list[Path]:
    """Training photos with faces (docs/bench/faces/set.json, never its test split)."""
    meta = json.loads((ROOT / "docs/bench/faces/set.json").read_text())
    paths = [train / im["path"].split(":", 1)[1] for im in meta["images"]
             if im.get("split") != "test" and im["path"].startswith("train:")]
    return paths[:k]


# ----------------------------------------------------------------------------- synthetic failures


def _box_clip(box: tuple[int, int, int, int], h: int, w: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    return max(0, x0), max(0, y0), min(w, x1), min(h, y1)


def _ring_mean(img: np.ndarray, box: tuple[int, int, int, int], pad: int) -> np.ndarray:
    h, w = img.shape[:2]
    x0, y0, x1, y1 = box
    X0, Y0, X1, Y1 = _box_clip((x0 - pad, y0 - pad, x1 + pad, y1 + pad), h, w)
    m = np.zeros((h, w), bool)
    m[Y0:Y1, X0:X1] = True
    m[y0:y1, x0:x1] = False
    return img[m].reshape(-1, 3).mean(axis=0) if m.any() else img.reshape(-1, 3).mean(axis=0)


def _grain(shape: tuple[int, ...], sigma: float, rng: np.random.Generator) -> np.ndarray:
    return rng.normal(0.0, sigma, shape[:2])[..., None]


def _best_box(energy: np.ndarray, size: int, step: int = 8) -> tuple[int, int, int, int]:
    """The size × size box (stride ``step``) with the largest summed ``energy`` (H, W)."""
    h, w = energy.shape
    ii = np.zeros((h + 1, w + 1))
    ii[1:, 1:] = energy.cumsum(0).cumsum(1)
    best, arg = -1.0, (0, 0)
    for y in range(0, max(1, h - size + 1), step):
        for x in range(0, max(1, w - size + 1), step):
            e = ii[y + size, x + size] - ii[y, x + size] - ii[y + size, x] + ii[y, x]
            if e > best:
                best, arg = e, (x, y)
    x, y = arg
    return x, y, x + size, y + size


def _coarse_structure(rgb: np.ndarray, f: int = 4) -> np.ndarray:
    from codec.metrics.fidelity import _blur, _cell_means, _upsample, luma

    c = _cell_means(luma(rgb), f)
    mu = _blur(c)
    var = np.maximum(_blur(c * c) - mu * mu, 0)
    return _upsample(np.sqrt(var), f, *rgb.shape[:2])


def _fine_detail(rgb: np.ndarray) -> np.ndarray:
    from codec.metrics.fidelity import _blur, luma

    y = luma(rgb)
    return np.abs(y - _blur(y))


def _gradient(rgb: np.ndarray) -> np.ndarray:
    from codec.metrics.fidelity import luma

    y = luma(rgb)
    gy, gx = np.gradient(y)
    return np.hypot(gx, gy)


def _blur_rgb(x: np.ndarray, passes: int) -> np.ndarray:
    from codec.metrics.fidelity import _blur

    out = x.astype(np.float32)
    for _ in range(passes):
        out = np.stack([_blur(out[..., c]) for c in range(3)], axis=-1)
    return out


def _warp(dec: np.ndarray, box: tuple[int, int, int, int], amp: float) -> np.ndarray:
    """A smooth bulge: every pixel of ``box`` displaced by up to ``amp`` px (0 at the box border)."""
    x0, y0, x1, y1 = box
    sub = dec[y0:y1, x0:x1].astype(np.float32)
    h, w = sub.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    bump = np.sin(np.pi * yy / (h - 1)) * np.sin(np.pi * xx / (w - 1))
    sx = np.clip(xx + amp * bump * np.sin(np.pi * yy / (h - 1) * 2), 0, w - 1)
    sy = np.clip(yy + amp * bump * np.sin(np.pi * xx / (w - 1) * 2), 0, h - 1)
    xf, yf = np.floor(sx).astype(int), np.floor(sy).astype(int)
    xc, yc = np.minimum(xf + 1, w - 1), np.minimum(yf + 1, h - 1)
    ax, ay = (sx - xf)[..., None], (sy - yf)[..., None]
    out = (sub[yf, xf] * (1 - ax) * (1 - ay) + sub[yf, xc] * ax * (1 - ay)
           + sub[yc, xf] * (1 - ax) * ay + sub[yc, xc] * ax * ay)
    res = dec.astype(np.float32).copy()
    res[y0:y1, x0:x1] = out
    return res


def _feather(h: int, w: int, box: tuple[int, int, int, int], passes: int = 6) -> np.ndarray:
    """A soft (H, W, 1) mask of ``box``: no hard rectangle edge (a decoder's failure has none either)."""
    from codec.metrics.fidelity import _blur

    x0, y0, x1, y1 = box
    m = np.zeros((h, w), np.float32)
    m[y0:y1, x0:x1] = 1.0
    for _ in range(passes):
        m = _blur(m)
    return m[..., None]


def _blend(d: np.ndarray, fill: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    m = _feather(d.shape[0], d.shape[1], box)
    return d * (1 - m) + fill * m


def failures(rgb: np.ndarray, dec: np.ndarray, faces: list, seed: int) -> dict[str, tuple[np.ndarray, tuple]]:
    """Synthetic structural failures of ``dec``: name → (damaged decode uint8, damaged box x0,y0,x1,y1)."""
    rng = np.random.default_rng(seed)
    h, w = rgb.shape[:2]
    out: dict[str, tuple[np.ndarray, tuple]] = {}
    d = dec.astype(np.float32)

    def put(name: str, img: np.ndarray, box: tuple) -> None:
        out[name] = (np.clip(np.rint(img), 0, 255).astype(np.uint8), box)

    if faces:
        from codec.metrics.identity import face_landmarks

        fb = max(faces, key=lambda b: b.size)
        fw, fh = fb.width, fb.height
        head = _box_clip((int(fb.left - 0.25 * fw), int(fb.top - 0.45 * fh), int(fb.right + 0.25 * fw),
                          int(fb.bottom + 0.15 * fh)), h, w)
        x0, y0, x1, y1 = head
        put("head_mean", _blend(d, d[y0:y1, x0:x1].reshape(-1, 3).mean(axis=0) + _grain(d.shape, 3.0, rng),
                                head), head)
        put("head_dark", _blend(d, 18.0 + _grain(d.shape, 2.0, rng), head), head)
        # the head vanishes into its surroundings: heavily blurred background + invented grain
        bg = _blur_rgb(d, 40) * 0.5 + _ring_mean(d, head, max(8, fw // 3)) * 0.5
        put("head_vanished", _blend(d, bg + _grain(d.shape, 4.0, rng), head), head)
        lm = face_landmarks(rgb, fb)
        img = d.copy()
        yy, xx = np.mgrid[0:h, 0:w]
        ex0, ey0, ex1, ey1 = w, h, 0, 0
        for a, b in ((0, 1), (2, 3)):
            c = (lm[a] + lm[b]) / 2
            ew = max(3.0, float(np.hypot(*(lm[a] - lm[b]))))
            m = ((xx - c[0]) / (0.6 * ew)) ** 2 + ((yy - c[1]) / (0.4 * ew)) ** 2 <= 1
            img[m] = 10.0
            ex0, ey0 = min(ex0, int(c[0] - ew)), min(ey0, int(c[1] - ew))
            ex1, ey1 = max(ex1, int(c[0] + ew)), max(ey1, int(c[1] + ew))
        put("eyes_black", img, _box_clip((ex0, ey0, ex1, ey1), h, w))
    size = max(32, min(h, w) // 5)
    box = _best_box(_coarse_structure(rgb), size)
    x0, y0, x1, y1 = box
    bg = _blur_rgb(d, 40) * 0.5 + _ring_mean(d, box, size // 3) * 0.5
    put("object_removed", _blend(d, bg + _grain(d.shape, 4.0, rng), box), box)
    s = min(128, min(h, w) // 2)
    box = _best_box(_gradient(rgb), s)
    put("edge_bent", _warp(dec, box, 6.0), box)
    box = _best_box(_fine_detail(rgb), s)
    x0, y0, x1, y1 = box
    sub = _blur_rgb(d[y0:y1, x0:x1], 3)
    paint = _blur_rgb(rng.normal(0, 1, (y1 - y0, x1 - x0, 1)).repeat(3, -1) * 60.0, 2)
    img = d.copy()
    img[y0:y1, x0:x1] = sub + paint
    put("hatching_painted", img, box)
    put("grain", d + _grain(d.shape, 6.0, rng), (0, 0, w, h))
    return out


def small_failures(rgb: np.ndarray, dec: np.ndarray, face, seed: int, side: int = 36):
    """The head / eyes / object failures on the photo AND its decode downscaled so that the face is
    ``side`` px (a person in a crowd scene; the decoder's failures in issue 12 were on small people).
    Returns (original, {name: (damaged, box)}) or None when the face is already small."""
    from codec.metrics.identity import FaceBox

    s = face.size / side
    if s < 1.2:
        return None
    w, h = int(rgb.shape[1] / s), int(rgb.shape[0] / s)
    r2 = np.asarray(Image.fromarray(rgb).resize((w, h), Image.LANCZOS))
    d2 = np.asarray(Image.fromarray(dec).resize((w, h), Image.LANCZOS))
    fb = FaceBox(int(face.left / s), int(face.top / s), int(face.right / s), int(face.bottom / s))
    cases = {f"small_{k}": v for k, v in failures(r2, d2, [fb], seed).items()
             if k.startswith(("head", "eyes", "object"))}
    return r2, cases


# ------------------------------------------------------------------------------------------ scoring


def scores(rgb: np.ndarray, dec: np.ndarray) -> dict[str, np.ndarray]:
    """The per-block maps the calibration compares: fine, coarse, combined (= the guard's score)."""
    from codec.metrics.fidelity import block_scores

    bs = block_scores(rgb, dec)
    return {"fine": bs.fine, "coarse": bs.coarse, "combined": bs.score}


def region_min(grid, m: np.ndarray, box: tuple) -> float:
    """Worst block among the windows of ``grid`` that overlap ``box`` by at least a quarter."""
    x0, y0, x1, y1 = box
    ys, xs = grid.origins()
    oy = np.clip(np.minimum(ys + grid.bh, y1) - np.maximum(ys, y0), 0, None)
    ox = np.clip(np.minimum(xs + grid.bw, x1) - np.maximum(xs, x0), 0, None)
    sel = (oy[:, None] * ox[None, :]) >= 0.25 * grid.bh * grid.bw
    if not sel.any():
        sel = (oy[:, None] * ox[None, :]) > 0
    return float(m[sel].min())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=36)
    ap.add_argument("--faces", type=int, default=12)
    ap.add_argument("--bpps", type=float, nargs="+", default=[0.05, 0.10, 0.15])
    ap.add_argument("--effort", default="default")
    ap.add_argument("--out", type=Path, default=Path("training-cache/fidelity-calibration.json"))
    ap.add_argument("--cache", type=Path, default=Path("training-cache/fidelity-decodes"),
                    help="decoded images are kept here (PNG), so re-scoring needs no re-encode")
    ap.add_argument("--crops", type=Path, default=None, help="save crops of the synthetic failures here")
    ap.add_argument("--decode-only", action="store_true", help="only fill the decode cache")
    ap.add_argument("--thin", nargs="*", default=[], metavar="BPP=K",
                    help="at BPP use only every K-th photo (CPU time: 0.10 bpp always uses all)")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    import codec
    from codec.container.patchlayer import Grid
    from codec.tools.bench.synthetic import make_cases
    from codec.weights import train_dir

    train = Path(train_dir())
    photos = list(dict.fromkeys(sample(train, args.n) + face_photos(train, args.faces)))
    thin = {float(b): int(k) for b, k in (t.split("=") for t in args.thin)}

    def photos_at(bpp: float) -> list[Path]:
        return photos[:: thin.get(bpp, 1)]

    natural: dict[str, dict[str, dict]] = {}
    synth: dict[str, dict[str, dict]] = {}

    def decode_cached(name: str, rgb: np.ndarray, bpp: float) -> np.ndarray:
        cached = args.cache / f"{bpp:.3f}" / f"{name.replace('/', '__').rsplit('.', 1)[0]}.png"
        if cached.is_file():
            return np.asarray(Image.open(cached).convert("RGB"))
        data = codec.encode(rgb, bpp=bpp, effort=args.effort, min_fidelity=0)
        dec = np.asarray(codec.decode(data))
        cached.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(dec).save(cached)
        return dec

    if args.decode_only:
        for bpp in args.bpps:
            for path in photos_at(bpp):
                t0 = time.perf_counter()
                decode_cached(f"{path.parent.name}/{path.name}", codec.load_image(path), bpp)
                print(f"{bpp} {path.name} {time.perf_counter() - t0:.1f} s", flush=True)
        for cname, rgb in make_cases().items():
            decode_cached(f"synthetic/{cname}.png", rgb, 0.10)
        return
    t_score = []
    for i, path in enumerate(photos):
        name = f"{path.parent.name}/{path.name}"
        rgb = codec.load_image(path)
        for bpp in args.bpps:
            if path not in photos_at(bpp):
                continue
            dec = decode_cached(name, rgb, bpp)
            t0 = time.perf_counter()
            maps = scores(rgb, dec)
            t_score.append((time.perf_counter() - t0) / (rgb.shape[0] * rgb.shape[1] / (768 * 512)))
            natural.setdefault(f"{bpp:.2f}", {})[name] = {k: float(m.min()) for k, m in maps.items()}
        dec = decode_cached(name, rgb, 0.10)
        try:
            from codec.metrics.identity import detect_faces

            faces = detect_faces(rgb, upsample=1)
        except Exception:  # no face models: no head cases
            faces = []
        cases = [(rgb, failures(rgb, dec, faces, seed=i))]
        if faces:
            small = small_failures(rgb, dec, max(faces, key=lambda b: b.size), seed=i)
            if small is not None:
                cases.append(small)
        for orig, kind, (img, box) in [(o, k, v) for o, cs in cases for k, v in cs.items()]:
            grid = Grid(orig.shape[0], orig.shape[1], 32)
            maps = scores(orig, img)
            synth.setdefault(kind, {})[name] = {k: region_min(grid, m, box) for k, m in maps.items()}
            if args.crops is not None and i < 12:
                x0, y0, x1, y1 = box
                pad = 32
                X0, Y0 = max(0, x0 - pad), max(0, y0 - pad)
                X1, Y1 = min(orig.shape[1], x1 + pad), min(orig.shape[0], y1 + pad)
                args.crops.mkdir(parents=True, exist_ok=True)
                pair = np.concatenate([orig[Y0:Y1, X0:X1], img[Y0:Y1, X0:X1]], axis=1)
                Image.fromarray(pair).save(args.crops / f"{kind}__{name.replace('/', '__')}.png")
        print(f"{i + 1:3d}/{len(photos)} {name:48s} faces {len(faces)}", flush=True)
    for cname, rgb in make_cases().items():
        if cname == "faces":
            continue  # drawn cartoon faces: no structural failure by construction
        dec = decode_cached(f"synthetic/{cname}.png", rgb, 0.10)
        maps = scores(rgb, dec)
        synth.setdefault(f"synthetic_{cname}", {})[cname] = {k: float(m.min()) for k, m in maps.items()}

    summary: dict[str, dict] = {}
    kinds = ("fine", "coarse", "combined")
    print(f"\nscore cost: {np.median(t_score):.3f} s per 768×512 (median)")
    for bpp, rows in natural.items():
        for k in kinds:
            mins = np.array([r[k] for r in rows.values()])
            pct = {p: round(float(np.percentile(mins, p)), 3) for p in (1, 5, 10, 25, 50)}
            alarms = {f: round(float((mins < f).mean()), 3) for f in FLOORS}
            summary.setdefault("natural", {}).setdefault(bpp, {})[k] = {"n": len(mins), "percentiles": pct,
                                                                      "share_below": alarms}
            print(f"natural {bpp} {k:9s} n={len(mins)} worst-block pct {pct}  share<floor {alarms}")
    for kind, rows in synth.items():
        for k in kinds:
            v = np.array([r[k] for r in rows.values()])
            summary.setdefault("synthetic", {}).setdefault(kind, {})[k] = {
                "n": len(v), "median": round(float(np.median(v)), 3), "max": round(float(v.max()), 3),
                "share_below": {f: round(float((v < f).mean()), 3) for f in FLOORS}}
        line = "  ".join(f"{k} med {np.median([r[k] for r in rows.values()]):.3f} "
                         f"max {max(r[k] for r in rows.values()):.3f}" for k in kinds)
        print(f"synthetic {kind:28s} n={len(rows):2d}  {line}")
    from codec.metrics import fidelity

    floor = fidelity.DEFAULT_MIN_FIDELITY
    if "0.10" in natural:
        p5 = float(np.percentile([r["coarse"] for r in natural["0.10"].values()], 5))
        zero = (p5 - floor) / (1 - floor)
        summary["coarse_zero_suggested"] = round(zero, 3)
        print(f"coarse SSIM p5 at 0.10 bpp {p5:.3f} → COARSE_ZERO that maps it onto the floor {floor}: "
              f"{zero:.3f} (in use: {fidelity.COARSE_ZERO})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                    "score_seconds_768x512": round(float(np.median(t_score)), 3),
                                    "summary": summary, "natural": natural, "synthetic": synth}, indent=1))


if __name__ == "__main__":
    main()
