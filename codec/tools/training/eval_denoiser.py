"""Kodak check of the latent denoiser at fixed quantizer settings (test only: never tuned on).

    python -m codec.tools.training.eval_denoiser --limit 6 --settings 1.0:4,1.0:6,1.0:8,1.0:12 --out F.json

Per image and setting (scale:levels): the ``default`` encoder's latent at that scale, quantized as the
codec does (`codec.encoder.session.quant_params`), decoded by the stock decoder with plain
dequantization and after the denoiser (`codec.models.denoiser`), both resized to the display size;
PSNR / MS-SSIM / LPIPS against the original, the file's bpp (fast entropy coders, no guard) and the
denoiser's and decoder's seconds. Prints the means per setting and the share of images where the
denoised decode wins on MS-SSIM − LPIPS (the encoder's per-file choice).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from codec.decoder import latent_to_rgb
from codec.encoder import ratecontrol
from codec.encoder.rdo import encode_latent
from codec.encoder.session import quant_params
from codec.entropy import FAST_CODERS, encode_symbols
from codec.imageio import resize_rgb
from codec.metrics import lpips, ms_ssim, psnr
from codec.models import denoiser
from codec.models.registry import get_model
from codec.models.specs import latent_filter_for
from codec.quant import dequantize, quantize
from codec.tools.training.evaluate import load_kodak


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--limit", type=int, default=6)
    p.add_argument("--settings", default="1.0:4,1.0:6,1.0:8,1.0:12,0.75:8,0.5:12")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = get_model("taesd", "cpu")
    spec = latent_filter_for("taesd")
    if spec is None:
        raise SystemExit("no latent denoiser in codec/zoo")
    net = denoiser.get_denoiser(spec.filter_id)
    pairs = [s.split(":") for s in args.settings.split(",")]
    settings = [ratecontrol.Setting(float(sc), int(lv)) for sc, lv in pairs]
    rows = []
    for name, rgb in load_kodak(args.limit):
        h, w = rgb.shape[:2]
        latents: dict[float, np.ndarray] = {}
        for st in settings:
            cw, ch = st.coded_size(w, h)
            if st.scale not in latents:
                coded = rgb if (cw, ch) == (w, h) else resize_rgb(rgb, cw, ch)
                latents[st.scale] = encode_latent(model, coded, "default")
            lat = latents[st.scale]
            qp = quant_params(lat, st.levels)
            sym = quantize(lat, qp)
            nbytes = len(encode_symbols(sym, qp.levels, coders=FAST_CODERS)[1]) + 40
            zq = dequantize(sym, qp)
            t0 = time.perf_counter()
            zd = denoiser.apply(net, zq, qp)
            t_dn = time.perf_counter() - t0
            row = {"image": name, "scale": st.scale, "levels": st.levels, "bpp": 8 * nbytes / (w * h),
                   "denoise_s": t_dn}
            for route, z in (("stock", zq), ("dn", zd)):
                t0 = time.perf_counter()
                out = latent_to_rgb(model, z, cw, ch, w, h)
                row[f"{route}_decode_s"] = time.perf_counter() - t0
                row[f"{route}_psnr"], row[f"{route}_msssim"] = psnr(rgb, out), ms_ssim(rgb, out)
                row[f"{route}_lpips"] = lpips(rgb, out)
            print(f"{name} {st.scale}:{st.levels} bpp {row['bpp']:.3f} psnr {row['stock_psnr']:.2f}→"
                  f"{row['dn_psnr']:.2f} msssim {row['stock_msssim']:.4f}→{row['dn_msssim']:.4f} lpips "
                  f"{row['stock_lpips']:.4f}→{row['dn_lpips']:.4f} dn {t_dn:.3f}s", file=sys.stderr)
            rows.append(row)
    print("| scale:L | n | bpp | PSNR stock → dn | MS-SSIM stock → dn | LPIPS stock → dn | dn wins "
          "| dn s | dec s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for st in settings:
        sel = [r for r in rows if r["scale"] == st.scale and r["levels"] == st.levels]

        def m(k: str, sel: list = sel) -> float:
            return float(np.mean([r[k] for r in sel]))

        wins = sum(r["dn_msssim"] - r["dn_lpips"] > r["stock_msssim"] - r["stock_lpips"] for r in sel)
        print(f"| {st.scale}:{st.levels} | {len(sel)} | {m('bpp'):.4f} | "
              f"{m('stock_psnr'):.2f} → {m('dn_psnr'):.2f} | "
              f"{m('stock_msssim'):.4f} → {m('dn_msssim'):.4f} | "
              f"{m('stock_lpips'):.4f} → {m('dn_lpips'):.4f} | "
              f"{wins}/{len(sel)} | {m('denoise_s'):.3f} | {m('stock_decode_s'):.2f} |")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
