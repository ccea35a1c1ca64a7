"""Build the faces benchmark set: test images (Kodak portraits, skimage astronaut, matplotlib's Grace
Hopper) and training photos with faces found by the identity metric's detector, split into a
calibration half and a held-out half (alternating in file order, so neither half is cherry-picked).

    .venv/bin/python scripts/faces_set.py [--per-half 12] [--min-face 48] [--out docs/bench/faces/set.json]

Kodak is only ever reported (split "test"), never used to calibrate anything.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from codec.metrics.identity import detect_faces  # noqa: E402

KODAK_PORTRAITS = ("kodim04", "kodim15", "kodim18", "kodim19", "kodim20")


def shared(env: str, sub: str) -> Path:
    return Path(os.environ.get(env) or ROOT.parent / "shared" / "data" / sub)


def test_images() -> list[dict]:
    items = [{"name": k, "path": f"kodak:{k}.png", "split": "test"} for k in KODAK_PORTRAITS]
    items.append({"name": "astronaut", "path": "skimage:astronaut", "split": "test"})
    items.append({"name": "grace_hopper", "path": "mpl:grace_hopper.jpg", "split": "test"})
    return items


def resolve(path: str) -> str:
    """``kodak:NAME`` / ``train:SUB/NAME`` (shared data, env var first), ``mpl:NAME`` (matplotlib sample)."""
    kind, _, rest = path.partition(":")
    if kind == "kodak":
        return str(shared("CODEC_KODAK_DIR", "kodak") / rest)
    if kind == "train":
        return str(shared("CODEC_TRAIN_DIR", "train") / rest)
    if kind == "mpl":
        import matplotlib.cbook as cbook

        return str(cbook.get_sample_data(rest, asfileobj=False))
    return path


def load(path: str) -> np.ndarray:
    if path == "skimage:astronaut":
        from skimage import data

        return data.astronaut()
    return np.asarray(Image.open(resolve(path)).convert("RGB"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-half", type=int, default=12)
    ap.add_argument("--min-face", type=int, default=48, help="smallest face side (px) a training photo needs")
    ap.add_argument("--out", default=str(ROOT / "docs/bench/faces/set.json"))
    args = ap.parse_args()
    train = shared("CODEC_TRAIN_DIR", "train")
    files = sorted(p for sub in ("bsds500", "imagenet_samples") for p in (train / sub).iterdir()
                   if p.suffix.lower() in (".jpg", ".png"))
    found: list[dict] = []
    t0 = time.time()
    scanned = 0
    for path in files:
        if len(found) >= 2 * args.per_half:
            break
        rgb = load(str(path))
        if rgb.shape[0] * rgb.shape[1] > 1_200_000:
            continue
        scanned += 1
        faces = [f for f in detect_faces(rgb, upsample=1) if f.size >= args.min_face]
        if faces:
            rel = f"{path.parent.name}/{path.name}"
            found.append({"name": rel, "path": f"train:{rel}",
                          "faces": len(faces), "largest_face": max(f.size for f in faces)})
    for i, item in enumerate(found):
        item["split"] = "calibration" if i % 2 == 0 else "heldout"
    items = test_images() + found
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"scanned_train_photos": scanned, "min_face_px": args.min_face,
                               "scan_seconds": round(time.time() - t0, 1), "images": items}, indent=1))
    print(f"{len(found)} training photos with faces ≥ {args.min_face} px among {scanned} scanned "
          f"({time.time() - t0:.0f} s) → {out}")


if __name__ == "__main__":
    main()
