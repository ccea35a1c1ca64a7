"""Fine-tune the TAESD decoder on what the codec really feeds it (issue 14 item 2: a tuned decoder).

    python -m codec.tools.training.train_decoder [--time S] [--steps N] [--out F] ...

The stock decoder was distilled on clean latents; the codec feeds it quantized latents (after the `dq1`
latent denoiser). This trains a copy of the decoder on exactly those inputs:

1. data: the encoder-tail pack (2 random 256-px crops per training photo, `PackSpec(per_image=2)`, never
   Kodak) and the ``default`` (tuned) encoder's latent of each (cached); the same 24 crops the encoder
   tail held out are held out here (``default_rng(seed + 1)`` permutation), and the bench's held-out
   windows (`codec.tools.bench.heldout`) overlap no crop of this pack;
2. per batch a coding scale (``--scales``: the crop down-sampled as the codec does, its own latent; the
   decode up-sampled back for the loss) and per sample a level count from the rate control's operating
   points, quantized codec-exactly
   (`codec.encoder.session.quant_params`) and passed through the frozen `dq1` denoiser when it exists
   (`codec.models.denoiser.apply`, as `codec.decoder` does for a file that carries tag 15);
3. the trainable decoder (bfloat16 autocast) against the crop: MSE + a·(1−MS-SSIM) + b·LPIPS
   (`codec.metrics.losses.RdoLoss`; a = b = 1 by default, the encoder's own quality criterion
   MS-SSIM − LPIPS);
4. writes the decoder's state dict (float16 safetensors) with the training report as metadata.

Stops at ``--steps`` or ``--time`` seconds, whichever comes first (cosine learning rate over it).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from codec.encoder.session import quant_params
from codec.imageio import resize_rgb
from codec.metrics.losses import LossWeights, RdoLoss
from codec.models import denoiser
from codec.models.specs import ZOO_DIR, latent_filter_for
from codec.models.tuned_decoder import load_tensors
from codec.quant import dequantize, quantize
from codec.tools.training.data import PackSpec, build_crops
from codec.tools.training.latents import build_latents
from codec.tools.training.train_denoiser import DEFAULT_LEVELS, cosine, fmt, log_loss, train_step

DEFAULT_OUT = ZOO_DIR / "taesd_decoder_tuned.safetensors"
#: the rate control codes 0.05–0.15 bpp mostly at scales 0.5–1.0 (0.75 with 12–16 levels at 0.10 bpp)
DEFAULT_SCALES = "1.0,1.0,0.75,0.75,0.5"


def coded_side(side: int, scale: float) -> int:
    """The side a ``side``-px crop is coded at for ``scale`` (multiple of 8, as the rate control's)."""
    return max(8, round(side * scale / 8) * 8)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="taesd")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--levels", default=DEFAULT_LEVELS, help="level counts drawn uniformly per sample")
    p.add_argument("--scales", default=DEFAULT_SCALES,
                   help="coding scales drawn per batch (the crop down-sampled, its decode up-sampled back)")
    p.add_argument("--holdout", type=int, default=24)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--time", type=float, default=900.0, help="seconds (0: no limit)")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--w-mse", type=float, default=1.0)
    p.add_argument("--w-msssim", type=float, default=1.0)
    p.add_argument("--w-lpips", type=float, default=1.0)
    p.add_argument("--train", default="all", help="'all' or comma-separated parameter-name prefixes to train")
    p.add_argument("--eval-levels", default="1.0:6,1.0:12,0.75:12,0.5:24", help="scale:levels pairs")
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--out", default=str(DEFAULT_OUT))
    p.add_argument("--init", default="",
                   help="start from this tuned-decoder file (its tensors loaded over the stock decoder) "
                        "instead of the stock decoder; the held-out 'stock' column stays the stock decoder")
    return p.parse_args(argv)


