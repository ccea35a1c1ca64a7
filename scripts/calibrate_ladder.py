"""Calibrate the rate-control ladder on TRAINING photos (never Kodak).

For every (scale, levels) setting it encodes each photo with the stock encoder (effort fast),
decodes, and measures bpp, MS-SSIM and LPIPS. The mean score (MS-SSIM − LPIPS) per setting is
written to codec/encoder/ratecontrol_table.json, which `codec.encoder.ratecontrol` reads to order its ladder.

    .venv/bin/python scripts/calibrate_ladder.py --images 12 --seed 0

Up-scales (issue 14) are added to the existing table with ``--up``: on the first ``--images`` photos
of the SAME shuffled list (so a subset of the photos the table was made on), scale 1.0 and every
`ratecontrol.UP_SCALES` scale are measured at ``--levels``; each up-scale row is written as the
table's scale-1.0 row plus the paired difference measured on the subset (score and MS-SSIM/LPIPS
added, bpp multiplied by the ratio), so the new rows sit on the same footing as the old ones
although only a few photos were re-encoded (a 2× latent costs 4× the decode work). Other rows
are kept as they are:

    .venv/bin/python scripts/calibrate_ladder.py --up --images 3 --levels 8,12,16,24,32,64
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
    parser.add_argument("--up", action="store_true", help="add the up-scale rows to the existing table")
    parser.add_argument("--levels", default=",".join(map(str, CALIBRATION_LEVELS)))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--merge-only", action="store_true", help="--up: write the table from the cache")
    parser.add_argument("--cache", type=Path, default=ROOT / "training-cache" / "ladder-up.json",
                        help="--up: measured rows per photo (a rerun skips what is there)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
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
    if args.up:
        levels = [int(v) for v in args.levels.split(",")]
        _calibrate_up(files, model, levels, args.out, args.cache, args.merge_only)
        return
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



def _calibrate_up(files: list[Path], model, levels: list[int], out: Path, cache: Path,
                  merge_only: bool = False) -> None:
    import codec
    from codec.encoder import ratecontrol
    from codec.encoder.session import EncodeSession
    from codec.imageio import load_image
    from codec.metrics import lpips, ms_ssim

    t0 = time.time()
    table = json.loads(out.read_text())
    done: dict = json.loads(cache.read_text()) if cache.is_file() else {}
    scales = (1.0, *ratecontrol.UP_SCALES)
    for path in files if not merge_only else []:
        per = done.setdefault(path.name, {})
        rgb = load_image(path)
        session = EncodeSession(model, rgb, "fast")
        for scale in scales:
            for lv in levels:
                key = f"{scale}/{lv}"
                if key in per:
                    continue
                data = session.stream(ratecontrol.Setting(scale, lv), search=True)
                img = np.asarray(codec.decode(data))
                per[key] = [8 * len(data) / (rgb.shape[0] * rgb.shape[1]), ms_ssim(rgb, img), lpips(rgb, img)]
                cache.parent.mkdir(parents=True, exist_ok=True)
                cache.write_text(json.dumps(done))
                print(f"{path.name} {key}: bpp {per[key][0]:.4f} ms-ssim {per[key][1]:.4f} "
                      f"lpips {per[key][2]:.4f} ({time.time() - t0:.0f} s)", flush=True)
    base = {(float(r["scale"]), int(r["levels"])): r for r in table["settings"]}
    rows = [r for r in table["settings"] if float(r["scale"]) <= 1.0]
    names = [p.name for p in files if p.name in done]
    for scale in ratecontrol.UP_SCALES:
        for lv in levels:
            ref = base[(1.0, lv)]
            # photos measured at both settings (a run stopped early has fewer at the last scales)
            sub = [done[n] for n in names if f"{scale}/{lv}" in done.get(n, {}) and f"1.0/{lv}" in done[n]]
            if not sub:
                continue
            d_mss = statistics.fmean(m[f"{scale}/{lv}"][1] - m[f"1.0/{lv}"][1] for m in sub)
            d_lp = statistics.fmean(m[f"{scale}/{lv}"][2] - m[f"1.0/{lv}"][2] for m in sub)
            ratio = statistics.fmean(m[f"{scale}/{lv}"][0] / m[f"1.0/{lv}"][0] for m in sub)
            mss, lp = ref["ms_ssim"] + d_mss, ref["lpips"] + d_lp
            rows.append({"scale": scale, "levels": lv, "bpp": round(ref["bpp"] * ratio, 4),
                         "ms_ssim": round(mss, 4), "lpips": round(lp, 4), "score": round(mss - lp, 4),
                         "paired_on": len(sub)})
    table["settings"] = rows
    table["meta"]["images_up"] = names
    table["meta"]["up"] = ("rows with scale > 1: the scale-1.0 row + the paired difference (scale s − "
                           "scale 1.0, same levels) measured on images_up (a subset of images); bpp × ratio; "
                           f"{time.time() - t0:.0f} s")
    out.write_text(json.dumps(table, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
