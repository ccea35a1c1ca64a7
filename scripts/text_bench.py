"""Text legibility benchmark: rendered signs on training photos, OCR CER per codec at the same bytes.

    .venv/bin/python scripts/text_bench.py [--photos 4] [--bpp 0.05 0.10 0.15] [--effort fast]
        [--codecs latent avif webp] [--out docs/bench/faces/text_results.json]

    # the text protection (issue 12): the same rows plus the text-checked latent, as the gallery codes it
    .venv/bin/python scripts/text_bench.py --photos 3 --effort default \
        --codecs latent latent+text faithful+text avif avif@faithful webp \
        --out docs/bench/faces/text_protected.json

Each photo (training set, never Kodak) gets two sign lines in DejaVu Sans Bold on a light plate:
cap height 12 px and 20 px. The CER is `codec.metrics.legibility.compare_text` on the known line boxes
(OCR(decoded) against OCR(original)); ``cer_truth`` is OCR(decoded) against the rendered string.

Codecs: ``latent`` (``codec.encode`` at the budget, faces checked, text not), ``latent+text`` (the same
with ``check_text=True``: the encoder finds the lines itself with Tesseract and protects those it
finds), ``faithful+text`` (the gallery's preset path: ``target="faithful"``, ``base_bytes`` = the
budget, cap = ``--headroom`` × the budget, ``check_text=True``), ``avif``/``webp`` at the budget and
``avif@faithful`` (AVIF at the bytes ``faithful+text`` took: the same-bytes comparison for a file
that grew). Each row has the encode's seconds and, for latents, ``codec.info``'s text/face tags.
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
from codec.encoder import text as text_check  # noqa: E402
from codec.metrics import legibility as leg  # noqa: E402

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
LINES = ("EXIT 7 Harbour Road", "Gallery open 9-17h", "U.S. AIR FORCE 1961", "Platform 4 to Leeds",
         "NO PARKING ZONE B", "Cafe Central since 1876")
CAP_HEIGHTS = (12, 20)
#: DejaVu Sans cap height is 0.729 em.
CAP_PER_EM = 0.729
CODECS = ("latent", "avif", "webp")
ALL_CODECS = ("latent", "latent+text", "faithful", "faithful+text", "avif", "avif@faithful", "webp")
#: tags of ``codec.info`` a latent row keeps
INFO_KEYS = ("text_cer", "text_numbers_kept", "text_checked", "protection_bytes", "guard", "guard_bytes",
             "target_met", "faces_found", "fidelity_floor_met")


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


def code(rgb: np.ndarray, name: str, budget: int, effort: str,
         headroom: float = 2.0) -> tuple[np.ndarray, int, bool, dict]:
    """(decoded, bytes, fits, info tags) of ``rgb`` coded by ``name`` at ``budget`` bytes."""
    if name.startswith(("latent", "faithful")):
        opts: dict = {"max_bytes": budget, "effort": effort, "check_text": name.endswith("+text")}
        if name.startswith("faithful"):
            opts.update(target="faithful", base_bytes=budget, max_bytes=int(budget * headroom))
        data = codec.encode(rgb, **opts)
        info = codec.info(data)
        tags = {k: info[k] for k in INFO_KEYS if k in info}
        return np.asarray(codec.decode(data).convert("RGB")), len(data), len(data) <= opts["max_bytes"], tags
    name = name.split("@")[0]
    res = baselines.encode_at_budget(rgb, name, budget)
    if not res.fits:  # even the lowest quality is over budget: shrink the image instead (same bytes)
        res = baselines.encode_at_budget(rgb, name, budget, mode="downscale")
    return baselines.decode_baseline(res), res.nbytes, bool(res.fits), {}


def summary(results: dict) -> str:
    """Markdown table of the medians: per bpp and codec, CER per cap height, bytes, seconds, text tags."""
    rows = [r for im in results["images"] for r in im["rows"]]
    caps = sorted({r["cap_px"] for r in rows})
    head = ("| bpp | codec | " + " | ".join(f"CER {c} px" for c in caps)
            + " | bytes | s / encode | text_cer (file) | protection B | target met |")
    out = [head, "|" + "---|" * (head.count("|") - 1)]

    def med(values: list) -> str:
        values = [v for v in values if v is not None]
        return f"{float(np.median(values)):.2f}" if values else "–"

    codecs = [c for c in ALL_CODECS if any(r["codec"] == c for r in rows)]
    for bpp in sorted({r["bpp"] for r in rows}):
        for name in codecs:
            sel = [r for r in rows if r["bpp"] == bpp and r["codec"] == name]
            if not sel:
                continue
            one = [r for r in sel if r["cap_px"] == caps[0]]  # one row per encode
            info = [r.get("info", {}) for r in one]
            met = [i["target_met"] for i in info if "target_met" in i]
            out.append(f"| {bpp:.2f} | {name} | "
                       + " | ".join(med([r["cer"] for r in sel if r["cap_px"] == c]) for c in caps)
                       + f" | {med([r['bytes'] for r in one])[:-3]} | {med([r.get('seconds') for r in one])}"
                       + f" | {med([i.get('text_cer') for i in info])}"
                       + f" | {med([i.get('protection_bytes') for i in info])[:-3] or '–'}"
                       + f" | {f'{sum(met)}/{len(met)}' if met else '–'} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--summary", metavar="JSON", help="print the medians of a results file and exit")
    ap.add_argument("--photos", type=int, default=4)
    ap.add_argument("--bpp", type=float, nargs="+", default=[0.05, 0.10, 0.15])
    ap.add_argument("--effort", default="fast")
    ap.add_argument("--codecs", nargs="+", default=list(CODECS), choices=ALL_CODECS)
    ap.add_argument("--headroom", type=float, default=2.0,
                    help="cap of faithful+text: × the budget (the gallery's GALLERY_PRESET_TARGET_HEADROOM)")
    ap.add_argument("--grid-scale", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "docs/bench/faces/text_results.json"))
    args = ap.parse_args()
    if args.summary:
        print(summary(json.loads(Path(args.summary).read_text())))
        return
    import torch

    torch.set_num_threads(1)
    train = Path(os.environ.get("CODEC_TRAIN_DIR") or ROOT.parent / "shared" / "data" / "train")
    photos = sorted((train / "bsds500").glob("*.jpg"))[100:100 + args.photos * 7:7]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    results: dict = {"effort": args.effort, "bpp": args.bpp, "cap_heights": CAP_HEIGHTS,
                     "codecs": args.codecs, "headroom": args.headroom, "torch_threads": 1,
                     "load_avg_start": os.getloadavg(), "images": []}
    tiles: list[list[Image.Image]] = []
    t0 = time.time()
    for k, photo in enumerate(photos):
        texts = (LINES[k % len(LINES)], LINES[(k + 3) % len(LINES)])
        rgb, regions, truths = render(photo, texts)
        h, w = rgb.shape[:2]
        ts = time.perf_counter()
        found = text_check.detect(rgb) or []  # the lines the encoder's text check will see
        entry = {"photo": f"bsds500/{photo.name}", "lines": truths, "search_found": [r.text for r in found],
                 "search_s": round(time.perf_counter() - ts, 2), "rows": []}
        for bpp in args.bpp:
            budget = int(bpp * w * h / 8)
            grown = budget
            for name in args.codecs:
                tc = time.perf_counter()
                dec, nbytes, fits, tags = code(rgb, name, grown if name.endswith("@faithful") else budget,
                                               args.effort, args.headroom)
                seconds = round(time.perf_counter() - tc, 2)
                if name == "faithful+text":
                    grown = nbytes
                rep = leg.compare_text(rgb, dec, regions=regions)
                by_text = {line.region.text: line for line in rep.lines}
                for region, truth, cap in zip(regions, truths, CAP_HEIGHTS, strict=True):
                    line = by_text.get(region.text)
                    entry["rows"].append({
                        "bpp": bpp, "codec": name, "bytes": nbytes, "fits": fits, "cap_px": cap,
                        "seconds": seconds, "info": tags,
                        "truth": truth, "ocr_original": line.original_text if line else "",
                        "ocr_decoded": line.decoded_text if line else "",
                        "cer": line.cer if line else None,
                        "cer_truth": leg.cer(truth, line.decoded_text) if line else None})
                if bpp == 0.10:
                    region = regions[0]
                    box = (region.left - 8, region.top - 8, region.right + 8, region.bottom + 8)
                    if name == args.codecs[0]:
                        tiles.append([Image.fromarray(rgb).crop(box)])
                    tiles[-1].append(Image.fromarray(dec).crop(box))
        results["images"].append(entry)
        results["elapsed_s"] = round(time.time() - t0, 1)
        out.write_text(json.dumps(results, indent=1))
        print(f"{photo.name}: {time.time() - t0:.0f} s", flush=True)
    if tiles:
        tw, th = max(t.width for row in tiles for t in row), max(t.height for row in tiles for t in row)
        scale = args.grid_scale
        grid = Image.new("RGB", (len(tiles[0]) * tw * scale, len(tiles) * th * scale), "white")
        for i, row in enumerate(tiles):
            for j, t in enumerate(row):
                grid.paste(t.resize((t.width * scale, t.height * scale), Image.Resampling.NEAREST),
                           (j * tw * scale, i * th * scale))
        stem = "text_grid" if out.name == "text_results.json" else out.stem + "_grid"
        grid.save(out.with_name(f"{stem}_0.10bpp.png"), optimize=True)


if __name__ == "__main__":
    main()
