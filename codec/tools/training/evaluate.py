"""Kodak evaluation of the RDO routes at identical quantizer settings.

    python -m codec.tools.training.evaluate --limit 8 --levels 6,8,12,16 --routes stock,tuned --out FILE.json

Routes: ``stock`` (stock encoder), ``tuned`` (``codec/zoo`` weights, or ``tuned=PATH``),
``ste=N`` (N straight-through Adam steps from the stock latent), ``tste=N`` (from the tuned latent).
Optionally ``--half`` encodes the image downscaled 2× and upsamples the decode (very low rates).

Quantizer: `codec.quant` with the range from ``params_for_latent`` (the codec's default: per-channel
latent quantiles) or ``--range fixed`` ([-3, 3]). Per image × route × levels: bpp (``--coder
entropy``: ``codec.entropy.encode_symbols`` over its fast coders, as the codec does; ``--coder
lzma``: lzma of the uint8 symbols, the issue's proxy), PSNR, MS-SSIM,
LPIPS-alex (``codec.metrics``) and the encoder seconds (route's encode incl. refinement).
Prints a means table; writes all rows as JSON.
"""

from __future__ import annotations

import argparse
import json
import lzma
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from codec.encoder import rdo
from codec.metrics import lpips, ms_ssim, psnr
from codec.metrics.losses import LossWeights, RdoLoss
from codec.quant import QuantParams, dequantize, params_for_latent, quantize
from codec.weights import kodak_dir


def load_kodak(limit: int | None, names: list[str] | None = None) -> list[tuple[str, np.ndarray]]:
    d = kodak_dir()
    files = sorted(d.glob("kodim*.png"))
    if names:
        files = [f for f in files if f.stem in names]
    files = files[:limit] if limit else files
    return [(f.stem, np.asarray(Image.open(f).convert("RGB"))) for f in files]


def to_tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a.copy()).permute(2, 0, 1).unsqueeze(0).float() / 255.0


