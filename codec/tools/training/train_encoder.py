"""Fine-tune the later blocks of the TAESD encoder against the frozen stock decoder (amortised RDO).

    python -m codec.tools.training.train_encoder [--steps N] [--time-limit S] [--device cuda] ...
    make train-encoder TRAIN_ARGS="--steps 20000 --device cuda"

What it does (defaults reproduce ``codec/zoo/taesd_encoder_rdo.safetensors``, see its README):

1. builds / loads the crop pack from the training photos (`codec.tools.training.data`; never Kodak) and the
   cached output of the frozen encoder prefix (layers ``0 .. first_trainable-1``);
2. trains the tail (layers ``first_trainable .. end``) with Adam: latents of a random aligned
   ``window``-px sub-crop are quantized at a random level count in ``[levels_min, levels_max]`` per
   sample (straight-through rounding by default) over the fixed range ``[lo, hi]``, decoded by the
   frozen stock decoder, and scored by `codec.metrics.losses.RdoLoss` (MSE + a·(1−MS-SSIM) + b·LPIPS), plus
   optionally ``w_rate`` × a soft-histogram (order-0) entropy estimate in bits per pixel;
3. writes only the tensors it changed (float16 safetensors, upstream sequential key names, with the
   arguments and timings as metadata) — loaded on top of the stock encoder by `codec.encoder.rdo`.

A held-out set of pack crops (never trained on) is scored at L=8 and L=12 before, during and after
training, so the log shows the gain over the stock encoder without touching Kodak.
On CPU, decoder and LPIPS run under bfloat16 autocast (≈ 3× faster on AVX512-BF16); ``--fp32`` disables it.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from codec.encoder import rdo
from codec.metrics.losses import LossWeights, RdoLoss
from codec.models.specs import MODELS, ZOO_DIR
from codec.tools.training.data import CropSampler, PackSpec, build_crops, build_features
from codec.tools.training.qsim import quantize_sim, sample_range

DEFAULT_OUT = ZOO_DIR / str(MODELS["taesd"].tuned_encoder)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="taesd")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0,
                   help="torch CPU threads; 0 = 2, or 1 when the machine is oversubscribed (load > cores)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--time-limit", type=float, default=1200.0,
                   help="stop (and save) after this many seconds of training; 0 = no limit")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--window", type=int, default=192)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--first-trainable", type=int, default=11)
    p.add_argument("--levels-min", type=int, default=6)
    p.add_argument("--levels-max", type=int, default=16)
    p.add_argument("--range-mode", choices=("quantile", "fixed"), default="quantile",
                   help="per sample+channel range: latent quantiles (codec.quant default) or [-3,3]")
    p.add_argument("--domain", choices=("raw", "tanh"), default="raw")
    p.add_argument("--mode", choices=("ste", "noise"), default="ste")
    p.add_argument("--w-mse", type=float, default=1.0)
    p.add_argument("--w-msssim", type=float, default=0.1)
    p.add_argument("--w-lpips", type=float, default=0.05)
    p.add_argument("--w-rate", type=float, default=0.0, help="weight of the order-0 entropy estimate (bpp)")
    p.add_argument("--pack-crop", type=int, default=256)
    p.add_argument("--pack-per-image", type=int, default=2)
    p.add_argument("--holdout", type=int, default=24)
    p.add_argument("--eval-every", type=int, default=1000)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--fp32", action="store_true")
    p.add_argument("--out", default=str(DEFAULT_OUT))
    return p.parse_args(argv)


def soft_entropy_bpp(
    z: torch.Tensor, levels: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, domain: str, down: int = 8
) -> torch.Tensor:
    """Order-0 entropy estimate (bits per pixel) of the quantized latents, differentiable in ``z``.

    Each latent value is softly assigned to the reconstruction points (Gaussian kernel of a third of
    a step); the per-sample, per-channel histogram of those assignments gives an entropy in bits per
    symbol, times C symbols per down² pixels.
    """
    from codec.tools.training.qsim import compand

    n, c = z.shape[:2]
    u = compand(z, domain)
    out = []
    for i in range(n):
        lv = int(levels[i])
        lo_i, hi_i = lo[i].view(c, 1, 1), hi[i].view(c, 1, 1)
        step = (hi_i - lo_i) / (lv - 1)
        centers = lo_i + step * torch.arange(lv, device=z.device).view(1, 1, -1)
        uc = torch.maximum(torch.minimum(u[i].reshape(c, -1, 1), hi_i), lo_i)
        d = (uc - centers) / (step / 3)
        p = torch.softmax(-0.5 * d * d, dim=-1).mean(dim=1)  # (C, L)
        h = -(p * torch.log2(p + 1e-9)).sum(dim=-1)  # bits per symbol, per channel
        out.append(h.sum() / down**2)
    return torch.stack(out)


class Trainer:
    def __init__(self, args: argparse.Namespace) -> None:
        from codec.models.registry import get_model

        self.args = args
        torch.manual_seed(args.seed)
        self.device = torch.device(args.device)
        model = get_model(args.model, args.device)
        self.model = model
        stock = rdo.stock_encoder_layers(model)
        layers = copy.deepcopy(stock).float()
        ft = args.first_trainable
        self.prefix = torch.nn.Sequential(*list(layers)[:ft]).requires_grad_(False).eval()
        self.tail = torch.nn.Sequential(*list(layers)[ft:])
        self.tail.requires_grad_(True).train()
        self.stock_tail = copy.deepcopy(self.tail).requires_grad_(False).eval()
        self.decoder = copy.deepcopy(model.ae.decoder).float().requires_grad_(False).eval()
        self.autocast = not args.fp32
        self.ac_dtype = torch.bfloat16 if self.device.type == "cpu" else torch.float16
        if self.device.type == "cpu":
            self.decoder = self.decoder.to(memory_format=torch.channels_last)
        self.loss = RdoLoss(LossWeights(args.w_mse, args.w_msssim, args.w_lpips), device=self.device)

    def decode(self, zq: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=self.ac_dtype, enabled=self.autocast):
            if self.device.type == "cpu":
                zq = zq.contiguous(memory_format=torch.channels_last)
            return (self.decoder(zq).float() + 1) / 2

    def losses(self, tail: torch.nn.Module, f: torch.Tensor, x: torch.Tensor, off: tuple[int, int],
               levels: torch.Tensor, mode: str) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        a = self.args
        z = tail(f.to(self.device))
        h = x.shape[-1] // 8
        z = z[:, :, off[0] : off[0] + h, off[1] : off[1] + h]
        lo, hi = sample_range(z, a.range_mode, a.domain)
        zq = quantize_sim(z, levels.to(self.device), lo, hi, mode, a.domain)
        recon = self.decode(zq)
        with torch.autocast(self.device.type, dtype=self.ac_dtype, enabled=self.autocast):
            terms = self.loss.terms(recon, x.to(self.device))
        total = self.loss.weights.mse * terms["mse"]
        if "msssim" in terms:
            total = total + self.loss.weights.msssim * terms["msssim"]
        if "lpips" in terms:
            total = total + self.loss.weights.lpips * terms["lpips"].float()
        if a.w_rate:
            terms["bpp"] = soft_entropy_bpp(z.float(), levels, lo.float(), hi.float(), a.domain)
            total = total + a.w_rate * terms["bpp"]
        return total.mean(), {k: v.detach().float().mean() for k, v in terms.items()}

    @torch.no_grad()
    def evaluate(self, tail: torch.nn.Module, feats: torch.Tensor, crops: torch.Tensor) -> dict[str, float]:
        """Held-out loss at L=8 and L=12 (exact rounding, full crops)."""
        tail.eval()
        out: dict[str, float] = {}
        for lv in (8, 12):
            vals = []
            for i in range(0, len(feats), 8):
                f, x = feats[i : i + 8].float(), crops[i : i + 8]
                levels = torch.full((len(f),), lv)
                total, _ = self.losses(tail, f, x, (0, 0), levels, "ste")
                vals.append(float(total) * len(f))
            out[f"L{lv}"] = sum(vals) / len(feats)
        tail.train()
        return out

    def run(self) -> dict:
        a = self.args
        t_start = time.perf_counter()
        spec = PackSpec(crop=a.pack_crop, per_image=a.pack_per_image, seed=a.seed)
        crops = build_crops(spec)
        feats = build_features(spec, crops, self.prefix)
        t_pack = time.perf_counter() - t_start
        rng = np.random.default_rng(a.seed + 1)
        perm = rng.permutation(len(crops))
        hold, train = np.sort(perm[: a.holdout]), np.sort(perm[a.holdout :])
        hold_x = torch.from_numpy(np.array(crops[hold])).permute(0, 3, 1, 2).float() / 255.0
        hold_f = feats[torch.from_numpy(hold)]
        sampler = CropSampler(np.asarray(crops[train]), feats[torch.from_numpy(train)], a.window, seed=a.seed)
        params = [p for p in self.tail.parameters() if p.requires_grad]
        opt = torch.optim.Adam(params, lr=a.lr)
        base = self.evaluate(self.stock_tail, hold_f, hold_x)
        print(f"[train] pack {len(crops)} crops ({t_pack:.0f} s); held-out stock {fmt(base)}",
              file=sys.stderr)
        g = torch.Generator().manual_seed(a.seed + 2)
        t0 = time.perf_counter()
        history, running, step = [], {}, 0
        for step in range(1, a.steps + 1):
            # cosine decay over the run; with --time-limit the schedule follows elapsed time too
            progress = step / a.steps
            if a.time_limit:
                progress = max(progress, (time.perf_counter() - t0) / a.time_limit)
            lr = a.lr * min(1.0, step / max(1, a.warmup)) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
            for group in opt.param_groups:
                group["lr"] = lr
            f, x, off = sampler.sample(a.batch)
            levels = torch.randint(a.levels_min, a.levels_max + 1, (a.batch,), generator=g)
            total, terms = self.losses(self.tail, f, x, off, levels, a.mode)
            opt.zero_grad(set_to_none=True)
            total.backward()
            if all(torch.isfinite(p.grad).all() for p in params if p.grad is not None):
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
            for k, v in {"loss": total.detach(), **terms}.items():
                running[k] = running.get(k, 0.0) + float(v)
            elapsed = time.perf_counter() - t0
            if step % a.log_every == 0:
                avg = {k: v / a.log_every for k, v in running.items()}
                running = {}
                print(f"[train] step {step}/{a.steps} {elapsed:.0f}s lr {lr:.2e} {fmt(avg)}", file=sys.stderr)
            if step % a.eval_every == 0:
                ev = self.evaluate(self.tail, hold_f, hold_x)
                history.append({"step": step, "s": round(elapsed), **ev})
                print(f"[train] held-out step {step}: {fmt(ev)} (stock {fmt(base)})", file=sys.stderr)
            if a.time_limit and progress >= 1.0:
                print(f"[train] time limit reached at step {step}", file=sys.stderr)
                break
        train_s = time.perf_counter() - t0
        final = self.evaluate(self.tail, hold_f, hold_x)
        report = {"steps_done": step, "train_s": round(train_s), "pack_s": round(t_pack),
                  "heldout_stock": base, "heldout_final": final, "history": history,
                  "args": vars(a), "torch": torch.__version__, "threads": torch.get_num_threads()}
        self.save(Path(a.out), report)
        print(f"[train] done: {step} steps in {train_s:.0f} s; held-out {fmt(final)} vs stock {fmt(base)}",
              file=sys.stderr)
        return report

    def save(self, out: Path, report: dict) -> None:
        ft = self.args.first_trainable
        tensors = {}
        for k, v in self.tail.state_dict().items():
            idx, rest = k.split(".", 1)
            tensors[f"{int(idx) + ft}.{rest}"] = v.detach().cpu().half().contiguous()
        from codec.weights import SHA256

        spec = self.model.spec
        meta = {"base_model": self.args.model, "base_encoder": spec.encoder_file,
                "base_encoder_sha256": SHA256.get(spec.encoder_file, ""), "report": json.dumps(report)}
        out.parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(out), metadata=meta)
        size_kib = out.stat().st_size / 1024
        print(f"[train] wrote {len(tensors)} tensors ({size_kib:.0f} KiB) → {out}", file=sys.stderr)


def fmt(d: dict) -> str:
    return " ".join(f"{k} {v:.4f}" for k, v in d.items())


def pick_threads(requested: int) -> int:
    if requested > 0:
        return requested
    import os

    cores = os.cpu_count() or 2
    return 1 if os.getloadavg()[0] > cores else min(2, cores)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(pick_threads(args.threads))
    Trainer(args).run()


if __name__ == "__main__":
    main()
