"""Calibrate the rate-control ladder on TRAINING photos (never Kodak).

For every (scale, levels) setting it encodes each photo with the stock encoder (effort fast),
decodes, and measures bpp, MS-SSIM and LPIPS. The mean score (MS-SSIM − LPIPS) per setting is
written to codec/encoder/ratecontrol_table.json, which `codec.encoder.ratecontrol` reads to order its ladder.

    .venv/bin/python scripts/calibrate_ladder.py --images 12 --seed 0
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]
#: measured rungs; ratecontrol interpolates the others in log2(levels)
CALIBRATION_LEVELS = (3, 4, 6, 8, 12, 16, 24, 32, 64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "codec" / "encoder" / "ratecontrol_table.json")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(2)
    import codec
    from codec.encoder import ratecontrol
    from codec.encoder.session import EncodeSession
    from codec.imageio import load_image
    from codec.metrics import lpips, ms_ssim
    from codec.models.registry import get_model
    from codec.weights import train_dir

    train = train_dir()
    files = sorted(p for p in train.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    random.Random(args.seed).shuffle(files)
    files = files[: args.images]
    model = get_model("taesd", device="cpu")
    rows: dict[tuple[float, int], list[tuple[float, float, float]]] = {}
    t0 = time.time()
    for path in files:
        rgb = load_image(path)
        session = EncodeSession(model, rgb, "fast")
        for scale in ratecontrol.SCALES:
            for levels in CALIBRATION_LEVELS:
                setting = ratecontrol.Setting(scale, levels)
                data = session.stream(setting, search=True)  # ctx coder: what the search sees
                out = np.asarray(codec.decode(data))
                bpp = 8 * len(data) / (rgb.shape[0] * rgb.shape[1])
                rows.setdefault((scale, levels), []).append((bpp, ms_ssim(rgb, out), lpips(rgb, out)))
        print(f"{path.name}: done ({time.time() - t0:.0f} s)", flush=True)
        _write(args.out, rows, files[: files.index(path) + 1], args.seed, t0)
    print(f"wrote {args.out}")


def _write(out: Path, rows: dict, done: list[Path], seed: int, t0: float) -> None:
    """Write the table so far (the run is long on 2 cores: every finished photo counts)."""
    table = []
    for (scale, levels), vals in sorted(rows.items()):
        bpp = statistics.fmean(v[0] for v in vals)
        mss = statistics.fmean(v[1] for v in vals)
        lp = statistics.fmean(v[2] for v in vals)
        table.append({"scale": scale, "levels": levels, "bpp": round(bpp, 4), "ms_ssim": round(mss, 4),
                      "lpips": round(lp, 4), "score": round(mss - lp, 4)})
    meta = {"images": [p.name for p in done], "seed": seed, "model": "taesd", "effort": "fast",
            "score": "ms_ssim - lpips (means over the images)", "seconds": round(time.time() - t0, 1)}
    out.write_text(json.dumps({"meta": meta, "settings": table}, indent=1) + "\n")



if __name__ == "__main__":
    main()
