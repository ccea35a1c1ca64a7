"""Probe (issue 14, training photos only): every resolution scale's largest fitting rung, measured.

Would the rate control's measured choice reach a higher MS-SSIM with another scale, or with MS-SSIM
weighted more against LPIPS? Per photo and budget (0.10/0.15 bpp): scales 1.0, 0.75, 0.5 at their
largest fitting level count, the decode's MS-SSIM and LPIPS and the calibrated expected score
(docs/bench/rd/msssim_gap/README.md).

    PYTHONPATH=. .venv/bin/python scripts/probe_scale_choice.py --photos 8 --out out.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from codec.encoder.ratecontrol import Setting, _largest_fitting_levels, _score, levels_for
from codec.encoder.session import EncodeSession
from codec.metrics.lpips import lpips
from codec.metrics.msssim import ms_ssim
from codec.models.registry import get_model
from codec.options import bpp_to_bytes

sys.path.insert(0, str(Path(__file__).resolve().parent))
from probe_colour_correction import training_photos

SCALES = (1.0, 0.75, 0.5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--photos", type=int, default=8)
    ap.add_argument("--seed", type=int, default=23)
    ap.add_argument("--bpp", default="0.10,0.15")
    ap.add_argument("--out", default="scale_choice.json")
    args = ap.parse_args()
    net = get_model("taesd")
    rows = []
    for name, rgb in training_photos(args.photos, args.seed):
        session = EncodeSession(net, rgb, "default")
        for bpp in (float(b) for b in args.bpp.split(",")):
            budget = bpp_to_bytes(bpp, rgb.shape[1], rgb.shape[0])
            cands = []
            for scale in SCALES:
                def size(q: int, s: float = scale, sess: EncodeSession = session) -> int:
                    return len(sess.stream(Setting(s, q), search=True))

                q = _largest_fitting_levels(size, budget, levels_for(scale))
                if q is None:
                    continue
                dec = session.reconstruction(Setting(scale, q), denoise=session.latent_filter() is not None)
                cands.append(dict(scale=scale, levels=q, expected=round(_score(scale, q), 4),
                                  ms=round(float(ms_ssim(rgb, dec)), 4), lp=round(float(lpips(rgb, dec)), 4)))
            row = dict(photo=name, bpp=bpp, cands=cands)
            print(json.dumps(row), flush=True)
            rows.append(row)
    Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
