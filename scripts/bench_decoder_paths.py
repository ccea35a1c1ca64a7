"""Issue 13 item 3 (first look): the stock TAESD decoder on this CPU, torch eager in three layouts /
precisions, 2 threads: plain contiguous fp32 (the reference), channels_last fp32 (what
codec.models.taesd uses), channels_last bf16. Reports warm ms per decode (median), PSNR of each path
against the reference (on the uint8 pictures) and whether two runs of a path are bit-identical.

ONNX Runtime / OpenVINO are not installed in the venv (not measured here). The machine is shared:
times are upper bounds; the load average is printed.

    .venv/bin/python scripts/bench_decoder_paths.py --width 768 --height 512 --repeats 3
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def to_u8(y: torch.Tensor) -> np.ndarray:
    return ((y.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)[0].permute(1, 2, 0).numpy()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=768)
    ap.add_argument("--height", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "docs/bench/gallery/decoder_paths.json"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    from codec.models.registry import get_model

    base = copy.deepcopy(get_model("taesd", device="cpu").ae).float()
    from PIL import Image

    from codec.resources import resolve_dir

    img = Image.open(resolve_dir("kodak") / "kodim23.png").convert("RGB").resize((args.width, args.height))
    x = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.inference_mode():
        z = base.encoder(x.contiguous())  # a real latent of the photo (stock encoder)
    paths = {
        "eager fp32 contiguous": (base.to(memory_format=torch.contiguous_format), torch.float32, False),
        "eager fp32 channels_last": (copy.deepcopy(base).to(memory_format=torch.channels_last), torch.float32,
                                     True),
        "eager bf16 channels_last": (
            copy.deepcopy(base).to(torch.bfloat16).to(memory_format=torch.channels_last), torch.bfloat16, True
        ),
    }
    results, ref = {}, None
    load = os.getloadavg()
    for name, (module, dtype, cl) in paths.items():
        zin = z.to(dtype)
        if cl:
            zin = zin.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            first = to_u8(module.decoder(zin))  # warm-up
            times, again = [], None
            for _ in range(args.repeats):
                t = time.perf_counter()
                again = to_u8(module.decoder(zin))
                times.append(time.perf_counter() - t)
        if ref is None:
            ref = first
        results[name] = dict(ms_median=round(1000 * statistics.median(times), 1),
                             ms=[round(1000 * t, 1) for t in times],
                             psnr_vs_fp32_contiguous_db=round(psnr(ref, first), 2),
                             deterministic=bool(np.array_equal(first, again)))
        print(name, results[name], flush=True)
    out = dict(size=[args.width, args.height], threads=2, loadavg_start=[round(v, 2) for v in load],
               loadavg_end=[round(v, 2) for v in os.getloadavg()], paths=results,
               note="shared 2-core machine under load: times are upper bounds; "
               "ONNX Runtime/OpenVINO not installed")
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
