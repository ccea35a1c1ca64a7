"""Train the latent denoiser (learned dequantization, `codec.models.denoiser`) for the frozen stock decoder.

    python -m codec.tools.training.train_denoiser [--stage1-time S] [--stage2-time S] ...
    make train-denoiser TRAIN_ARGS="..."

Defaults reproduce ``codec/zoo/taesd_latent_denoiser.safetensors`` (see codec/zoo/README.md):

1. data: one random 256-px crop per training photo (`codec.tools.training.data`, never Kodak) and the
   ``default`` (tuned) encoder's latent of each (`codec.tools.training.latents`, cached once);
   ``--holdout`` crops are never trained on and score the result;
2. quantization exactly as the codec does it (`codec.encoder.session.quant_params`: the crop latent's
   own per-channel quantile range, float16, centroid reconstruction offsets up to L=8), at a level
   count drawn per sample from ``--levels`` (the rate control's operating points);
3. stage 1 (cheap, no decoder): the denoised latent against the encoder's latent (MSE);
4. stage 2: through the FROZEN stock decoder (bfloat16 autocast on CPU), random ``--window``-px
   windows, loss MSE + a·(1−MS-SSIM) + b·LPIPS of the decode against the crop
   (`codec.metrics.losses.RdoLoss`);
5. writes the network (float16 safetensors; metadata: base model, filter id, config, report).

Both stages stop at their step count or time limit (cosine learning rate over whichever ends first).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from codec.encoder.session import quant_params
from codec.metrics.losses import LossWeights, RdoLoss
from codec.models.denoiser import LatentDenoiser
from codec.models.specs import LATENT_FILTERS, ZOO_DIR
from codec.quant import dequantize, quantize
from codec.tools.training.data import PackSpec, build_crops
from codec.tools.training.latents import build_latents

SPEC = LATENT_FILTERS[1]
#: level counts the rate control picks from 0.05 bpp (small scales, many levels) up the ladder
DEFAULT_LEVELS = "3,4,4,5,5,6,6,7,8,8,9,10,11,12,14,16,20,24,32"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="taesd")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--depth", type=int, default=5)
    p.add_argument("--levels", default=DEFAULT_LEVELS, help="level counts drawn uniformly per sample")
    p.add_argument("--pack-per-image", type=int, default=1)
    p.add_argument("--holdout", type=int, default=16)
    p.add_argument("--stage1-steps", type=int, default=3000)
    p.add_argument("--stage1-time", type=float, default=420.0)
    p.add_argument("--stage1-batch", type=int, default=16)
    p.add_argument("--stage1-lr", type=float, default=2e-3)
    p.add_argument("--stage2-steps", type=int, default=2000)
    p.add_argument("--stage2-time", type=float, default=900.0)
    p.add_argument("--stage2-batch", type=int, default=4)
    p.add_argument("--stage2-lr", type=float, default=5e-4)
    p.add_argument("--window", type=int, default=128, help="stage 2 image window (px, multiple of 8)")
    p.add_argument("--w-mse", type=float, default=1.0)
    p.add_argument("--w-msssim", type=float, default=0.2)
    p.add_argument("--w-lpips", type=float, default=0.1)
    p.add_argument("--eval-levels", default="4,8")
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--out", default=str(ZOO_DIR / SPEC.file))
    return p.parse_args(argv)


def quantized_batch(lat: np.ndarray, levels: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Codec-exact dequantized latents (N,C,h,w) and per-channel steps (N,C,1,1) for ``levels``."""
    zq, steps = [], []
    for z, lv in zip(lat, levels, strict=True):
        qp = quant_params(z, int(lv))
        zq.append(dequantize(quantize(z, qp), qp))
        steps.append(qp.step())
    step = torch.tensor(np.array(steps), dtype=torch.float32)[:, :, None, None]
    return torch.from_numpy(np.stack(zq)), step


