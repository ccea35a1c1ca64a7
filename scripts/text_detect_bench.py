"""Text line detection benchmark: Tesseract's own search against PP-OCRv4's detector (issue 12).

    PYTHONPATH=. .venv/bin/python scripts/text_detect_bench.py [--out docs/bench/faces/text_detect.json]

Three measurements, training photos only (never Kodak):

1. **Found**: the rendered sign lines of `scripts/text_bench.py` (two lines, 12- and 20-px caps, on each
   of 9 bsds500 photos): how many each finder returns (a rendered line counts as found when a returned
   box covers ≥ 50 % of it), the box's IoU with the rendered box, and whether the encoder keeps it
   (`codec.encoder.text.detect`: ≥ 4 letters/digits and, for PP-OCR, Tesseract's reading of the crop
   agreeing with PP-OCR's).
2. **False lines**: the same finders on 62 training photos without rendered text (every 12th bsds500
   photo + the first 20 imagenet samples); every line the encoder would check is listed.
3. **Time**: `codec.encoder.text.detect` on Kodak's kodim01 at 768×512, 1 MP and 12 MP (bicubic
   enlargements), median of 3 after a warm-up, one thread each.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT))
sys.path.append(str(ROOT / "scripts"))

import text_bench  # noqa: E402

from codec.encoder import text as text_check  # noqa: E402
from codec.metrics import legibility as leg  # noqa: E402


def _iou(a: leg.TextRegion, b: leg.TextRegion) -> float:
    ix = max(0, min(a.right, b.right) - max(a.left, b.left))
    iy = max(0, min(a.bottom, b.bottom) - max(a.top, b.top))
    union = (a.right - a.left) * a.height + (b.right - b.left) * b.height - ix * iy
    return ix * iy / union if union else 0.0


def _cover(found: leg.TextRegion, truth: leg.TextRegion) -> float:
    ix = max(0, min(found.right, truth.right) - max(found.left, truth.left))
    iy = max(0, min(found.bottom, truth.bottom) - max(found.top, truth.top))
    return ix * iy / ((truth.right - truth.left) * truth.height)


def _detect(rgb: np.ndarray, finder: str) -> list[leg.TextRegion]:
    os.environ[text_check.DETECTOR_ENV] = finder
    return text_check.detect(rgb) or []


def found_lines(train: Path) -> list[dict]:
    photos = sorted((train / "bsds500").glob("*.jpg"))[100:100 + 9 * 7:7]
    rows = []
    for k, photo in enumerate(photos):
        pool = text_bench.LINES
        rgb, regions, _truths = text_bench.render(photo, (pool[k % len(pool)], pool[(k + 3) % len(pool)]))
        for finder in ("tesseract", "ppocr"):
            lines = _detect(rgb, finder)
            for truth, cap in zip(regions, text_bench.CAP_HEIGHTS, strict=True):
                hit = max(lines, key=lambda r, t=truth: _cover(r, t), default=None)
                ok = hit is not None and _cover(hit, truth) >= 0.5
                rows.append({"photo": photo.name, "finder": finder, "cap_px": cap, "truth": truth.text,
                             "found": ok, "iou": round(_iou(hit, truth), 3) if ok else None,
                             "reading": hit.text if ok else None})
    return rows


def false_lines(train: Path) -> list[dict]:
    photos = sorted((train / "bsds500").glob("*.jpg"))[::12]
    photos += sorted((train / "imagenet_samples").glob("*"))[:20]
    rows = []
    for photo in photos:
        rgb = np.asarray(Image.open(photo).convert("RGB"))
        for finder in ("tesseract", "ppocr"):
            rows.append({"photo": photo.name, "finder": finder,
                         "lines": [r.text for r in _detect(rgb, finder)]})
    return rows


def timings() -> list[dict]:
    kodak = Path(os.environ.get("CODEC_KODAK_DIR") or ROOT.parent / "shared" / "data" / "kodak")
    img = Image.open(kodak / "kodim01.png").convert("RGB")
    sizes = {"768x512": img, "1 MP": img.resize((1224, 816), Image.Resampling.BICUBIC),
             "12 MP": img.resize((4000, 3000), Image.Resampling.BICUBIC)}
    rows = []
    for finder in ("tesseract", "ppocr"):
        for name, im in sizes.items():
            rgb = np.asarray(im)
            _detect(rgb, finder)  # warm-up (model load)
            ts = []
            for _ in range(3):
                leg._readings.clear()
                t = time.perf_counter()
                _detect(rgb, finder)
                ts.append(time.perf_counter() - t)
            rows.append({"finder": finder, "size": name, "median_s": round(statistics.median(ts), 3),
                         "runs_s": [round(x, 3) for x in ts]})
    return rows


def summary(res: dict) -> str:
    out = ["| finder | lines found (12 px / 20 px / all) | median IoU with the rendered box | "
           "photos without text with a checked line | lines there |", "|---|---|---|---|---|"]
    for finder in ("tesseract", "ppocr"):
        rows = [r for r in res["found"] if r["finder"] == finder]
        n = {cap: sum(r["found"] for r in rows if r["cap_px"] == cap) for cap in text_bench.CAP_HEIGHTS}
        total = sum(n.values())
        ious = [r["iou"] for r in rows if r["found"]]
        fl = [r for r in res["false"] if r["finder"] == finder]
        with_line = [r for r in fl if r["lines"]]
        half = len(rows) // 2
        out.append(f"| {finder} | {n[12]}/{half} / {n[20]}/{half} / {total}/{len(rows)} | "
                   f"{statistics.median(ious):.2f} | {len(with_line)}/{len(fl)} | "
                   + "; ".join(f"{r['photo']}: {', '.join(r['lines'])}" for r in with_line) + " |")
    out += ["", "| finder | " + " | ".join(r["size"] for r in res["time"] if r["finder"] == "ppocr") + " |",
            "|---|---|---|---|"]
    for finder in ("tesseract", "ppocr"):
        out.append(f"| {finder} | " + " | ".join(f"{r['median_s']:.2f} s" for r in res["time"]
                                                 if r["finder"] == finder) + " |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "docs/bench/faces/text_detect.json"))
    ap.add_argument("--summary", metavar="JSON", help="print the tables of a results file and exit")
    args = ap.parse_args()
    if args.summary:
        print(summary(json.loads(Path(args.summary).read_text())))
        return
    train = Path(os.environ.get("CODEC_TRAIN_DIR") or ROOT.parent / "shared" / "data" / "train")
    t0 = time.time()
    res = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.platform(),
           "cpus": os.cpu_count(), "load_avg_start": os.getloadavg(),
           "found": found_lines(train), "false": false_lines(train), "time": timings()}
    res["load_avg_end"] = os.getloadavg()
    res["elapsed_s"] = round(time.time() - t0, 1)
    Path(args.out).write_text(json.dumps(res, indent=1, ensure_ascii=False))
    print(summary(res))


if __name__ == "__main__":
    main()
