"""Train the learned entropy model (`codec.entropy.learned`, coder id 5) on training-photo latents.

Data: the cached latents of the training pack (`latents.build_latents`, the ``default`` encoder's
output for one 256-px crop of each of the 1,100 photos in ``../shared/data/train``; never Kodak),
each quantized with the codec's per-file quantizer (`codec.quant.params_for_latent`) at level
counts drawn from the rate control's `LEVELS`. The last ``--holdout`` crops are held out.

The model sees exactly the coder's inputs (built with the coder's own functions) and minimises the
bits of the discretized `learned.cdf` distribution; the export quantizes the weights to the coder's fixed
point, and the held-out evaluation codes with the real coder (integer inference, real bytes)
next to ``ctx``.

    make train-entropy   # = python -m codec.tools.training.train_entropy
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from codec import quant
from codec.encoder.ratecontrol import LEVELS
from codec.entropy import context, learned
from codec.tools.training.data import PackSpec, build_crops, cache_dir


def load_latents(spec: PackSpec) -> np.ndarray:
    path = cache_dir() / f"{spec.name()}_lat_taesd_default.pt"
    if path.is_file():
        return torch.load(path, weights_only=True).numpy()
    from codec.models.registry import get_model
    from codec.tools.training.latents import build_latents

    return build_latents(spec, build_crops(spec), get_model("taesd", "cpu")).numpy()


def symbols_of(z: np.ndarray, levels: int) -> np.ndarray:
    return quant.quantize(z, quant.params_for_latent(z, levels)).astype(np.int64)


def crop_rows(sym: np.ndarray, levels: int) -> tuple[np.ndarray, np.ndarray]:
    """Coder inputs (n, N_INPUTS) in fixed point and targets (n,) of every symbol of one latent."""
    c_total, h, w = sym.shape
    nb, _, _, windows = learned.geometry(h, w)
    planes: list[np.ndarray] = []
    xs, ys = [], []
    for c in range(c_total):
        plane = np.concatenate([learned.to_fixed(sym[c].ravel(), levels), [0.0]])
        xs.append(np.concatenate([plane[nb], learned.rest_inputs(planes, c, levels, windows)], axis=1))
        ys.append(sym[c].ravel())
        planes.append(plane[:-1])
    return np.concatenate(xs), np.concatenate(ys)


def build_rows(lat: np.ndarray, draws: int, keep: float, rng: np.random.Generator):
    xs, ys, ls = [], [], []
    for z in lat:
        for _ in range(draws):
            levels = int(rng.choice(LEVELS))
            x, y = crop_rows(symbols_of(z, levels), levels)
            sel = rng.random(len(y)) < keep
            xs.append(x[sel].astype(np.float32) / learned.FP)
            ys.append(y[sel])
            ls.append(np.full(sel.sum(), levels))
    return (torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys)).float(),
            torch.from_numpy(np.concatenate(ls)).float())


class Net(torch.nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.l1 = torch.nn.Linear(learned.N_INPUTS, hidden)
        self.l2 = torch.nn.Linear(hidden, hidden)
        self.l3 = torch.nn.Linear(hidden, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l3(torch.relu(self.l2(torch.relu(self.l1(x)))))


def cdf(x: torch.Tensor) -> torch.Tensor:
    """`codec.entropy.learned.cdf` in torch."""
    x2 = x * x
    return 0.5 + 0.5 * x / torch.sqrt(torch.sqrt(1.0 + x2 * x2))


def bits(out: torch.Tensor, y: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Per-symbol bits of the discretized `learned.cdf` (out[:, 0]: mean in the normalized domain,
    out[:, 1]: log2 σ in symbols)."""
    lm1 = levels - 1
    mu = (out[:, 0] + 1.0) * lm1 / 2
    sigma = torch.exp2(out[:, 1].clamp(learned.SIGMA_MIN_K / 8, learned.SIGMA_MAX_K / 8))
    hi = torch.where(y >= lm1, torch.ones_like(y), cdf((y + 0.5 - mu) / sigma))
    lo = torch.where(y <= 0, torch.zeros_like(y), cdf((y - 0.5 - mu) / sigma))
    return -torch.log2((hi - lo).clamp_min(2.0**-learned.COUNT_BITS))