def train_step(opt: torch.optim.Optimizer, loss: torch.Tensor, params: object, clip: float = 1.0) -> float:
    """One optimiser step on ``loss`` with the gradient norm clipped; returns the loss value."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, clip)  # type: ignore[arg-type]
    opt.step()
    return float(loss.detach())


def log_loss(prefix: str, step: int, t0: float, lr: float, running: float, every: int) -> float:
    """Print the running mean loss of the last ``every`` steps; returns the reset sum (0)."""
    print(f"{prefix} step {step} {time.perf_counter() - t0:.0f}s lr {lr:.1e} loss {running / every:.5f}",
          file=sys.stderr)
    return 0.0


def cosine(step: int, total: int, t0: float, limit: float, lr: float, warmup: int = 20) -> tuple[float, bool]:
    progress = step / total
    if limit:
        progress = max(progress, (time.perf_counter() - t0) / limit)
    return lr * min(1.0, step / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))), progress >= 1.0


class Trainer:
    def __init__(self, args: argparse.Namespace) -> None:
        from codec.models.registry import get_model

        self.args = args
        torch.manual_seed(args.seed)
        self.rng = np.random.default_rng(args.seed)
        self.model = get_model(args.model, "cpu")
        self.net = LatentDenoiser(self.model.latent_channels, args.width, args.depth)
        self.decoder = self.model.ae.decoder.float().requires_grad_(False).eval()
        self.levels = [int(v) for v in args.levels.split(",")]
        self.loss = RdoLoss(LossWeights(args.w_mse, args.w_msssim, args.w_lpips))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return (self.decoder(z.contiguous(memory_format=torch.channels_last)).float() + 1) / 2

    def data(self) -> None:
        a = self.args
        spec = PackSpec(per_image=a.pack_per_image, seed=a.seed)
        t0 = time.perf_counter()
        self.crops = build_crops(spec)
        self.lat = build_latents(spec, self.crops, self.model).numpy()
        perm = np.random.default_rng(a.seed + 1).permutation(len(self.crops))
        self.hold, self.train = np.sort(perm[: a.holdout]), np.sort(perm[a.holdout :])
        print(f"[denoise] {len(self.crops)} crops, {len(self.train)} train / {len(self.hold)} held out "
              f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr)

    def images(self, idx: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.array(self.crops[idx])).permute(0, 3, 1, 2).float() / 255.0

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Held-out decode loss per eval level: stock (plain dequantization) vs denoised."""
        out: dict[str, float] = {}
        stock = getattr(self, "_stock", None) is None
        x = self.images(self.hold)
        lat = self.lat[self.hold]
        for lv in (int(v) for v in self.args.eval_levels.split(",")):
            zq, step = quantized_batch(lat, [lv] * len(lat))
            for name, z in (("stock", zq), ("dn", self.net(zq, step))):
                if name == "stock" and not stock:
                    out[f"L{lv}_stock"] = self._stock[f"L{lv}_stock"]
                    continue
                vals = []
                for i in range(0, len(z), 8):
                    vals.append(self.loss(self.decode(z[i : i + 8]), x[i : i + 8]))
                out[f"L{lv}_{name}"] = float(torch.cat(vals).mean())
        self._stock = out
        return out

    def stage1(self) -> int:
        """Latent-domain MSE against the encoder's latent (no decoder: cheap)."""
        a = self.args
        opt = torch.optim.Adam(self.net.parameters(), lr=a.stage1_lr)
        t0, running, step = time.perf_counter(), 0.0, 0
        for step in range(1, a.stage1_steps + 1):
            lr, done = cosine(step, a.stage1_steps, t0, a.stage1_time, a.stage1_lr)
            for g in opt.param_groups:
                g["lr"] = lr
            idx = self.rng.choice(self.train, a.stage1_batch)
            lv = self.rng.choice(self.levels, a.stage1_batch)
            z = torch.from_numpy(self.lat[idx])
            zq, s = quantized_batch(self.lat[idx], list(lv))
            loss = (self.net(zq, s) - z).pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            running += float(loss.detach())
            if step % a.log_every == 0:
                print(f"[denoise] stage 1 step {step} {time.perf_counter() - t0:.0f}s lr {lr:.1e} "
                      f"latent mse {running / a.log_every:.5f}", file=sys.stderr)
                running = 0.0
            if done:
                break
        return step

    def stage2(self) -> int:
        """Through the frozen decoder on random windows."""
        a = self.args
        opt = torch.optim.Adam(self.net.parameters(), lr=a.stage2_lr)
        wl = a.window // 8
        t0, running, step = time.perf_counter(), 0.0, 0
        for step in range(1, a.stage2_steps + 1):
            lr, done = cosine(step, a.stage2_steps, t0, a.stage2_time, a.stage2_lr)
            for g in opt.param_groups:
                g["lr"] = lr
            idx = np.sort(self.rng.choice(self.train, a.stage2_batch, replace=False))
            lv = self.rng.choice(self.levels, a.stage2_batch)
            zq, s = quantized_batch(self.lat[idx], list(lv))
            oy, ox = (int(v) for v in self.rng.integers(0, zq.shape[-1] - wl + 1, 2))
            z = self.net(zq, s)[:, :, oy : oy + wl, ox : ox + wl]
            x = self.images(idx)[:, :, oy * 8 : (oy + wl) * 8, ox * 8 : (ox + wl) * 8]
            running += train_step(opt, self.loss(self.decode(z), x).mean(), self.net.parameters())
            if step % a.log_every == 0:
                running = log_loss("[denoise] stage 2", step, t0, lr, running, a.log_every)
            if done:
                break
        return step

    def run(self) -> dict:
        t_start = time.perf_counter()
        self.data()
        before = self.evaluate()
        print(f"[denoise] held-out before: {fmt(before)}", file=sys.stderr)
        t1 = time.perf_counter()
        s1 = self.stage1() if self.args.stage1_steps else 0
        mid = self.evaluate()
        print(f"[denoise] held-out after stage 1: {fmt(mid)}", file=sys.stderr)
        t2 = time.perf_counter()
        s2 = self.stage2() if self.args.stage2_steps else 0
        t3 = time.perf_counter()
        final = self.evaluate()
        print(f"[denoise] held-out final: {fmt(final)}", file=sys.stderr)
        report = {"stage1_steps": s1, "stage1_s": round(t2 - t1), "stage2_steps": s2,
                  "stage2_s": round(t3 - t2), "total_s": round(time.perf_counter() - t_start),
                  "heldout_after_stage1": mid, "heldout_final": final, "args": vars(self.args),
                  "params": sum(p.numel() for p in self.net.parameters()), "torch": torch.__version__,
                  "threads": torch.get_num_threads()}
        self.save(Path(self.args.out), report)
        return report

    def save(self, out: Path, report: dict) -> None:
        tensors = {k: v.detach().half().contiguous() for k, v in self.net.state_dict().items()}
        config = {"channels": self.net.channels, "width": self.net.width, "depth": self.net.depth}
        meta = {"base_model": self.args.model, "filter_id": str(SPEC.filter_id), "name": SPEC.name,
                "config": json.dumps(config), "report": json.dumps(report)}
        out.parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(out), metadata=meta)
        print(f"[denoise] wrote {len(tensors)} tensors ({out.stat().st_size / 1024:.0f} KiB) → {out}",
              file=sys.stderr)


def fmt(d: dict) -> str:
    return " ".join(f"{k} {v:.4f}" for k, v in d.items())


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    Trainer(args).run()


if __name__ == "__main__":
    main()
