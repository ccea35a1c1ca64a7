"""Probe (issue 14, MS-SSIM at 0.05–0.15 bpp): a low-frequency correction coded by the codec's OWN coder.

`probe_lowres_residual.py` showed that a perfect 1/8-resolution correction of the decode lifts MS-SSIM by
0.02–0.05 below 0.2 bpp, but that WebP / JPEG XL / AVIF cannot code it in the few hundred bytes there are
(container overhead, blocky at the qualities that fit). This probe codes the same correction without a
container: the residual ``original − decode`` box-filtered to 1/2^s resolution, turned to YCbCr, quantized
with a uniform step (chroma × 1.5) and coded by `geometric_coder.py` beside this script (a range coder whose
two-sided geometric laws are written up front: ~13 B for a plane set of zeros). The decoder side
dequantizes, turns back to RGB, upsamples (bilinear) and adds.

Per photo and budget B: the shipped file at B, and the shipped file (k = 0: in its unused bytes) or the
shipped encoder at B − k (k = 5 / 10 % of B) plus
the correction at s = 2 / 3 / 4 with the finest step that fits the bytes left (``HEADER`` bytes counted).
Training photos only (never Kodak, none of the RD bench's held-out photos; same picker and seed as the
earlier probe), faces off, guard on.

    PYTHONPATH=. .venv/bin/python scripts/probe_lowfreq_layer.py --n 8 \\
        --out docs/bench/rd/msssim_gap/lowfreq_layer_train.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import geometric_coder as geometric
from probe_lowres_residual import add_photo_args, metrics, shipped_files

import codec
from codec.decoder import decode_rgb
from codec.encoder.residual import FRAMING

#: section framing + kind byte + step byte + shape/levels byte (what a real layer would carry)
HEADER = FRAMING + 3
STEPS = (1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 16.0, 20.0, 24.0)
CHROMA = 1.5
HALF = geometric.HALF

_TO_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
_TO_RGB = np.linalg.inv(_TO_YCC)


def _resize(plane: np.ndarray, size: tuple[int, int], how) -> np.ndarray:
    return np.asarray(Image.fromarray(plane.astype(np.float32), mode="F").resize(size, how))


def up_matrix(n_small: int, n_big: int) -> np.ndarray:
    """(n_big, n_small): PIL's bilinear upsampling of a 1-D signal as a matrix (it is separable)."""
    eye = np.eye(n_small, dtype=np.float32)
    return np.stack([_resize(eye[i:i + 1], (n_big, 1), Image.BILINEAR)[0] for i in range(n_small)], 1)


def small_plane(plane: np.ndarray, small: tuple[int, int], fit: str) -> np.ndarray:
    """The low-resolution plane: box-filtered, or the least-squares fit under bilinear upsampling."""
    if fit == "box":
        return _resize(plane, small, Image.BOX)
    uy, ux = up_matrix(small[1], plane.shape[0]), up_matrix(small[0], plane.shape[1])
    return np.linalg.pinv(uy) @ plane @ np.linalg.pinv(ux).T


def correction(rgb: np.ndarray, dec: np.ndarray, shift: int, step: float,
               fit: str = "box") -> tuple[np.ndarray, np.ndarray]:
    """Quantized symbols (3, h, w) in [-HALF, HALF] and the dequantized full-size RGB correction."""
    hh, ww = rgb.shape[:2]
    small = (-(-ww // (1 << shift)), -(-hh // (1 << shift)))
    r = rgb.astype(np.float32) - dec.astype(np.float32)
    ycc = r @ _TO_YCC.T
    q = np.stack([np.clip(np.rint(small_plane(ycc[..., c], small, fit) / (step * (CHROMA if c else 1.0))),
                          -HALF, HALF) for c in range(3)])
    deq = np.stack([q[c] * step * (CHROMA if c else 1.0) for c in range(3)], axis=-1)
    up = np.stack([_resize(deq[..., c], (ww, hh), Image.BILINEAR) for c in range(3)], axis=-1)
    return q.astype(np.int64), up @ _TO_RGB.T


def shown(dec: np.ndarray, corr: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(dec.astype(np.float32) + corr), 0, 255).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    add_photo_args(ap, 6)
    ap.add_argument("--shares", default="0,0.05,0.1")
    ap.add_argument("--fit", choices=("box", "ls"), default="box")
    args = ap.parse_args()
    with open(args.out, "a") as out:
        for rgb, shipped, data, dec in shipped_files(args):
            budget = shipped["budget"]
            row: dict = dict(fit=args.fit, **shipped)
            for shift in (3, 4):  # uncoded-but-quantized at a fine step: what the coder could reach
                _, corr = correction(rgb, dec, shift, 1.0, args.fit)
                row[f"fine_s{shift}"] = metrics(rgb, shown(dec, corr))
            for share in (float(s) for s in args.shares.split(",")):
                if share:
                    base = codec.encode(rgb, max_bytes=budget - int(share * budget), check_faces=False)
                    base_dec = decode_rgb(base)
                else:  # the shipped file's own leftover bytes
                    base, base_dec = data, dec
                allowance = budget - len(base) - HEADER
                row[f"base_{share}"] = [*metrics(rgb, base_dec), len(base)]
                for shift in (2, 3, 4):
                    for step in STEPS:
                        sym, corr = correction(rgb, base_dec, shift, step, args.fit)
                        payload = geometric.encode(sym)
                        if len(payload) <= allowance:
                            row[f"ctx_{share}_s{shift}"] = [*metrics(rgb, shown(base_dec, corr)),
                                                            len(base) + HEADER + len(payload), step]
                            break
                    else:
                        row[f"ctx_{share}_s{shift}"] = None
            out.write(json.dumps(row) + "\n")
            out.flush()
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