def export(net: Net) -> learned.Weights:
    sd = {k: v.detach().double().numpy() for k, v in net.state_dict().items()}
    tensors = {"w1": sd["l1.weight"].T, "b1": sd["l1.bias"], "w2": sd["l2.weight"].T, "b2": sd["l2.bias"],
               "w3": sd["l3.weight"].T, "b3": sd["l3.bias"].copy()}
    tensors["b3"][1] += 0.5 / learned.SIGMA_STEPS  # the coder floors the σ index: centre it
    return learned.Weights.from_float(tensors)


def evaluate(wt: learned.Weights, lat: np.ndarray, levels_list: list[int]) -> dict[int, tuple[int, int]]:
    """Real payload bytes (learned, ctx) per level count, summed over ``lat``."""
    coder, ctx = learned.LearnedCoder(wt), context.ContextCoder()
    out = {}
    for levels in levels_list:
        a = b = 0
        for z in lat:
            sym = symbols_of(z, levels).astype(np.uint16)
            payload = coder.encode(sym, levels)
            assert np.array_equal(coder.decode(payload, sym.shape, levels), sym)
            a += len(payload)
            b += len(ctx.encode(sym, levels))
        out[levels] = (a, b)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--time-limit", type=float, default=0.0, help="seconds (0: no limit, --steps decides)")
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--draws", type=int, default=3, help="level draws per crop")
    ap.add_argument("--keep", type=float, default=0.35, help="fraction of positions kept per draw")
    ap.add_argument("--holdout", type=int, default=60)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(learned.WEIGHTS_FILE))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    lat = load_latents(PackSpec(per_image=1))
    train, held = lat[: -args.holdout], lat[-args.holdout :]
    t0 = time.perf_counter()
    x, y, lv = build_rows(train, args.draws, args.keep, rng)
    print(f"[entropy] {len(y)} rows from {len(train)} crops ({time.perf_counter() - t0:.0f} s)",
          file=sys.stderr)

    net = Net(args.hidden)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    t0 = time.perf_counter()
    step = 0
    avg = None
    while step < args.steps and (args.time_limit <= 0 or time.perf_counter() - t0 < args.time_limit):
        frac = step / args.steps
        for g in opt.param_groups:
            g["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * frac))
        idx = torch.randint(0, len(y), (args.batch,))
        loss = bits(net(x[idx]), y[idx], lv[idx]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        avg = loss.item() if avg is None else 0.98 * avg + 0.02 * loss.item()
        step += 1
        if step % 250 == 0:
            print(f"[entropy] step {step} bits/symbol {avg:.4f} ({time.perf_counter() - t0:.0f} s)",
                  file=sys.stderr)

    wt = export(net)
    from safetensors.numpy import save

    meta = {"coder_id": str(learned.CODER_ID), "steps": str(step), "seed": str(args.seed),
            "hidden": str(args.hidden),
            "data": "training-cache crops_c256_k1_s512_seed0 (../shared/data/train)"}
    blob = save(wt.tensors(), metadata=meta)
    Path(args.out).write_bytes(blob)
    print(f"[entropy] wrote {args.out} ({len(blob)} B, weights digest {wt.digest()}; "
          f"the coder expects {learned.WEIGHTS_SHA256})")

    # evaluate the file as written (what ships), not the in-memory export
    res = evaluate(learned.load_weights(args.out, check_hash=False), held, [4, 8, 16, 32])
    for levels, (a, b) in res.items():
        print(f"[entropy] held-out L={levels}: learned {a} B, ctx {b} B, "
              f"saving {100 * (1 - a / b):.2f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
