"""Is a person (body) detector a useful extra check for the latent codec? (issue 12, item 1)

OpenCV's built-in HOG people detector (Dalal–Triggs SVM, `cv2.HOGDescriptor_getDefaultPeopleDetector`,
no download; removed from the main module in OpenCV 5, so opencv-python-headless 4.x) is run on
TRAINING photos (never Kodak) and on their decodes:

    # 1. every training photo: HOG boxes >= 96 px tall with SVM margin >= 1 (people.set.json)
    PYTHONPATH=. .venv/bin/python scripts/people_bench.py scan
    # 2. the photos with a real person (`PEOPLE_BY_EYE`, alternating calibration / held-out): encode
    #    as the gallery does at 'tiny' / 'small' (target faithful, cap 2x), at the plain budget, AVIF
    #    at the same bytes; the detector on every decode at the original's boxes (people.json)
    PYTHONPATH=. .venv/bin/python scripts/people_bench.py bench --keep /tmp/people_decodes
    # 3. the tables of docs/bench/faces/people.md, and the 1:1 sheet of every person
    PYTHONPATH=. .venv/bin/python scripts/people_bench.py report
    PYTHONPATH=. .venv/bin/python scripts/people_bench.py sheet --keep /tmp/people_decodes
    # 4. controls: detector noise (JPEG q85 / 2-px shift / blur), the report's damage painted onto the
    #    originals (people.synthetic.*), worst guard block over each head (people.heads.json)
    PYTHONPATH=. .venv/bin/python scripts/people_bench.py flicker
    PYTHONPATH=. .venv/bin/python scripts/people_bench.py synthetic
    PYTHONPATH=. .venv/bin/python scripts/people_bench.py heads --keep /tmp/people_decodes

Needs OpenCV 4.x's HOG people detector: opencv-python-headless 4.14 is in requirements.txt since
2026-12-01 (for the PP-OCR text detector); the person check itself was measured, not adopted
(docs/bench/faces/people.md).

Outputs (docs/bench/faces/): people.set.json, people.json, people.grid.png (1:1 crops of every person
the detector loses in a latent decode: original | latent | AVIF at the same bytes), people.sheet.jpg.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = ROOT / "docs" / "bench" / "faces"
#: the image is enlarged by this factor before the 64×128 window scan: people down to ~95 px are found
UPSCALE = 1.35
#: a person of the ORIGINAL: grouped detection with SVM margin >= this (HOG's false positives on
#: textures sit mostly below 1) and at least this tall (box, in original pixels)
MIN_WEIGHT = 1.0
MIN_HEIGHT = 96
#: a raw detection window in the decode "matches" the original person at this IoU
MATCH_IOU = 0.5
PRESETS = {"tiny": 0.05, "small": 0.10}
HEADROOM = 2.0


def train_dir() -> Path:
    return Path(os.environ.get("CODEC_TRAIN_DIR") or ROOT.parent / "shared" / "data" / "train")


# --- detector -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Box:
    left: int
    top: int
    right: int
    bottom: int
    weight: float = 0.0

    @property
    def height(self) -> int:
        return self.bottom - self.top

    def iou(self, o: Box) -> float:
        ix = max(0, min(self.right, o.right) - max(self.left, o.left))
        iy = max(0, min(self.bottom, o.bottom) - max(self.top, o.top))
        inter = ix * iy
        union = (self.right - self.left) * self.height + (o.right - o.left) * o.height - inter
        return inter / union if union > 0 else 0.0


_HOG = None


def hog():
    global _HOG
    if _HOG is None:
        try:
            import cv2
        except ImportError as exc:
            raise SystemExit(f"needs OpenCV 4.x ({exc}): make venv (requirements.txt pins "
                             "opencv-python-headless==4.14.0.94)") from exc
        if not hasattr(cv2, "HOGDescriptor"):
            raise SystemExit(f"OpenCV {cv2.__version__} has no HOGDescriptor (moved out of the main module "
                             "in 5.x): pip install opencv-python-headless==4.14.0.94")

        cv2.setNumThreads(1)
        h = cv2.HOGDescriptor()
        h.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        _HOG = h
    return _HOG


def detect(rgb: np.ndarray, *, grouped: bool, hit: float = 0.0) -> list[Box]:
    """People windows (original-pixel boxes); ``grouped`` merges overlapping windows (OpenCV's
    groupThreshold 2), else every raw window above the SVM margin ``hit``."""
    import cv2

    hog()  # the clear error when OpenCV is missing
    big = cv2.resize(rgb, None, fx=UPSCALE, fy=UPSCALE, interpolation=cv2.INTER_LINEAR)
    bgr = np.ascontiguousarray(big[..., ::-1])
    rects, weights = hog().detectMultiScale(bgr, hitThreshold=hit, winStride=(8, 8), padding=(8, 8),
                                            scale=1.05, groupThreshold=2 if grouped else 0)
    h, w = rgb.shape[:2]
    out = []
    rects, weights = np.asarray(rects).reshape(-1, 4), np.asarray(weights).reshape(-1)
    for (x, y, bw, bh), wt in zip(rects, weights, strict=True):
        box = Box(max(0, round(x / UPSCALE)), max(0, round(y / UPSCALE)),
                  min(w, round((x + bw) / UPSCALE)), min(h, round((y + bh) / UPSCALE)), float(wt))
        out.append(box)
    return out


def best_match(box: Box, raw: list[Box]) -> float | None:
    """Largest SVM margin of a raw window overlapping ``box`` by MATCH_IOU (None: nothing there)."""
    ws = [r.weight for r in raw if box.iou(r) >= MATCH_IOU]
    return max(ws) if ws else None


# --- scan -----------------------------------------------------------------------------------------


def load(rel: str) -> np.ndarray:
    return np.asarray(Image.open(train_dir() / rel).convert("RGB"))


def scan(args: argparse.Namespace) -> None:
    with open(train_dir() / "MANIFEST.tsv") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    found = []
    t0 = time.perf_counter()
    for i, row in enumerate(rows):
        rel = f"{row['folder']}/{row['file']}"
        rgb = load(rel)
        people = [b for b in detect(rgb, grouped=True) if b.weight >= MIN_WEIGHT and b.height >= MIN_HEIGHT]
        if people:
            found.append({"name": rel, "size": [rgb.shape[1], rgb.shape[0]],
                          "people": [asdict(b) for b in people]})
        if i % 100 == 0:
            print(i, len(found), f"{time.perf_counter() - t0:.0f}s", flush=True)
    seconds = time.perf_counter() - t0
    result = {"scanned": len(rows), "seconds": round(seconds, 1),
              "seconds_per_photo": round(seconds / len(rows), 3), "upscale": UPSCALE,
              "min_weight": MIN_WEIGHT, "min_height": MIN_HEIGHT, "candidates": found}
    (OUT / "people.set.json").write_text(json.dumps(result, indent=1))
    print(f"{len(found)} photos with a person in {seconds:.0f}s")


#: Which scan boxes are people, by eye (contact sheets of every candidate box, 2026-12-01): 43 photos /
#: 63 boxes passed the scan, 26 boxes in 15 photos frame a person; the other 37 are HOG's false
#: positives (house front, helicopter, dog legs, tree trunk, teapot, keyboard, a face only ...).
PEOPLE_BY_EYE: dict[str, tuple[int, ...]] = {
    "bsds500/140006.jpg": (1,), "bsds500/188025.jpg": (0,), "bsds500/226022.jpg": (0,),
    "bsds500/245051.jpg": (0, 1, 2, 3), "bsds500/286092.jpg": (0,), "bsds500/344010.jpg": (0, 1, 2),
    "bsds500/368016.jpg": (0, 1, 2), "bsds500/384089.jpg": (0, 1),
    "imagenet_samples/n03599486_jinrikisha.JPEG": (0,), "imagenet_samples/n04127249_safety_pin.JPEG": (0,),
    "imagenet_samples/n04428191_thresher.JPEG": (0,),
    "imagenet_samples/n04482393_tricycle.JPEG": (0, 1, 2, 3),
    "imagenet_samples/n09421951_sandbar.JPEG": (0,), "urban100_x2/img_009_SRF_2_HR.png": (0,),
    "urban100_x2/img_024_SRF_2_HR.png": (0,),
}

INFO_KEYS = ("bytes", "bpp", "payload_kind", "coded_width", "guard", "guard_bytes", "fidelity_min",
             "fidelity_floor_met", "target", "target_met", "faces_found", "faces_kept", "faces_too_small",
             "worst_identity_distance", "protection_bytes")


def split_set(cands: list[dict], per_half: int) -> list[dict]:
    """The photos with a person (by eye), alternating calibration / held-out in file order (no
    cherry-picking), ``per_half`` each; every scan box is kept, labelled ``person`` true/false."""
    out = []
    for c in cands:
        real = PEOPLE_BY_EYE.get(c["name"])
        if not real:
            continue
        people = [{**b, "person": i in real} for i, b in enumerate(c["people"])]
        out.append({**c, "people": people, "split": "calibration" if len(out) % 2 == 0 else "heldout"})
    return out[: 2 * per_half]


def box_blocks(bs, box: Box) -> float:
    """Worst guard block score among the 32×32 windows whose centre lies inside ``box``."""
    ys, xs = bs.grid.origins()
    cy, cx = ys + bs.grid.bh / 2, xs + bs.grid.bw / 2
    rows = (cy >= box.top) & (cy < box.bottom)
    cols = (cx >= box.left) & (cx < box.right)
    sub = bs.score[np.ix_(rows, cols)]
    return float(sub.min()) if sub.size else float("nan")


def variants(rgb: np.ndarray) -> list[tuple[str, bytes, np.ndarray, dict]]:
    """(name, file, decode, info) for every codec setting of the bench."""
    import codec
    from codec.baselines import decode_baseline, encode_at_budget
    from codec.options import bpp_to_bytes

    h, w = rgb.shape[:2]
    out = []
    for preset, bpp in PRESETS.items():
        base = max(256, bpp_to_bytes(bpp, w, h))
        t = time.perf_counter()
        faithful = codec.encode(rgb, max_bytes=int(base * HEADROOM), base_bytes=base, target="faithful",
                                effort="default")
        t_f = time.perf_counter() - t
        t = time.perf_counter()
        plain = codec.encode(rgb, max_bytes=base, effort="default")
        t_p = time.perf_counter() - t
        for name, data, secs in ((f"{preset}/latent-faithful", faithful, t_f),
                                 (f"{preset}/latent-plain", plain, t_p)):
            info = codec.info(data)
            meta = {k: info.get(k) for k in INFO_KEYS if k in info}
            meta["encode_s"] = round(secs, 1)
            out.append((name, data, np.asarray(codec.decode(data).convert("RGB")), meta))
        for name, budget in ((f"{preset}/avif-plain", base), (f"{preset}/avif-faithful", len(faithful))):
            res = encode_at_budget(rgb, "avif", budget)
            if not res.fits:  # below AVIF's smallest full-size file: downscaled, like faces_bench
                res = encode_at_budget(rgb, "avif", budget, mode="downscale")
            out.append((name, res.data, decode_baseline(res), {"bytes": len(res.data), "fits": res.fits,
                                                              "scale": round(res.scale, 3)}))
    return out


def bench(args: argparse.Namespace) -> None:
    import torch

    from codec.metrics.fidelity import block_scores

    torch.set_num_threads(1)
    scanned = json.loads((OUT / "people.set.json").read_text())
    photos = split_set(scanned["candidates"], args.per_half)
    if args.limit:
        photos = photos[: args.limit]
    results = []
    t0 = time.perf_counter()
    for photo in photos:
        rgb = load(photo["name"])
        people = [Box(**{k: v for k, v in b.items() if k != "person"}) for b in photo["people"]]
        raw_o = detect(rgb, grouped=False)
        row = {"name": photo["name"], "split": photo["split"], "size": photo["size"], "people": [],
               "variants": {}}
        for b, p in zip(people, photo["people"], strict=True):
            row["people"].append({**asdict(b), "person": p["person"], "score": best_match(b, raw_o)})
        decs = {}
        for name, _data, dec, meta in variants(rgb):
            decs[name] = dec
            if args.keep:  # the decodes, for crops after the run
                keep = Path(args.keep) / photo["name"].replace("/", "_")
                keep.mkdir(parents=True, exist_ok=True)
                Image.fromarray(dec).save(keep / (name.replace("/", "_") + ".png"))
            raw_d = detect(dec, grouped=False)
            bs = block_scores(rgb, dec)
            per = []
            for b, p in zip(people, row["people"], strict=True):
                s = best_match(b, raw_d)
                per.append({"score": s, "detected": s is not None,
                            "drop": None if s is None or p["score"] is None else round(p["score"] - s, 3),
                            "worst_block_in_box": round(box_blocks(bs, b), 3)})
            row["variants"][name] = {**meta, "worst_block": round(float(bs.score.min()), 3), "people": per}
            scores = [(q["detected"], q["score"] and round(q["score"], 2)) for q in per]
            print(photo["name"], name, meta.get("bytes"), scores, flush=True)
        results.append(row)
        save(results, t0, args)
        collect(rgb, row, decs)
        grid(OUT / "people.grid.png")


def save(results: list[dict], t0: float, args: argparse.Namespace) -> None:
    load1 = os.getloadavg()
    cpu = platform.processor() or platform.machine()
    doc = {"machine": f"{cpu}, {os.cpu_count()} cores (shared), torch 1 thread, cv2 1 thread",
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "loadavg": [round(x, 2) for x in load1], "seconds": round(time.perf_counter() - t0, 1),
           "command": "PYTHONPATH=. .venv/bin/python scripts/people_bench.py bench"
                      + (f" --per-half {args.per_half}" if args.per_half != 8 else "")
                      + (f" --keep {args.keep}" if args.keep else ""),
           "upscale": UPSCALE, "min_weight": MIN_WEIGHT, "min_height": MIN_HEIGHT, "match_iou": MATCH_IOU,
           "photos": results}
    (OUT / "people.json").write_text(json.dumps(doc, indent=1))


_CROPS: list[tuple[str, list[np.ndarray]]] = []


def crop(img: np.ndarray, b: Box, pad: int = 8) -> np.ndarray:
    h, w = img.shape[:2]
    return img[max(0, b.top - pad):min(h, b.bottom + pad), max(0, b.left - pad):min(w, b.right + pad)]


def collect(rgb: np.ndarray, row: dict, decs: dict[str, np.ndarray]) -> None:
    """1:1 crops (original | latent | AVIF at the same bytes) of every person a latent decode loses."""
    for name, v in row["variants"].items():
        if "/latent-" not in name:
            continue
        avif = name.replace("latent-", "avif-")
        for i, (p, q) in enumerate(zip(row["people"], v["people"], strict=True)):
            if p["score"] is not None and not q["detected"]:
                b = Box(p["left"], p["top"], p["right"], p["bottom"])
                avif_det = row["variants"][avif]["people"][i]["detected"]
                label = (f"{row['name']} #{i} {name} {v['bytes']} B floor_met={v.get('fidelity_floor_met')} "
                         f"target_met={v.get('target_met')} | AVIF det={avif_det}")
                _CROPS.append((label, [crop(rgb, b), crop(decs[name], b), crop(decs[avif], b)]))


def grid(path: Path) -> None:
    """Stack the collected crops (each row: label, then the three crops side by side, 1:1)."""
    if not _CROPS:
        return
    gap, text = 4, 14
    rows = []
    for label, ims in _CROPS:
        h = max(im.shape[0] for im in ims)
        w = sum(im.shape[1] for im in ims) + gap * (len(ims) - 1)
        canvas = Image.new("RGB", (max(w, 7 * len(label)), h + text), "white")
        ImageDraw.Draw(canvas).text((2, 1), label, fill="black")
        x = 0
        for im in ims:
            canvas.paste(Image.fromarray(np.ascontiguousarray(im)), (x, text))
            x += im.shape[1] + gap
        rows.append(canvas)
    out = Image.new("RGB", (max(r.width for r in rows), sum(r.height + gap for r in rows)), "white")
    y = 0
    for r in rows:
        out.paste(r, (0, y))
        y += r.height + gap
    if path.suffix == ".jpg":  # the tall sheet: JPEG q90 4:4:4 (1 MB) instead of a 3.5 MB PNG
        out.convert("RGB").save(path, quality=90, subsampling=0, optimize=True)
    else:
        out.save(path, optimize=True)


def report(args: argparse.Namespace) -> None:
    """Markdown tables from people.json: per setting, boxes kept / lost and whether the existing
    checks (block floor, target, the worst guard block inside the box) already flag each loss."""
    doc = json.loads((OUT / "people.json").read_text())
    floor = 0.15
    names = list(doc["photos"][0]["variants"])
    for split in ("calibration", "heldout", "all"):
        photos = [p for p in doc["photos"] if split in ("all", p["split"])]
        print(f"\n{split}: {len(photos)} photos, "
              f"{sum(b['person'] for p in photos for b in p['people'])} people boxes, "
              f"{sum(not b['person'] for p in photos for b in p['people'])} false-positive boxes\n")
        print("| setting | mean bytes | people lost | mean score drop (people) | lost, file flagged "
              "| lost, unflagged but box block < floor | lost, nothing flags it | FP boxes lost |")
        print("|---|---|---|---|---|---|---|---|")
        for name in names:
            lost = flagged = boxflag = silent = fp_lost = n = 0
            drops, sizes = [], []
            for p in photos:
                v = p["variants"][name]
                sizes.append(v["bytes"])
                file_flag = v.get("fidelity_floor_met") is False or v.get("target_met") is False
                for b, q in zip(p["people"], v["people"], strict=True):
                    if b["score"] is None:
                        continue
                    if not b["person"]:
                        fp_lost += not q["detected"]
                        continue
                    n += 1
                    drops.append(b["score"] - (q["score"] if q["score"] is not None else 0.0))
                    if not q["detected"]:
                        lost += 1
                        if "/avif-" in name:
                            continue
                        if file_flag:
                            flagged += 1
                        elif q["worst_block_in_box"] < floor:
                            boxflag += 1
                        else:
                            silent += 1
            who = " | ".join(map(str, (flagged, boxflag, silent))) if "/latent-" in name else "– | – | –"
            mean_drop = float(np.mean(drops))
            print(f"| {name} | {np.mean(sizes):.0f} | {lost}/{n} | {mean_drop:+.2f} | {who} | {fp_lost} |")


def flicker(args: argparse.Namespace) -> None:
    """The detector's own noise on harmless changes of the original (JPEG q85, a 2-px shift, a
    Gaussian blur of σ 1): the margin drop per real person and whether it is still found."""
    import io

    from PIL import ImageFilter

    doc = json.loads((OUT / "people.json").read_text())
    rows: dict[str, list[tuple[float, bool]]] = {"jpeg85": [], "shift2": [], "blur1": []}
    for p in doc["photos"]:
        rgb = load(p["name"])
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, "JPEG", quality=85)
        shifted = np.pad(rgb, ((2, 0), (2, 0), (0, 0)), mode="edge")[:-2, :-2]
        blurred = np.asarray(Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(1)))
        for key, img in (("jpeg85", np.asarray(Image.open(buf).convert("RGB"))), ("shift2", shifted),
                         ("blur1", blurred)):
            raw = detect(img, grouped=False)
            for b in p["people"]:
                if b["person"] and b["score"] is not None:
                    s = best_match(Box(b["left"], b["top"], b["right"], b["bottom"]), raw)
                    rows[key].append((b["score"] - (s if s is not None else 0.0), s is not None))
    for key, vals in rows.items():
        drops = np.array([d for d, _ in vals])
        print(f"| {key} | {sum(not ok for _, ok in vals)}/{len(vals)} lost | mean drop {drops.mean():+.2f} "
              f"| max drop {drops.max():+.2f} |")


def damage(rgb: np.ndarray, b: Box, kind: str) -> np.ndarray:
    """The report's failures painted onto an original person (the HOG box has ~1/8 margin above and
    below the person, who spans ~1/2 of its width): ``head`` — the head (top 1/8..1/4 of the box,
    middle 3/8 of its width) filled with the background next to it (the colour just above the box top
    margin); ``rect`` — also the body turned into a flat rectangle of its mean colour (the
    "headless black rectangle")."""
    out = rgb.copy()
    w, h = b.right - b.left, b.bottom - b.top
    hd = head_box(b)
    hx0, hx1, hy0, hy1 = hd.left, hd.right, hd.top, hd.bottom
    bg = rgb[b.top:hy0 + 1, hx0:hx1].reshape(-1, 3).mean(axis=0)
    if kind == "rect":
        bx0, bx1, by1 = b.left + round(w / 4), b.left + round(w * 3 / 4), b.top + round(h * 7 / 8)
        out[hy1:by1, bx0:bx1] = rgb[hy1:by1, bx0:bx1].reshape(-1, 3).mean(axis=0).astype(np.uint8)
    out[hy0:hy1, hx0:hx1] = bg.astype(np.uint8)
    return out


def synthetic(args: argparse.Namespace) -> None:
    """Does the detector notice the report's damage (painted onto the originals, no codec)? And does
    the existing block guard (worst 32×32 / coarse block score in the box) already see it?"""
    from codec.metrics.fidelity import block_scores

    doc = json.loads((OUT / "people.json").read_text())
    rows: dict[str, list[tuple[float, bool, float]]] = {"head": [], "rect": []}
    _CROPS.clear()
    for p in doc["photos"]:
        rgb = load(p["name"])
        for i, b in enumerate(p["people"]):
            if not (b["person"] and b["score"] is not None):
                continue
            box = Box(b["left"], b["top"], b["right"], b["bottom"])
            ims = [crop(rgb, box)]
            for kind in rows:
                img = damage(rgb, box, kind)
                s = best_match(box, detect(img, grouped=False))
                worst = box_blocks(block_scores(rgb, img), box)
                rows[kind].append((b["score"] - (s if s is not None else 0.0), s is not None, worst))
                ims.append(crop(img, box))
            _CROPS.append((f"{p['name']} #{i} margins {b['score']:.2f} -> "
                           + " ".join(f"{k}:{rows[k][-1][0]:+.2f}/{'kept' if rows[k][-1][1] else 'lost'}"
                                      f"/block {rows[k][-1][2]:.2f}" for k in rows), ims))
    for kind, vals in rows.items():
        drops = np.array([d for d, _, _ in vals])
        blocks = np.array([w for _, _, w in vals])
        lost = np.array([not ok for _, ok, _ in vals])
        under = blocks < 0.15
        only_hog, only_guard = int((lost & ~under).sum()), int((~lost & under).sum())
        print(f"| {kind} | {int(lost.sum())}/{len(vals)} | {drops.mean():+.2f} | {np.median(blocks):.2f} "
              f"| {int(under.sum())}/{len(vals)} | {only_hog} | {only_guard} |")
    (OUT / "people.synthetic.json").write_text(json.dumps(
        {k: [{"drop": round(d, 3), "detected": ok, "worst_block_in_box": round(w, 3)} for d, ok, w in v]
         for k, v in rows.items()}, indent=1))
    grid(OUT / "people.synthetic.png")


HEAD_COLUMNS = ("tiny/latent-faithful", "tiny/avif-faithful", "small/latent-faithful", "small/avif-faithful")


def head_box(b: Box) -> Box:
    """Where the head sits in a HOG box (top 1/16..1/4, middle 3/8 of the width; see `damage`)."""
    w, h = b.right - b.left, b.bottom - b.top
    return Box(b.left + round(w * 5 / 16), b.top + round(h / 16),
               b.left + round(w * 11 / 16), b.top + round(h / 4))


def heads(args: argparse.Namespace) -> None:
    """Would a person box help the block guard as a REGION (a stricter floor at the head)? The worst
    guard block overlapping each real person's head area, latent vs AVIF at the same bytes (decodes
    kept by ``bench --keep``)."""
    from codec.metrics.fidelity import block_scores

    doc = json.loads((OUT / "people.json").read_text())
    out = []
    for p in doc["photos"]:
        rgb = load(p["name"])
        folder = Path(args.keep) / p["name"].replace("/", "_")
        scores = {c: block_scores(rgb, np.asarray(Image.open(folder / (c.replace("/", "_") + ".png"))
                                                  .convert("RGB"))) for c in HEAD_COLUMNS}
        for i, b in enumerate(p["people"]):
            if not b["person"]:
                continue
            hb = head_box(Box(b["left"], b["top"], b["right"], b["bottom"]))
            row = {"name": p["name"], "person": i, "head_px": hb.height}
            for c, bs in scores.items():
                ys, xs = bs.grid.origins()
                rows = (ys < hb.bottom) & (ys + bs.grid.bh > hb.top)
                cols = (xs < hb.right) & (xs + bs.grid.bw > hb.left)
                row[c] = round(float(bs.score[np.ix_(rows, cols)].min()), 3)
            out.append(row)
            print(row)
    (OUT / "people.heads.json").write_text(json.dumps(out, indent=1))
    for c in HEAD_COLUMNS:
        print(f"| {c} | {np.median([r[c] for r in out]):.2f} | {min(r[c] for r in out):.2f} |")


SHEET_COLUMNS = ("tiny/latent-plain", "tiny/latent-faithful", "tiny/avif-faithful", "small/latent-faithful",
                 "small/avif-faithful")


def sheet(args: argparse.Namespace) -> None:
    """Every real person at 1:1 (original, then `SHEET_COLUMNS` from the decodes kept by ``bench
    --keep``), each crop captioned with the detector's margin in it ('-' = lost): the eye check of
    whether the detector's verdicts match what a viewer sees."""
    doc = json.loads((OUT / "people.json").read_text())
    _CROPS.clear()
    for p in doc["photos"]:
        folder = Path(args.keep) / p["name"].replace("/", "_")
        rgb = load(p["name"])
        decs = {c: np.asarray(Image.open(folder / (c.replace("/", "_") + ".png")).convert("RGB"))
                for c in SHEET_COLUMNS}
        for i, b in enumerate(p["people"]):
            if not b["person"]:
                continue
            box = Box(b["left"], b["top"], b["right"], b["bottom"])
            marks = [f"{b['score']:.2f}" if b["score"] is not None else "-"]
            for c in SHEET_COLUMNS:
                q = p["variants"][c]["people"][i]
                marks.append(f"{q['score']:.2f}" if q["detected"] else "-")
            label = f"{p['name']} #{i} ({p['split']}) margins: " + " ".join(marks)
            _CROPS.append((label, [crop(rgb, box)] + [crop(decs[c], box) for c in SHEET_COLUMNS]))
    grid(OUT / "people.sheet.jpg")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("scan")
    sub.add_parser("report")
    sub.add_parser("flicker")
    sub.add_parser("synthetic")
    sub.add_parser("heads").add_argument("--keep", default="/tmp/people_decodes")
    sub.add_parser("sheet").add_argument("--keep", default="/tmp/people_decodes")
    b = sub.add_parser("bench")
    b.add_argument("--limit", type=int, default=0)
    b.add_argument("--per-half", type=int, default=8)
    b.add_argument("--keep", default="", help="folder to write every decode to (PNG)")
    args = ap.parse_args()
    globals()[args.cmd](args)


if __name__ == "__main__":
    main()