class DecoderTrainer:
    def __init__(self, args: argparse.Namespace) -> None:
        from codec.models.registry import get_model

        self.args = args
        torch.manual_seed(args.seed)
        self.rng = np.random.default_rng(args.seed)
        self.model = get_model(args.model, "cpu", backend="torch")
        self.stock = self.model.ae.decoder.float().requires_grad_(False).eval()
        self.dec = copy.deepcopy(self.stock).train().requires_grad_(False)
        if args.init:  # continue a run (e.g. the shipped decoder) rather than start from the stock one
            load_tensors(self.dec, Path(args.init), self.model.name)
        trainable = [p for n, p in self.dec.named_parameters()
                     if args.train == "all" or any(n.startswith(k) for k in args.train.split(","))]
        for p in trainable:
            p.requires_grad_(True)
        self.trainable = trainable
        spec = latent_filter_for(self.model.name)
        self.dn = denoiser.get_denoiser(spec.filter_id) if spec is not None else None
        self.levels = [int(v) for v in args.levels.split(",")]
        self.loss = RdoLoss(LossWeights(args.w_mse, args.w_msssim, args.w_lpips))

    def data(self) -> None:
        t0 = time.perf_counter()
        spec = PackSpec(per_image=2, seed=self.args.seed)
        self.crops = build_crops(spec)
        self.scales = [float(v) for v in self.args.scales.split(",")]
        #: per scale: the latents of the crops down-sampled to that scale (as the codec codes them)
        self.lats = {1.0: build_latents(spec, self.crops, self.model).numpy()}
        for sc in sorted(set(self.scales) - {1.0}):
            side = coded_side(self.crops.shape[1], sc)
            small = np.stack([resize_rgb(c, side, side) for c in self.crops])
            self.lats[sc] = build_latents(spec, small, self.model, variant=f"_x{side}").numpy()
        self.lat = self.lats[1.0]
        perm = np.random.default_rng(self.args.seed + 1).permutation(len(self.crops))
        self.hold, self.train_idx = np.sort(perm[: self.args.holdout]), np.sort(perm[self.args.holdout :])
        print(f"[decoder] {len(self.crops)} crops, {len(self.train_idx)} train / {len(self.hold)} held out "
              f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr)

    def inputs(self, idx: np.ndarray, levels: list[int], scale: float = 1.0) -> torch.Tensor:
        """What the decoder sees for these crops at these level counts (quantized, then `dq1`)."""
        out = []
        for i, lv in zip(idx, levels, strict=True):
            z = self.lats[scale][i]
            qp = quant_params(z, int(lv))
            zq = dequantize(quantize(z, qp), qp)
            out.append(denoiser.apply(self.dn, zq, qp) if self.dn is not None else zq)
        return torch.from_numpy(np.stack(out).astype(np.float32))

    def images(self, idx: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.array(self.crops[idx])).permute(0, 3, 1, 2).float() / 255.0

    def decode(self, net: torch.nn.Module, z: torch.Tensor) -> torch.Tensor:
        """The decode at the crop's size (a down-scaled latent's decode up-sampled back: bicubic here,
        Lanczos in the codec)."""
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = (net(z.contiguous(memory_format=torch.channels_last)).float() + 1) / 2
        side = self.crops.shape[1]
        if y.shape[-1] != side:
            y = torch.nn.functional.interpolate(y, size=(side, side), mode="bicubic", align_corners=False)
        return y

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Held-out loss per eval level: stock decoder vs the tuned one (same inputs)."""
        out: dict[str, float] = {}
        x = self.images(self.hold)
        for item in self.args.eval_levels.split(","):
            sc, _, lv = item.rpartition(":")
            scale, levels = float(sc or 1.0), int(lv)
            z = self.inputs(self.hold, [levels] * len(self.hold), scale)
            for name, net in (("stock", self.stock), ("tuned", self.dec)):
                self.dec.eval()
                vals = [self.loss(self.decode(net, z[i : i + 8]), x[i : i + 8]) for i in range(0, len(z), 8)]
                out[f"{scale:g}:L{levels}_{name}"] = float(torch.cat(vals).mean())
        self.dec.train()
        return out

    def fit(self) -> int:
        a = self.args
        opt = torch.optim.Adam(self.trainable, lr=a.lr)
        t0, running, step = time.perf_counter(), 0.0, 0
        for step in range(1, a.steps + 1):
            lr, done = cosine(step, a.steps, t0, a.time, a.lr)
            for g in opt.param_groups:
                g["lr"] = lr
            idx = np.sort(self.rng.choice(self.train_idx, a.batch, replace=False))
            lv = [int(v) for v in self.rng.choice(self.levels, a.batch)]
            scale = float(self.rng.choice(self.scales))
            loss = self.loss(self.decode(self.dec, self.inputs(idx, lv, scale)), self.images(idx)).mean()
            running += train_step(opt, loss, self.trainable)
            if step % a.log_every == 0:
                running = log_loss("[decoder]", step, t0, lr, running, a.log_every)
            if done:
                break
        return step

    def run(self) -> dict:
        t_start = time.perf_counter()
        self.data()
        before = self.evaluate()
        print(f"[decoder] held-out before: {fmt(before)}", file=sys.stderr)
        t1 = time.perf_counter()
        steps = self.fit()
        t2 = time.perf_counter()
        final = self.evaluate()
        print(f"[decoder] held-out final: {fmt(final)}", file=sys.stderr)
        report = {"steps": steps, "train_s": round(t2 - t1), "total_s": round(time.perf_counter() - t_start),
                  "heldout_final": final, "args": vars(self.args),
                  "trained_params": sum(p.numel() for p in self.trainable), "torch": torch.__version__,
                  "threads": torch.get_num_threads(), "denoiser": self.dn is not None}
        self.save(Path(self.args.out), report)
        return report

    def save(self, out: Path, report: dict) -> None:
        names = {n for n, p in self.dec.named_parameters() if p.requires_grad}
        tensors = {k: v.detach().half().contiguous() for k, v in self.dec.state_dict().items() if k in names}
        meta = {"base_model": self.args.model, "kind": "decoder-delta", "report": json.dumps(report)}
        out.parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(out), metadata=meta)
        print(f"[decoder] wrote {len(tensors)} tensors ({out.stat().st_size / 1024:.0f} KiB) → {out}",
              file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    DecoderTrainer(args).run()


if __name__ == "__main__":
    main()
