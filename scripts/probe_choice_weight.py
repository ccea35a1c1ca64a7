"""Probe (issue 14, MS-SSIM at 0.05–0.15 bpp): does the encoder's measured choice between fitting
settings leave MS-SSIM on the table?

`EncodeSession.pick_measured` decodes the best fitting setting of up to `MEASURED_CHOICE_CANDIDATES`
resolution scales and keeps the best MS-SSIM − LPIPS. This probe measures MS-SSIM and LPIPS of *every*
fitting candidate (the path the file would use: denoiser + tuned decoder) on training photos (never
Kodak, none of the RD bench's held-out photos; whole photos shrunk to a 768-px longer side), so other
criteria (w·MS-SSIM − LPIPS) can be compared offline on the same rows. No guard, no faces: the choice
alone.

    PYTHONPATH=. .venv/bin/python scripts/probe_choice_weight.py --n 16 --out docs/bench/choice/probe.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from probe_residual_settings import pick_photos

from codec.encoder import ratecontrol
from codec.encoder.session import EncodeSession
from codec.errors import BudgetError
from codec.metrics import lpips, ms_ssim, psnr
from codec.models.registry import get_model
from codec.options import bpp_to_bytes


def load(path: Path, longer: int = 768) -> np.ndarray:
    with Image.open(path) as im:
        im = im.convert("RGB")
        f = longer / max(im.size)
        if f < 1:
            im = im.resize((round(im.width * f), round(im.height * f)), Image.LANCZOS)
        return np.asarray(im)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--seed", type=int, default=23)
    ap.add_argument("--skip", type=int, default=0, help="skip the first photos of the shuffled list")
    ap.add_argument("--bpp", default="0.05,0.1,0.15")
    ap.add_argument("--every-scale", action="store_true",
                    help="the best fitting rung of every scale <= 1 (the rate control prunes scales whose "
                         "calibrated best cannot beat a candidate already found)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    model = get_model("taesd")
    photos = pick_photos(args.n + args.skip, args.seed)[args.skip:]
    with open(args.out, "a") as out:
        for path in photos:
            rgb = load(path)
            h, w = rgb.shape[:2]
            session = EncodeSession(model, rgb, "default")
            for bpp in (float(b) for b in args.bpp.split(",")):
                t0 = time.time()
                budget = bpp_to_bytes(bpp, w, h)
                size_of = lambda st, s=session: len(s.stream(st, search=True))  # noqa: E731
                if args.every_scale:
                    fitting = []
                    for scale in (sc for sc in session.search_scales if sc <= 1.0):
                        try:
                            fitting += ratecontrol.candidates(size_of, budget, scales=(scale,))
                        except BudgetError:
                            pass
                    fitting.sort(key=lambda st: ratecontrol._score(st.scale, st.levels), reverse=True)
                else:
                    fitting = ratecontrol.candidates(size_of, budget, scales=session.search_scales)
                rows = []
                for rank, st in enumerate(fitting):
                    dec = session.reconstruction(st, denoise=session.latent_filter() is not None)
                    rows.append(dict(rank=rank, scale=st.scale, levels=st.levels,
                                     bytes=len(session.stream(st, search=True)),
                                     psnr=round(float(psnr(rgb, dec)), 3),
                                     msssim=round(float(ms_ssim(rgb, dec)), 5),
                                     lpips=round(float(lpips(rgb, dec)), 5)))
                rec = dict(photo=f"{path.parent.name}/{path.name}", w=w, h=h, bpp=bpp, budget=budget,
                           candidates=rows, s=round(time.time() - t0, 1))
                out.write(json.dumps(rec) + "\n")
                out.flush()
                print(rec["photo"], bpp, [(r["scale"], r["levels"], r["msssim"], r["lpips"]) for r in rows],
                      flush=True)


if __name__ == "__main__":
    main()