def to_uint8(x: torch.Tensor) -> np.ndarray:
    return (x[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


def symbol_bytes(sym: np.ndarray, levels: int, coder: str) -> int:
    if coder == "entropy":
        from codec.entropy import FAST_CODERS, encode_symbols

        return len(encode_symbols(sym, levels, coders=FAST_CODERS)[1])
    return len(lzma.compress(sym.astype(np.uint8).tobytes(), preset=9 | lzma.PRESET_EXTREME))


def quant_params(z: torch.Tensor, levels: int, args) -> QuantParams:
    if args.range == "fixed":
        c = z.shape[1]
        return QuantParams(levels, (-3.0,) * c, (3.0,) * c, args.domain)
    return params_for_latent(z[0].numpy(), levels, domain=args.domain)


def encode_route(route: str, model, x: torch.Tensor, levels: int, args) -> torch.Tensor:
    name, _, arg = route.partition("=")
    if name == "stock":
        return model.encode(x)
    if name == "tuned":
        if arg:
            return rdo.SequentialEncoder(rdo.load_tuned_layers(model, arg), model.device, model.dtype)(x)
        return rdo.get_encoder("default", model)(x)
    if name in ("ste", "tste"):
        z0 = model.encode(x) if name == "ste" else rdo.get_encoder("default", model)(x)
        qp = quant_params(z0, levels, args)
        loss = RdoLoss(LossWeights(1.0, args.w_msssim, args.w_lpips))
        z, hist = rdo.ste_refine(model, x, z0, qp, steps=int(arg), lr=args.lr, loss=loss,
                                 autocast=not args.fp32)
        print(f"    {route} L={levels}: loss {hist[0]:.5f} → {min(hist):.5f}", file=sys.stderr)
        return z
    raise SystemExit(f"unknown route {route!r}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--limit", type=int, default=8)
    p.add_argument("--names", default="", help="comma list of kodim names (overrides order)")
    p.add_argument("--levels", default="6,8,12,16")
    p.add_argument("--routes", default="stock,tuned")
    p.add_argument("--range", choices=("quantile", "fixed"), default="quantile",
                   help="codec.quant.params_for_latent (default) or a fixed [-3, 3]")
    p.add_argument("--domain", choices=("raw", "tanh"), default="raw")
    p.add_argument("--half", action="store_true", help="encode at half resolution, upsample the decode")
    p.add_argument("--coder", choices=("lzma", "entropy"), default="entropy")
    p.add_argument("--lr", type=float, default=rdo.MAX_DEFAULT_LR)
    p.add_argument("--w-msssim", type=float, default=0.1)
    p.add_argument("--w-lpips", type=float, default=0.05)
    p.add_argument("--fp32", action="store_true", help="no bf16 autocast in iterative routes")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--targets", default="", help="e.g. 0.05,0.10,0.15: budget-matched means")
    p.add_argument("--summarize", nargs="*", default=None, help="only print tables of these JSON files")
    p.add_argument("--out", default="")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.summarize is not None:
        rows = [r for f in args.summarize for r in json.loads(Path(f).read_text())]
        print_table(rows)
        if args.targets:
            at_budgets(rows, [float(t) for t in args.targets.split(",")])
        return
    from codec.models.registry import get_model

    model = get_model("taesd", "cpu")
    levels = [int(v) for v in args.levels.split(",")]
    routes = args.routes.split(",")
    rows = []
    for name, img in load_kodak(args.limit, [n for n in args.names.split(",") if n]):
        h, w = img.shape[:2]
        x = to_tensor(img)
        if args.half:
            x = torch.nn.functional.interpolate(x, scale_factor=0.5, mode="bicubic", antialias=True,
                                               align_corners=False).clamp(0, 1)
        for route in routes:
            iterative = route.startswith(("ste", "tste"))
            z_cached, enc_s = None, 0.0
            for lv in levels:
                if z_cached is None or iterative:
                    t0 = time.perf_counter()
                    z_cached = encode_route(route, model, x, lv, args)
                    enc_s = time.perf_counter() - t0
                qp = quant_params(z_cached, lv, args)
                sym = quantize(z_cached[0].numpy(), qp)
                nbytes = symbol_bytes(sym, lv, args.coder)
                with torch.no_grad():
                    y = model.decode(torch.from_numpy(dequantize(sym, qp))[None])
                    if args.half:
                        y = torch.nn.functional.interpolate(y, size=(h, w), mode="bicubic")
                rec = to_uint8(y)
                row = {"image": name, "route": route, "levels": lv, "bytes": nbytes,
                       "bpp": 8 * nbytes / (h * w), "psnr": psnr(img, rec), "ms_ssim": ms_ssim(img, rec),
                       "lpips": lpips(img, rec), "encode_s": enc_s}
                rows.append(row)
                print(f"{name} {route:>10} L={lv:<3} bpp {row['bpp']:.4f} psnr {row['psnr']:.2f} "
                      f"msssim {row['ms_ssim']:.4f} lpips {row['lpips']:.4f} enc {enc_s:.1f}s",
                      file=sys.stderr)
    print_table(rows)
    if args.targets:
        at_budgets(rows, [float(t) for t in args.targets.split(",")])
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(rows, indent=1))


def at_budgets(rows: list[dict], targets: list[float]) -> None:
    """Per image and route: the largest level count whose bpp fits each target (like the rate
    control restricted to this scale); prints means over the images (n = images that fit)."""
    print("| route | target bpp | n fit / all | mean L | bpp | PSNR | MS-SSIM | LPIPS |")
    print("|---|---|---|---|---|---|---|---|")
    for route in sorted({r["route"] for r in rows}):
        images = sorted({r["image"] for r in rows if r["route"] == route})
        for t in targets:
            picked = []
            for im in images:
                fits = [r for r in rows if r["route"] == route and r["image"] == im and r["bpp"] <= t]
                if fits:
                    picked.append(max(fits, key=lambda r: r["levels"]))
            if not picked:
                print(f"| {route} | {t} | 0/{len(images)} | – | – | – | – | – |")
                continue
            keys = ("levels", "bpp", "psnr", "ms_ssim", "lpips")
            m = {k: float(np.mean([r[k] for r in picked])) for k in keys}
            print(f"| {route} | {t} | {len(picked)}/{len(images)} | {m['levels']:.1f} | {m['bpp']:.4f} | "
                  f"{m['psnr']:.2f} | {m['ms_ssim']:.4f} | {m['lpips']:.4f} |")


def print_table(rows: list[dict]) -> None:
    keys = sorted({(r["route"], r["levels"]) for r in rows}, key=lambda k: (k[0], k[1]))
    print("| route | L | n | bpp | PSNR | MS-SSIM | LPIPS | enc s |")
    print("|---|---|---|---|---|---|---|---|")
    for route, lv in keys:
        sel = [r for r in rows if r["route"] == route and r["levels"] == lv]
        m = {k: float(np.mean([r[k] for r in sel])) for k in ("bpp", "psnr", "ms_ssim", "lpips", "encode_s")}
        print(f"| {route} | {lv} | {len(sel)} | {m['bpp']:.4f} | {m['psnr']:.2f} | {m['ms_ssim']:.4f} | "
              f"{m['lpips']:.4f} | {m['encode_s']:.1f} |")


if __name__ == "__main__":
    main()
