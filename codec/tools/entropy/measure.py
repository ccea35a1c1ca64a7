"""Measure every entropy coder on real latents: ``python -m codec.tools.entropy.measure``.

Encodes each image with a registry model (default taesd), quantizes the latent at the given level
counts — with the default per-channel range (`codec.quant.params_for_latent`) and, for comparison
with the numbers in the codec issue, with the fixed range [-3, 3] — runs every coder, checks the
round trip, and prints a Markdown table of bits per image pixel plus encode/decode CPU seconds.
Also reports the ideal order-0 entropy (per image and channel, table cost not counted).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from codec import entropy
from codec.quant import QuantParams, params_for_latent, quantize


def order0_bits(symbols: np.ndarray, levels: int) -> float:
    bits = 0.0
    for plane in symbols:
        counts = np.bincount(plane.ravel(), minlength=levels)
        nz = counts[counts > 0]
        bits += float(-(nz * np.log2(nz / nz.sum())).sum())
    return bits


def latents(images: list[Path], model_name: str) -> list[tuple[str, np.ndarray, int]]:
    import torch
    from PIL import Image

    from codec.models.registry import get_model

    torch.set_num_threads(2)
    model = get_model(model_name)
    out = []
    for path in images:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        h, w = rgb.shape[0] // 8 * 8, rgb.shape[1] // 8 * 8
        x = torch.from_numpy(rgb[:h, :w].copy()).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            z = model.encode(x)[0].float().cpu().numpy()
        out.append((path.name, z, h * w))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=Path, help="folder of images (default: the Kodak set, codec.resources)")
    ap.add_argument("--levels", default="4,8,12,16")
    ap.add_argument("--model", default="taesd")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--ranges", default="default,fixed3", help="default (per-channel quantiles), fixed3")
    args = ap.parse_args(argv)
    if args.images is None:
        from codec.resources import kodak_dir

        args.images = kodak_dir()
    paths = sorted(p for p in args.images.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if args.limit:
        paths = paths[: args.limit]
    data = latents(paths, args.model)
    names = [c.name for c in entropy.CODERS.values()]
    print(f"{len(data)} images from {args.images}, model {args.model}; bpp = bits / image pixels\n")
    print("| range | L | " + " | ".join(names) + " | best | order-0 ideal | ctx enc s | ctx dec s |")
    print("|---|---|" + "---|" * (len(names) + 4))
    for rng in args.ranges.split(","):
        for levels in (int(v) for v in args.levels.split(",")):
            bits = {n: 0.0 for n in [*names, "best", "order0"]}
            pixels = 0
            t_enc = t_dec = 0.0
            for _name, z, npx in data:
                if rng == "fixed3":
                    qp = QuantParams(levels, (-3.0,) * z.shape[0], (3.0,) * z.shape[0])
                else:
                    qp = params_for_latent(z, levels)
                sym = quantize(z, qp)
                pixels += npx
                payloads = {}
                for cid, coder in entropy.CODERS.items():
                    t = time.process_time()
                    try:
                        payloads[cid] = coder.encode(sym, levels)
                    except entropy.CoderUnsuitable:
                        continue
                    if cid == 1:
                        t_enc += time.process_time() - t
                    t = time.process_time()
                    back = entropy.decode_symbols(cid, payloads[cid], sym.shape, levels)
                    if cid == 1:
                        t_dec += time.process_time() - t
                    if not np.array_equal(back, sym):
                        raise SystemExit(f"round trip failed: {coder.name} at L={levels}")
                    bits[coder.name] += 8 * len(payloads[cid])
                bits["best"] += 8 * min(len(p) for p in payloads.values())
                bits["order0"] += order0_bits(sym, levels)
            row = [f"{bits[n] / pixels:.4f}" for n in [*names, "best", "order0"]]
            print(f"| {rng} | {levels} | " + " | ".join(row)
                  + f" | {t_enc / len(data):.3f} | {t_dec / len(data):.3f} |", flush=True)


if __name__ == "__main__":
    main()
