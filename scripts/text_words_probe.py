"""How often each rule of the text check fires on clean files and on the latent's decodes (issue 12).

    .venv/bin/python scripts/text_words_probe.py [--photos 9] [--out docs/bench/faces/text_words_probe.json]

The encoder's text check (`codec.encoder.text.check`) fails a decode when its worst line's CER is over
`TEXT_CER_FLOOR`, when a number reads differently (`LegibilityReport.numbers_kept`) or when a word of
3+ letters is no longer in the line's reading (`LegibilityReport.words_kept`). A rule is only useful if
it stays quiet on files a person would call clean and fires where the latent changed the text. So:

* clean files: JPEG q95/85/70 and AVIF at 0.3/0.5 bpp of each photo (readable text by eye);
* the latent at 0.10/0.15 bpp (effort default, the guard's block floor on, text NOT checked: what the
  check has to catch).

Photos: training photos (`bsds500`, the same picks as scripts/text_bench.py, never Kodak) with two sign
lines rendered by text_bench's `render` (12 and 20 px cap height). The lines judged are the ones the
encoder finds itself (`text_check.detect`, PP-OCR + Tesseract), so photos' own text counts too.
Prints a table per codec: lines, over the CER floor, numbers changed, words changed, any rule.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT))
sys.path.append(str(ROOT / "scripts"))

from text_bench import LINES, render  # noqa: E402

import codec  # noqa: E402
from codec import baselines  # noqa: E402
from codec.encoder import text as text_check  # noqa: E402

CLEAN = ("jpeg q95", "jpeg q85", "jpeg q70", "avif 0.30 bpp", "avif 0.50 bpp")
LATENT = ("latent 0.10 bpp", "latent 0.15 bpp")


def coded(rgb: np.ndarray, name: str) -> np.ndarray:
    h, w = rgb.shape[:2]
    kind, arg = name.split(" ", 1)
    if kind == "jpeg":
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, "JPEG", quality=int(arg[1:]))
        return np.asarray(Image.open(buf).convert("RGB"))
    budget = int(float(arg.split()[0]) * w * h / 8)
    if kind == "avif":
        return baselines.decode_baseline(baselines.encode_at_budget(rgb, "avif", budget))
    data = codec.encode(rgb, max_bytes=budget, effort="default", check_text=False)
    return np.asarray(codec.decode(data).convert("RGB"))


def summary(rows: list[dict]) -> str:
    out = ["| file | lines | CER over the floor | a number changed | a word changed | any rule | "
           "word rule alone |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name in (*CLEAN, *LATENT):
        sel = [r for r in rows if r["codec"] == name]
        over = sum(r["cer"] > text_check.TEXT_CER_FLOOR for r in sel)
        nums = sum(r["numbers_kept"] is False for r in sel)
        words = sum(r["words_kept"] is False for r in sel)
        fired = [r for r in sel if r["cer"] > text_check.TEXT_CER_FLOOR or r["numbers_kept"] is False
                 or r["words_kept"] is False]
        alone = sum(r["words_kept"] is False and r["cer"] <= text_check.TEXT_CER_FLOOR
                    and r["numbers_kept"] is not False for r in sel)
        out.append(f"| {name} | {len(sel)} | {over} | {nums} | {words} | {len(fired)} | {alone} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", type=int, default=9)
    ap.add_argument("--out", default=str(ROOT / "docs/bench/faces/text_words_probe.json"))
    ap.add_argument("--summary", metavar="JSON", help="print the table of a results file and exit")
    args = ap.parse_args()
    if args.summary:
        print(summary(json.loads(Path(args.summary).read_text())["rows"]))
        return
    import torch

    torch.set_num_threads(2)
    train = Path(os.environ.get("CODEC_TRAIN_DIR") or ROOT.parent / "shared" / "data" / "train")
    photos = sorted((train / "bsds500").glob("*.jpg"))[100:100 + args.photos * 7:7]
    rows: list[dict] = []
    t0 = time.time()
    load = os.getloadavg()
    for k, photo in enumerate(photos):
        rgb, _regions, _truths = render(photo, (LINES[k % len(LINES)], LINES[(k + 3) % len(LINES)]))
        regions = text_check.detect(rgb) or []
        for name in (*CLEAN, *LATENT):
            rep = text_check.check(rgb, coded(rgb, name), regions)
            for line in rep.lines if rep is not None else ():
                one = type(rep)((line,))
                rows.append({"photo": f"bsds500/{photo.name}", "codec": name, "original": line.original_text,
                             "decoded": line.decoded_text, "cer": line.cer, "numbers_kept": one.numbers_kept,
                             "words_kept": one.words_kept})
        print(f"{photo.name}: {len(regions)} lines", flush=True)
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t0)),
              "seconds": round(time.time() - t0), "load_avg_start": load, "photos": len(photos), "rows": rows}
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(summary(rows))


if __name__ == "__main__":
    main()
