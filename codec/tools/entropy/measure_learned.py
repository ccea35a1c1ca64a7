"""Learned entropy coder vs the older coders: ``python -m codec.tools.entropy.measure_learned``.

For each image (the first ``--limit`` Kodak images, or with ``--set heldout`` the last training
photos at ≤ 768 px) the ``default`` tuned encoder's latent — what the codec really quantizes — is
quantized per level count with the codec's per-file quantizer (`codec.quant.params_for_latent`,
no RDO) and coded with every previous coder (raw, ctx, lzma, webp, jxl; "best" = the smallest,
what the encoder keeps today) and with ``learned``. Both round trips are checked. Prints a
Markdown table: bpp of the best old coder and of learned, the mean per-image saving, how many
images learned wins, CPU seconds (encode/decode) of ctx and learned. Kodak is test data only:
nothing here feeds back into training.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from codec import entropy
from codec.entropy.learned import LearnedCoder, load_weights
from codec.quant import params_for_latent, quantize
from codec.resources import kodak_dir, train_dir

OLD = ("raw", "ctx", "lzma", "webp", "jxl")


def photos(which: str, limit: int) -> list:
    """Kodak (test), or the last ``limit`` training photos — never trained on: `train_entropy`
    holds out the crops of at least the last 60 photos."""
    from codec.tools.training.data import list_photos

    if which == "kodak":
        return sorted(p for p in kodak_dir().iterdir() if p.suffix.lower() == ".png")[:limit]
    return list_photos(train_dir())[-limit:]


def latents(which: str, limit: int) -> list[tuple[str, np.ndarray, int]]:
    import torch
    from PIL import Image

    from codec.encoder import rdo
    from codec.models.registry import get_model

    torch.set_num_threads(1)
    model = get_model("taesd", "cpu")
    enc = rdo.get_encoder("default", model)
    out = []
    for path in photos(which, limit):
        img = Image.open(path).convert("RGB")
        if max(img.size) > 768:  # held-out photos: Kodak-like size
            s = 768 / max(img.size)
            img = img.resize((round(img.width * s), round(img.height * s)), Image.Resampling.LANCZOS)
        rgb = np.asarray(img)
        rgb = rgb[: rgb.shape[0] // 8 * 8, : rgb.shape[1] // 8 * 8]
        if rgb.shape[0] > rgb.shape[1]:  # portrait Kodak images: same latent size either way
            rgb = rgb.transpose(1, 0, 2)
        x = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255
        with torch.inference_mode():
            z = enc(x)[0].float().numpy()
        out.append((path.name, z, rgb.shape[0] * rgb.shape[1]))
    return out


def cpu(fn):
    t0 = time.process_time()
    out = fn()
    return out, time.process_time() - t0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=8)
    ap.add_argument("--levels", default="3,6,10,32")
    ap.add_argument("--set", choices=("kodak", "heldout"), default="kodak")
    ap.add_argument("--weights", help="candidate weight file (held-out set only; not the shipped format)")
    args = ap.parse_args(argv)
    if args.weights:
        if args.set == "kodak":
            raise SystemExit("choose candidates on --set heldout, never on Kodak")
        entropy.CODERS[5] = LearnedCoder(load_weights(args.weights, check_hash=False))
    lats = latents(args.set, args.limit)
    print("| L | best old bpp | learned bpp | mean saving | learned smaller | ctx enc/dec s "
          "| learned enc/dec s |")
    print("|---|---|---|---|---|---|---|")
    for levels in (int(v) for v in args.levels.split(",")):
        best_b, learned_b, savings, wins = 0, 0, [], 0
        t_ctx, t_lrn = np.zeros(2), np.zeros(2)
        for _name, z, pixels in lats:
            sym = quantize(z, params_for_latent(z, levels)).astype(np.uint16)
            old = entropy.encode_all(sym, levels, OLD)
            best = min(len(v) for v in old.values())
            lrn, te = cpu(lambda sym=sym, lv=levels: entropy.encode_all(sym, lv, ["learned"])[5])
            back, td = cpu(lambda p=lrn, sym=sym, lv=levels: entropy.decode_symbols(5, p, sym.shape, lv))
            assert np.array_equal(back, sym), "learned round trip failed"
            t_lrn += (te, td)
            ctx_enc, ce = cpu(lambda sym=sym, lv=levels: entropy.encode_all(sym, lv, ["ctx"])[1])
            _, cd = cpu(lambda p=ctx_enc, sym=sym, lv=levels: entropy.decode_symbols(1, p, sym.shape, lv))
            t_ctx += (ce, cd)
            best_b += best * 8 / pixels
            learned_b += len(lrn) * 8 / pixels
            savings.append(1 - len(lrn) / best)
            wins += len(lrn) < best
        n = len(lats)
        print(f"| {levels} | {best_b / n:.4f} | {learned_b / n:.4f} | {100 * np.mean(savings):+.2f} % "
              f"| {wins}/{n} | {t_ctx[0] / n:.3f} / {t_ctx[1] / n:.3f} "
              f"| {t_lrn[0] / n:.3f} / {t_lrn[1] / n:.3f} |",
              flush=True)


if __name__ == "__main__":
    main()
