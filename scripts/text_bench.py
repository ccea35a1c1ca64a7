"""Text legibility benchmark: rendered signs on training photos, OCR CER per codec at the same bytes.

    .venv/bin/python scripts/text_bench.py [--photos 4] [--bpp 0.05 0.10 0.15] [--effort fast]
        [--out docs/bench/faces/text_results.json]

Each photo (training set, never Kodak) gets two sign lines in DejaVu Sans Bold on a light plate:
cap height 12 px and 20 px. The CER is `codec.metrics.legibility.compare_text` on the known line boxes
(OCR(decoded) against OCR(original)); ``cer_truth`` is OCR(decoded) against the rendered string.
Public codec API only; see scripts/faces_bench.py for running against a checkout (PYTHONPATH).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT))

import codec  # noqa: E402
from codec import baselines  # noqa: E402
from codec.metrics import legibility as leg  # noqa: E402

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
LINES = ("EXIT 7 Harbour Road", "Gallery open 9-17h", "U.S. AIR FORCE 1961", "Platform 4 to Leeds",
         "NO PARKING ZONE B", "Cafe Central since 1876")
CAP_HEIGHTS = (12, 20)
#: DejaVu Sans cap height is 0.729 em.
CAP_PER_EM = 0.729
CODECS = ("latent", "avif", "webp")


def render(photo: Path, texts: tuple[str, str]) -> tuple[np.ndarray, list[leg.TextRegion], list[str]]:
    img = Image.open(photo).convert("RGB")
    draw = ImageDraw.Draw(img)
    regions, truths = [], []
    y = 16
    for text, cap in zip(texts, CAP_HEIGHTS, strict=True):
        font = ImageFont.truetype(FONT, round(cap / CAP_PER_EM))
        x0, y0, x1, y1 = draw.textbbox((16, y), text, font=font)
        draw.rectangle((x0 - 5, y0 - 5, x1 + 5, y1 + 5), fill=(238, 236, 226))
        draw.text((16, y), text, font=font, fill=(25, 25, 30))
        regions.append(leg.TextRegion(x0, y0, x1, y1, text, 100.0))
        truths.append(text)
        y = y1 + 24
    return np.asarray(img), regions, truths


def code(rgb: np.ndarray, name: str, budget: int, effort: str) -> tuple[np.ndarray, int, bool]:
    if name == "latent":
        data = codec.encode(rgb, max_bytes=budget, effort=effort)
        return np.asarray(codec.decode(data).convert("RGB")), len(data), len(data) <= budget
    res = baselines.encode_at_budget(rgb, name, budget)
    if not res.fits:  # even the lowest quality is over budget: shrink the image instead (same bytes)
        res = baselines.encode_at_budget(rgb, name, budget, mode="downscale")
    return baselines.decode_baseline(res), res.nbytes, bool(res.fits)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", type=int, default=4)
    ap.add_argument("--bpp", type=float, nargs="+", default=[0.05, 0.10, 0.15])
    ap.add_argument("--effort", default="fast")
    ap.add_argument("--out", default=str(ROOT / "docs/bench/faces/text_results.json"))
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    train = Path(os.environ.get("CODEC_TRAIN_DIR") or ROOT.parent / "shared" / "data" / "train")
    photos = sorted((train / "bsds500").glob("*.jpg"))[100:100 + args.photos * 7:7]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    results: dict = {"effort": args.effort, "bpp": args.bpp, "cap_heights": CAP_HEIGHTS, "images": []}
    tiles: list[list[Image.Image]] = []
    t0 = time.time()
    for k, photo in enumerate(photos):
        texts = (LINES[k % len(LINES)], LINES[(k + 3) % len(LINES)])
        rgb, regions, truths = render(photo, texts)
        h, w = rgb.shape[:2]
        found = leg.find_text_regions(rgb)
        entry = {"photo": f"bsds500/{photo.name}", "lines": truths,
                 "search_found": [r.text for r in found], "rows": []}
        for bpp in args.bpp:
            budget = int(bpp * w * h / 8)
            for name in CODECS:
                dec, nbytes, fits = code(rgb, name, budget, args.effort)
                rep = leg.compare_text(rgb, dec, regions=regions)
                by_text = {line.region.text: line for line in rep.lines}
                for region, truth, cap in zip(regions, truths, CAP_HEIGHTS, strict=True):
                    line = by_text.get(region.text)
                    entry["rows"].append({
                        "bpp": bpp, "codec": name, "bytes": nbytes, "fits": fits, "cap_px": cap,
                        "truth": truth, "ocr_original": line.original_text if line else "",
                        "ocr_decoded": line.decoded_text if line else "",
                        "cer": line.cer if line else None,
                        "cer_truth": leg.cer(truth, line.decoded_text) if line else None})
                if bpp == 0.10:
                    region = regions[0]
                    box = (region.left - 8, region.top - 8, region.right + 8, region.bottom + 8)
                    if name == CODECS[0]:
                        tiles.append([Image.fromarray(rgb).crop(box)])
                    tiles[-1].append(Image.fromarray(dec).crop(box))
        results["images"].append(entry)
        results["elapsed_s"] = round(time.time() - t0, 1)
        out.write_text(json.dumps(results, indent=1))
        print(f"{photo.name}: {time.time() - t0:.0f} s", flush=True)
    if tiles:
        tw, th = max(t.width for row in tiles for t in row), max(t.height for row in tiles for t in row)
        scale = 2
        grid = Image.new("RGB", (len(tiles[0]) * tw * scale, len(tiles) * th * scale), "white")
        for i, row in enumerate(tiles):
            for j, t in enumerate(row):
                grid.paste(t.resize((t.width * scale, t.height * scale), Image.Resampling.NEAREST),
                           (j * tw * scale, i * th * scale))
        grid.save(out.with_name("text_grid_0.10bpp.png"), optimize=True)


if __name__ == "__main__":
    main()
