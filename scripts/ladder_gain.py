"""What the up-scales of the rate-control ladder buy (issue 14 item 3), measured on Kodak.

For each image and budget, the same EncodeSession (so the same latents) picks its setting twice:
with the old scales (`ratecontrol.SCALES`, ≤ 1.0) and with `ratecontrol.ALL_SCALES` (+ up-scales),
each by `ratecontrol.candidates` + the session's measured choice (as `codec.encode` does before
the fidelity guard). Both final streams are decoded with `codec.decode` (timed) and scored.
Results (and 256-px crops of both decodes) are cached in --out, so a rerun only adds what is missing.

    .venv/bin/python scripts/ladder_gain.py --images kodim01,kodim05,kodim23 --bpp 0.15,0.3,0.5,1.0
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--images", default="kodim01,kodim05,kodim23")
    ap.add_argument("--bpp", default="0.15,0.3,0.5,1.0")
    ap.add_argument("--effort", default="default")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "bench-out" / "ladder-gain")
    a = ap.parse_args()

    import torch

    torch.set_num_threads(a.threads)
    from PIL import Image

    import codec
    from codec.encoder import ratecontrol
    from codec.encoder.session import EncodeSession
    from codec.metrics import lpips, ms_ssim, psnr
    from codec.models.registry import get_model
    from codec.options import bpp_to_bytes
    from codec.tools.bench.plots import pick_crop
    from codec.weights import kodak_dir

    a.out.mkdir(parents=True, exist_ok=True)
    res_path = a.out / "results.json"
    res = json.loads(res_path.read_text()) if res_path.is_file() else {}
    model = get_model("taesd", device="cpu")
    for name in a.images.split(","):
        rgb = codec.load_image(kodak_dir() / f"{name}.png")
        h, w = rgb.shape[:2]
        x, y, s = pick_crop(rgb)
        session = EncodeSession(model, rgb, a.effort)
        for bpp in (float(b) for b in a.bpp.split(",")):
            for ladder, scales in (("old", ratecontrol.SCALES), ("new", ratecontrol.ALL_SCALES)):
                key = f"{name}@{bpp}/{ladder}"
                if key in res:
                    continue
                t0 = time.perf_counter()
                mb = bpp_to_bytes(bpp, w, h)
                def size_of(st: ratecontrol.Setting, se: EncodeSession = session) -> int:
                    return len(se.stream(st, search=True))

                fit = ratecontrol.candidates(size_of, mb, scales=scales)
                st = session.pick_measured(fit)
                data = session.stream(st)
                enc_s = time.perf_counter() - t0
                t1 = time.perf_counter()
                out = np.asarray(codec.decode(data))
                dec_s = time.perf_counter() - t1
                Image.fromarray(out[y:y + s, x:x + s]).save(a.out / f"{name}@{bpp}_{ladder}.png")
                res[key] = {"image": name, "bpp_target": bpp, "ladder": ladder, "scale": st.scale,
                            "levels": st.levels, "bytes": len(data), "bpp": 8 * len(data) / (w * h),
                            "psnr": psnr(rgb, out), "ms_ssim": ms_ssim(rgb, out), "lpips": lpips(rgb, out),
                            "encode_s": round(enc_s, 1), "decode_s": round(dec_s, 2),
                            "coded": list(st.coded_size(w, h))}
                res_path.write_text(json.dumps(res, indent=1))
                r = res[key]
                print(f"{key}: scale {st.scale} L{st.levels} {r['bpp']:.3f} bpp psnr {r['psnr']:.2f} "
                      f"ms-ssim {r['ms_ssim']:.4f} lpips {r['lpips']:.4f} dec {dec_s:.2f} s", flush=True)
        Image.fromarray(rgb[y:y + s, x:x + s]).save(a.out / f"{name}_original.png")


if __name__ == "__main__":
    main()
