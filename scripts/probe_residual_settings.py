"""Probe (issue 14, LPIPS at 0.5 bpp): which latent share and which AVIF settings for the residual layer?

Training photos only: never Kodak, and none of the photos the RD bench cuts its held-out windows
from (`codec.tools.bench.heldout`); whole photos shrunk to a 768-px longer side (Kodak's size).
For each photo and budget B it builds, as the encoder does (`codec.encoder.encode.encode_at_budget`,
guard on, faces off), the guarded latent at each share f·B, then codes the residual
``original − decode`` in the bytes left with AVIF under several settings (a quality search of its own:
the largest quality that fits), and measures PSNR / MS-SSIM / LPIPS of every result.

    PYTHONPATH=. .venv/bin/python scripts/probe_residual_settings.py --n 8 --bpp 0.5 \\
        --out docs/bench/residual/settings/probe_0.50.json
"""

from __future__ import annotations

import argparse
import io
import json
import random
import time
from pathlib import Path

import numpy as np
from PIL import Image

from codec.container import residuallayer
from codec.decoder import decode_rgb
from codec.encoder.encode import encode_at_budget
from codec.encoder.residual import FRAMING
from codec.encoder.session import EncodeSession
from codec.metrics import lpips, ms_ssim, psnr
from codec.models.registry import get_model
from codec.options import bpp_to_bytes
from codec.tools.bench.heldout import heldout_windows
from codec.weights import train_dir

#: residual AVIF variants: name → Pillow save options (quality searched)
VARIANTS = {
    "420s4": {"speed": 4, "subsampling": "4:2:0"},  # what the encoder ships
    "444s4": {"speed": 4, "subsampling": "4:4:4"},
    "420s2": {"speed": 2, "subsampling": "4:2:0"},
    "420s4ssim": {"speed": 4, "subsampling": "4:2:0", "advanced": {"tune": "ssim"}},
    "420s4sharp": {"speed": 4, "subsampling": "4:2:0", "advanced": {"sharpness": "2"}},
}


def metrics(a: np.ndarray, b: np.ndarray) -> dict:
    return dict(psnr=round(float(psnr(a, b)), 3), msssim=round(float(ms_ssim(a, b)), 4),
                lpips=round(float(lpips(a, b)), 4))


def avif_enc(img: np.ndarray, q: int, opts: dict) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="AVIF", quality=q, **opts)
    return buf.getvalue()


def avif_at(img: np.ndarray, budget: int, opts: dict) -> tuple[bytes, int] | None:
    """The largest-quality AVIF of ``img`` with ``opts`` that fits ``budget`` bytes, and its quality
    (None: none)."""
    lo, hi, best = 0, 100, None
    while lo <= hi:
        mid = (lo + hi) // 2
        data = avif_enc(img, mid, opts)
        if len(data) <= budget:
            best, lo = (data, mid), mid + 1
        else:
            hi = mid - 1
    return best


def pick_photos(n: int, seed: int) -> list[Path]:
    heldout = {w.path for w in heldout_windows(64)}  # the RD bench's second set: keep out
    photos = sorted(p for d in ("urban100_x2", "imagenet_samples", "bsds500")
                    for p in (train_dir() / d).glob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    photos = [p for p in photos if p not in heldout]
    random.Random(seed).shuffle(photos)
    out = []
    for p in photos:
        with Image.open(p) as im:
            if max(im.size) >= 480:
                out.append(p)
        if len(out) == n:
            break
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--bpp", default="0.5")
    ap.add_argument("--shares", default="0.25,0.3,0.35,0.4,0.5")
    ap.add_argument("--variants", default="420s4,444s4,420s2")
    ap.add_argument("--variant-shares", default="0.3,0.4",
                    help="shares at which the non-default variants are tried")
    ap.add_argument("--latent-bpp", default="",
                    help="instead of --shares: latent bits per pixel (share = this / bpp; every variant)")
    ap.add_argument("--refit", action="store_true",
                    help="also spend the bytes the residual left unused on the latent (`refit_base`)")
    ap.add_argument("--out", type=Path, default=Path("/tmp/residual_settings.json"))
    args = ap.parse_args()
    net = get_model("taesd")
    rows = []
    for p in pick_photos(args.n, args.seed):
        img = Image.open(p).convert("RGB")
        s = 768 / max(img.size)
        if s < 1:
            img = img.resize((round(img.width * s), round(img.height * s)), Image.LANCZOS)
        rgb = np.asarray(img)
        h, w = rgb.shape[:2]
        session = EncodeSession(net, rgb, "default")
        for bpp in [float(b) for b in args.bpp.split(",")]:
            B = bpp_to_bytes(bpp, w, h)
            row: dict = dict(photo=f"{p.parent.name}/{p.name}", w=w, h=h, bpp=bpp, budget=B)
            t = time.time()
            plain = encode_at_budget(session, B, None, check_faces=False)
            plain_rgb = decode_rgb(plain.data, model=net, max_pixels=None)
            row["plain"] = metrics(rgb, plain_rgb) | dict(bytes=len(plain.data))
            shares = [float(x) for x in args.shares.split(",")]
            if args.latent_bpp:  # shares that put the latent at these bits per pixel
                lbs = [float(x) for x in args.latent_bpp.split(",")]
                shares = [round(lb / bpp, 4) for lb in lbs if lb / bpp < 0.8]
            for f in shares:
                base = encode_at_budget(session, int(f * B), None, check_faces=False)
                dec = decode_rgb(base.data, model=net, max_pixels=None)
                r = residuallayer.residual_image(rgb, dec)
                every = args.latent_bpp or f"{f:g}" in args.variant_shares.split(",")
                names = args.variants.split(",") if every else ["420s4"]
                for name in names:
                    t1 = time.time()
                    found = avif_at(r, B - len(base.data) - FRAMING, VARIANTS[name])
                    if found is None:
                        continue
                    data, q = found
                    res = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
                    out = residuallayer.add(dec, res)
                    row[f"{f:g}_{name}"] = metrics(rgb, out) | dict(
                        base_bytes=len(base.data), res_bytes=len(data), q=q,
                        avif_s=round(time.time() - t1, 1))
                    if args.refit and name == "420s4":
                        refit = refit_base(session, net, rgb, B, len(data), q, VARIANTS[name])
                        if refit is not None:
                            row[f"{f:g}_refit"] = refit
            row["s"] = round(time.time() - t, 1)
            print(json.dumps(row), flush=True)
            rows.append(row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1))


def refit_base(session: EncodeSession, net, rgb: np.ndarray, B: int, res_bytes: int, q: int,
               opts: dict) -> dict | None:
    """Spend the bytes the residual's quality step left unused on the latent: the guarded latent at
    ``B − res_bytes − FRAMING``, then its residual at quality ``q`` (one step lower while it does not fit)."""
    base = encode_at_budget(session, B - res_bytes - FRAMING, None, check_faces=False)
    dec = decode_rgb(base.data, model=net, max_pixels=None)
    r = residuallayer.residual_image(rgb, dec)
    for qq in (q, q - 1, q - 2):
        data = avif_enc(r, qq, opts)
        if len(data) <= B - len(base.data) - FRAMING:
            res = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
            return metrics(rgb, residuallayer.add(dec, res)) | dict(
                base_bytes=len(base.data), res_bytes=len(data), q=qq)
    return None


if __name__ == "__main__":
    main()
