"""Small faces (below the face check's 40 px): what the latent does to them, and can a check tell?
(issue 12: "at tiny a man becomes headless", people.md: the damaged heads are 15–35 px faces)

TRAINING photos only (never Kodak):

    # 1. dlib's HOG face detector at upsample 2 (faces down to 20 px; the face check's probe pass) on
    #    every training photo up to 0.3 MP; faces below 40 px → small_faces.set.json (I looked at every
    #    one: small_faces.set.jpg)
    PYTHONPATH=. .venv/bin/python scripts/small_faces_bench.py scan
    # 2. each photo at 0.05 / 0.10 bpp: `codec.encode(rgb, max_bytes=…)` (today's file: guard on, the
    #    small faces only counted) and AVIF at the latent file's bytes; per face: dlib identity
    #    distance at the original's alignment, landmark shift, still detected (upsample 2, lenient
    #    threshold 0), and a low-pass colour change (mean CIELAB ΔE after a Gaussian blur of σ = face/8
    #    or face/16, over the box grown by a quarter) → small_faces.json; decodes kept in --keep
    PYTHONPATH=. .venv/bin/python scripts/small_faces_bench.py bench --keep /tmp/small_faces
    # 3. tables (small_faces.md) and the 1:1-and-enlarged sheet of every face (small_faces.sheet.jpg)
    PYTHONPATH=. .venv/bin/python scripts/small_faces_bench.py report
    PYTHONPATH=. .venv/bin/python scripts/small_faces_bench.py sheet --keep /tmp/small_faces
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = ROOT / "docs" / "bench" / "faces"
SET = OUT / "small_faces.set.json"
RESULTS = OUT / "small_faces.json"
#: photos up to this many pixels are scanned (the training set's bsds500/imagenet photos; a 4× scan of
#: a larger one costs seconds each)
MAX_SCAN_PIXELS = 300_000
SMALL_PX = 40
BPPS = (0.05, 0.10)


def train_dir() -> Path:
    return Path(os.environ.get("CODEC_TRAIN_DIR") or ROOT.parent / "shared" / "data" / "train")


def scan(args: argparse.Namespace) -> None:
    from codec.metrics.identity import DETECT_THRESHOLD, detect_faces

    root = train_dir()
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    photos = []
    t0 = time.time()
    for p in paths:
        im = Image.open(p).convert("RGB")
        if im.width * im.height > MAX_SCAN_PIXELS:
            continue
        boxes = detect_faces(np.asarray(im), upsample=2, threshold=DETECT_THRESHOLD)
        small = [dict(left=b.left, top=b.top, right=b.right, bottom=b.bottom, size=b.size,
                      score=round(b.score, 3)) for b in boxes if b.size < SMALL_PX]
        if small:
            photos.append(dict(path=str(p.relative_to(root)), w=im.width, h=im.height, faces=small))
    SET.write_text(json.dumps(dict(seconds=round(time.time() - t0, 1), scanned=len(paths),
                                   max_pixels=MAX_SCAN_PIXELS, photos=photos), indent=1) + "\n")
    print(f"{len(photos)} photos, {sum(len(p['faces']) for p in photos)} faces < {SMALL_PX} px")


def lowpass_change(o: np.ndarray, x: np.ndarray, box, sigma: float) -> tuple[float, float, float]:
    """(mean ΔE, p90 ΔE, low-passed luma correlation) over the box grown by a quarter of its size."""
    import scipy.ndimage as ndi

    from codec.metrics.fidelity import srgb_to_lab

    s = box.size
    y0, y1 = max(0, box.top - s // 4), min(o.shape[0], box.bottom + s // 4)
    x0, x1 = max(0, box.left - s // 4), min(o.shape[1], box.right + s // 4)
    lo = srgb_to_lab(ndi.gaussian_filter(o.astype(np.float32), (sigma, sigma, 0)))[y0:y1, x0:x1]
    lx = srgb_to_lab(ndi.gaussian_filter(x.astype(np.float32), (sigma, sigma, 0)))[y0:y1, x0:x1]
    de = np.sqrt(((lo - lx) ** 2).sum(-1))
    a, b = lo[..., 0].ravel(), lx[..., 0].ravel()
    corr = float(np.corrcoef(a, b)[0, 1]) if a.std() > 1e-3 and b.std() > 1e-3 else 0.0
    return float(de.mean()), float(np.percentile(de, 90)), corr


def avif_same_bytes(rgb: np.ndarray, budget: int) -> tuple[np.ndarray, object]:
    """AVIF in at most ``budget`` bytes, as scripts/faces_bench.py does it: full size at the best quality
    that fits, else (its smallest full-size file is over budget: ~2.2 KB for a 481×321 photo) the image
    shrunk until it fits, decoded and resized back to full size."""
    from codec.baselines import encode_at_budget

    h, w = rgb.shape[:2]
    av = encode_at_budget(rgb, "avif", budget)
    if not av.fits:
        av = encode_at_budget(rgb, "avif", budget, mode="downscale")
    im = Image.open(io.BytesIO(av.data)).convert("RGB")
    return np.asarray(im.resize((w, h), Image.Resampling.LANCZOS)), av


def bench(args: argparse.Namespace) -> None:
    import codec
    from codec.metrics.identity import DECODE_THRESHOLD, FaceBox, _detect, _measure, load_face_models
    from codec.metrics.invented_detail import detail_error
    from codec.options import bpp_to_bytes

    d = json.loads(SET.read_text())
    root = train_dir()
    keep = Path(args.keep) if args.keep else None
    if keep:
        keep.mkdir(parents=True, exist_ok=True)
    models = load_face_models()
    rows = []
    t_all = time.time()
    for pi, p in enumerate(d["photos"]):
        if args.split != "all" and pi % 2 != (1 if args.split == "heldout" else 0):
            continue
        rgb = np.asarray(Image.open(root / p["path"]).convert("RGB"))
        h, w = rgb.shape[:2]
        boxes = [FaceBox(f["left"], f["top"], f["right"], f["bottom"], f["score"], 2) for f in p["faces"]]
        for bpp in args.bpps:
            base = bpp_to_bytes(bpp, w, h)
            if args.faithful:  # as the gallery's presets do (gallery/sizes.encode_budget): cap 2x, target
                t0 = time.time()
                data = codec.encode(rgb, max_bytes=2 * base, base_bytes=base, target="faithful")
            else:
                t0 = time.time()
                data = codec.encode(rgb, max_bytes=base)
            encode_s = time.time() - t0
            lat = np.asarray(codec.decode(data).convert("RGB"))
            info = codec.info(data)
            avd, av = avif_same_bytes(rgb, len(data))
            for name, dec in (("latent", lat), ("avif", avd)):
                if keep:
                    Image.fromarray(dec).save(keep / f"{pi}_{bpp}_{name}.png")
                found = _detect(models, dec, 2, DECODE_THRESHOLD)
                for fi, b in enumerate(boxes):
                    m = _measure(models, rgb, dec, b, found)
                    lp = {f"s{k}": lowpass_change(rgb, dec, b, b.size / k) for k in (16, 8)}
                    detail = detail_error(rgb, dec, (b.left, b.top, b.right, b.bottom))
                    rows.append(dict(photo=pi, face=fi, path=p["path"], size=b.size, bpp=bpp, codec=name,
                                     bytes=len(data) if name == "latent" else len(av.data),
                                     avif_scale=av.scale if name == "avif" else None,
                                     avif_fits=bool(av.fits) if name == "avif" else None,
                                     dist=m.identity_distance, shift=m.landmark_shift,
                                     detected=m.detected_in_decoded, lp16=lp["s16"], lp8=lp["s8"],
                                     detail=detail,
                                     faces_kept=info.get("faces_kept") if name == "latent" else None,
                                     small_detail_tag=(info.get("worst_small_face_detail")
                                                       if name == "latent" else None),
                                     target_met=info.get("target_met") if name == "latent" else None,
                                     encode_s=round(encode_s, 2) if name == "latent" else None,
                                     floor_met=info.get("fidelity_floor_met")))
            print(pi, bpp, flush=True)
    Path(args.results).write_text(json.dumps(dict(
        seconds=round(time.time() - t_all, 1), machine=f"{platform.machine()} {os.cpu_count()} CPUs",
        loadavg_end=[round(x, 2) for x in os.getloadavg()], rows=rows), indent=0) + "\n")


def _load_rows(path: str | Path = RESULTS) -> list[dict]:
    d = json.loads(Path(path).read_text())
    return d["rows"] if isinstance(d, dict) else d


def _detail(rs: list[dict]) -> str:
    vals = [r["detail"] for r in rs if r.get("detail") is not None]
    if not vals:
        return "–"
    return f"{statistics.median(vals):.2f} / {np.percentile(vals, 90):.2f} / {sum(v > 1.0 for v in vals)}"


def report(args: argparse.Namespace) -> None:
    rows = _load_rows(args.results)
    lines = ["| bpp | codec | faces | mean bytes | identity dist. mean / median | landmark shift mean | "
             "still detected | low-pass ΔE σ=s/8 mean / p90-of-faces | low-pass luma corr. median | "
             "invented detail median / p90 / > 1.0 |",
             "|---|---|---:|---:|---|---:|---:|---|---:|---|"]
    for bpp in sorted({r["bpp"] for r in rows}):
        for name in ("latent", "avif"):
            rs = [r for r in rows if r["bpp"] == bpp and r["codec"] == name]
            if not rs:
                continue
            de = [r["lp8"][0] for r in rs]
            dist = [r["dist"] for r in rs]
            lines.append(
                f"| {bpp} | {name} | {len(rs)} | {statistics.mean(r['bytes'] for r in rs):.0f} | "
                f"{statistics.mean(dist):.3f} / {statistics.median(dist):.3f} | "
                f"{statistics.mean(r['shift'] for r in rs):.3f} | "
                f"{sum(r['detected'] for r in rs)}/{len(rs)} | "
                f"{statistics.mean(de):.2f} / {np.percentile(de, 90):.2f} | "
                f"{statistics.median(r['lp8'][2] for r in rs):.3f} | {_detail(rs)} |")
    # paired: per face and bpp, latent minus AVIF
    lines += ["", "Paired per face (latent − AVIF at the same bytes; negative = latent better):", "",
              "| bpp | Δ identity mean | latent better / worse | Δ low-pass ΔE mean | "
              "latent better / worse | detected: latent only / AVIF only / both / neither |",
              "|---|---:|---|---:|---|---|"]
    for bpp in sorted({r["bpp"] for r in rows}):
        key = {(r["photo"], r["face"], r["codec"]): r for r in rows if r["bpp"] == bpp}
        pairs = [(key[(p, f, "latent")], key[(p, f, "avif")]) for (p, f, c) in key
                 if c == "latent" and (p, f, "avif") in key]
        if not pairs:
            continue
        dd = [a["dist"] - b["dist"] for a, b in pairs]
        dl = [a["lp8"][0] - b["lp8"][0] for a, b in pairs]
        det = [(a["detected"], b["detected"]) for a, b in pairs]
        lines.append(
            f"| {bpp} | {statistics.mean(dd):+.3f} | {sum(x < 0 for x in dd)} / {sum(x > 0 for x in dd)} | "
            f"{statistics.mean(dl):+.2f} | {sum(x < 0 for x in dl)} / {sum(x > 0 for x in dl)} | "
            f"{sum(a and not b for a, b in det)} / {sum(b and not a for a, b in det)} / "
            f"{sum(a and b for a, b in det)} / {sum(not a and not b for a, b in det)} |")
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.results).with_suffix(".tables.md").write_text(text)


#: the sheet's crops are enlarged this many times (nearest neighbour: the pixels as they are)
ENLARGE = 2


def sheet(args: argparse.Namespace) -> None:
    """Every face at each bpp: original | latent | AVIF, each crop (face + half a face size around it)
    enlarged `ENLARGE`× with nearest-neighbour, captioned with the numbers (d = identity distance,
    det/LOST = still detected, r = invented detail)."""
    rows = _load_rows(args.results)
    d = json.loads(SET.read_text())
    keep = Path(args.keep)
    root = train_dir()
    tiles = []
    done = {r["photo"] for r in rows}
    for pi, p in enumerate(d["photos"]):
        if pi not in done:
            continue
        orig = Image.open(root / p["path"]).convert("RGB")
        for bpp in sorted({r["bpp"] for r in rows}):
            decs = {n: Image.open(keep / f"{pi}_{bpp}_{n}.png") for n in ("latent", "avif")}
            for fi, f in enumerate(p["faces"]):
                s = f["size"]
                side = ENLARGE * 2 * s
                box = (f["left"] - s // 2, f["top"] - s // 2, f["right"] + s // 2, f["bottom"] + s // 2)
                row = Image.new("RGB", (3 * side + 20, side + 14), "white")
                for k, im in enumerate((orig, decs["latent"], decs["avif"])):
                    crop = im.crop(box).resize((side, side), Image.Resampling.NEAREST)
                    row.paste(crop, (k * (side + 10), 14))
                r = {c: next(x for x in rows if x["photo"] == pi and x["face"] == fi and x["bpp"] == bpp
                             and x["codec"] == c) for c in ("latent", "avif")}

                def tag(x: dict) -> str:
                    det = "det" if x["detected"] else "LOST"
                    return f"d{x['dist']:.2f} {det} r{x.get('detail', float('nan')):.2f}"

                cap = (f"{pi}.{fi} {s}px {bpp} {r['latent']['bytes']}B lat {tag(r['latent'])} | "
                       f"avif {tag(r['avif'])}")
                ImageDraw.Draw(row).text((2, 1), cap, fill=(0, 0, 0))
                tiles.append(row)
    width = max(t.width for t in tiles)
    out = Image.new("RGB", (width * 2, sum(t.height for t in tiles[::2]) + 10), "white")
    y = [0, 0]
    for i, t in enumerate(tiles):
        col = i % 2
        out.paste(t, (col * width, y[col]))
        y[col] += t.height
    out = out.crop((0, 0, out.width, max(y)))
    out.save(Path(args.results).with_suffix(".sheet.jpg"), quality=85, subsampling=0, optimize=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("scan")
    b = sub.add_parser("bench")
    b.add_argument("--keep", default=None, help="folder for the decodes (the sheet needs them)")
    b.add_argument("--faithful", action="store_true",
                   help="encode as the gallery's presets do: target faithful, base = the bpp, cap 2x")
    b.add_argument("--bpps", type=float, nargs="+", default=list(BPPS))
    b.add_argument("--split", choices=("all", "calibration", "heldout"), default="all",
                   help="calibration = even photo indices, held-out = odd (the floor came from the former)")
    r = sub.add_parser("report")
    s = sub.add_parser("sheet")
    s.add_argument("--keep", required=True)
    for q in (b, r, s):
        q.add_argument("--results", default=str(RESULTS), help="the bench's JSON (tables/sheet beside it)")
    args = ap.parse_args(argv)
    {"scan": scan, "bench": bench, "report": report, "sheet": sheet}[args.cmd](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
