"""1:1 crops of one codec file decoded by the stock decoder and by tuned decoders (issue 14 item 2).

    PYTHONPATH=. .venv/bin/python scripts/tuned_decoder_crops.py IMAGE --bpp 0.10 --box X Y W H \
        --weights A.safetensors [B.safetensors ...] --out F.png

Columns: original | stock decoder | each tuned decoder; the same file (same bytes) in every column.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import codec  # noqa: E402
from codec import decoder  # noqa: E402
from codec.decoder import decode_rgb  # noqa: E402

# each column's decoder is the model passed in, not the one the file's latent filter names (filter 2 would
# send the "stock" column through the shipped tuned decoder too)
decoder.filter_decoder = lambda header, model: model
from codec.models import tuned_decoder  # noqa: E402
from codec.models.registry import get_model  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("image")
    ap.add_argument("--bpp", type=float, default=0.10)
    ap.add_argument("--box", type=int, nargs=4, required=True, metavar=("X", "Y", "W", "H"))
    ap.add_argument("--weights", nargs="+", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    rgb = np.asarray(Image.open(args.image).convert("RGB"))
    data = codec.encode(rgb, bpp=args.bpp, effort="default")
    stock = get_model("taesd", "cpu", backend="torch")
    cols = [("original", rgb), ("stock decoder", decode_rgb(data, model=stock))]
    for w in args.weights:
        tuned = tuned_decoder.build(stock, Path(w))
        cols.append((Path(w).stem, decode_rgb(data, model=tuned)))
    x, y, bw, bh = args.box
    sheet = Image.new("RGB", (len(cols) * (bw + 8), bh + 24), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (label, img) in enumerate(cols):
        sheet.paste(Image.fromarray(img[y : y + bh, x : x + bw]), (i * (bw + 8), 24))
        draw.text((i * (bw + 8) + 4, 4), f"{label}" + (f" ({len(data)} B)" if i else ""), fill="black")
    sheet.save(args.out)
    print(args.out, len(data), "bytes")


if __name__ == "__main__":
    main()
