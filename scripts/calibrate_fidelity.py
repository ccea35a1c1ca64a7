"""Measure the fidelity-score distribution on TRAINING photos (never Kodak) → the default floor.

    .venv/bin/python scripts/calibrate_fidelity.py --n 48 --bpp 0.10

Samples ``--n`` photos from ``$CODEC_TRAIN_DIR`` (→ ../shared/data/train; fixed seed, the same share
from each subfolder), encodes each with the guard OFF at ``--bpp`` (effort default), decodes (the
decode is kept in ``--cache``, so changing the score only re-scores), and records the block scores of
`codec.metrics.fidelity.block_scores` in ``--out``. Prints the percentiles of the per-photo worst block and of
all blocks. `codec.metrics.fidelity.DEFAULT_MIN_FIDELITY` is the ``FLOOR_PERCENTILE`` (5th) percentile of the
per-photo worst block at 0.10 bpp, rounded down to 0.05: the guard then acts on the photos whose worst
block is worse than that of 95 % of ordinary photos at the gallery's "small" size.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FLOOR_PERCENTILE = 5


def sample(train: Path, n: int, seed: int = 5) -> list[Path]:
    subs = sorted(p for p in train.iterdir() if p.is_dir())
    rng = random.Random(seed)
    per = -(-n // len(subs))
    out: list[Path] = []
    for sub in subs:
        files = sorted(p for p in sub.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        out += rng.sample(files, min(per, len(files)))
    return out[:n]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--bpp", type=float, default=0.10)
    ap.add_argument("--effort", default="default")
    ap.add_argument("--out", type=Path, default=Path("training-cache/fidelity-calibration.json"))
    ap.add_argument("--cache", type=Path, default=Path("training-cache/fidelity-decodes"),
                    help="decoded images are kept here (PNG), so re-scoring needs no re-encode")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(2)
    import codec
    from codec.metrics.fidelity import block_scores
    from codec.weights import train_dir

    done = json.loads(args.out.read_text()) if args.out.is_file() else {}
    key = f"{args.bpp:.3f}"
    rows = done.setdefault(key, {})
    for path in sample(Path(train_dir()), args.n):
        name = f"{path.parent.name}/{path.name}"
        rgb = codec.load_image(path)
        cached = args.cache / key / f"{path.parent.name}__{path.stem}.png"
        t0 = time.perf_counter()
        if cached.is_file():
            dec = np.asarray(Image.open(cached).convert("RGB"))
            nbytes = rows.get(name, {}).get("bytes")
        else:
            data = codec.encode(rgb, bpp=args.bpp, effort=args.effort, min_fidelity=0)
            dec = np.asarray(codec.decode(data))
            cached.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(dec).save(cached)
            nbytes = len(data)
        bs = block_scores(rgb, dec)
        rows[name] = {"bytes": nbytes, "min": float(bs.score.min()), "mean": float(bs.score.mean()),
                      "scores": np.round(bs.score.ravel(), 4).tolist(), "seconds": time.perf_counter() - t0}
        args.out.write_text(json.dumps(done))
        print(f"{name:45s} {nbytes or 0:6d} B  min {bs.score.min():.3f}  mean {bs.score.mean():.3f}",
              flush=True)
    mins = np.array([r["min"] for r in rows.values()])
    blocks = np.concatenate([r["scores"] for r in rows.values()])
    pct = (1, 2, 5, 10, 25, 50)
    print(f"{len(mins)} photos at {args.bpp} bpp")
    print("per-image worst block percentiles:", {p: round(float(np.percentile(mins, p)), 3) for p in pct})
    print("all-block percentiles:",
          {p: round(float(np.percentile(blocks, p)), 3) for p in (0.1, 0.5, 1, 2, 5)})
    floor = np.floor(np.percentile(mins, FLOOR_PERCENTILE) / 0.05) * 0.05
    print(f"suggested floor (p{FLOOR_PERCENTILE} of the worst block, rounded down to 0.05): {floor:.2f}")


if __name__ == "__main__":
    main()
