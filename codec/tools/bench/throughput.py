"""Throughput of the worker's codec path with dynamic batching: photos/s at batch 1 / 8 / 32 (issue 13).

Made for a lent GPU (``make bench-gpu``; the ``device`` tool's machine), and runs anywhere (a small
CPU smoke run is in the tests). Three parts, all on ``--device``:

1. **Model**: the autoencoder alone, encoder and decoder passes of B photos stacked, images/s
   (median of ``--repeats`` synchronised runs after a warm-up) — the ceiling batching can reach.
2. **Pipeline**: ``--photos`` photos through ``codec.encode_result`` (what the gallery worker runs:
   rate control, the fidelity and face guard, the reconstruction for the previews) in B threads
   against one model batched at B rows (`codec.models.batching`, as the compose GPU worker runs it);
   photos/s, median seconds per photo, and how many rows the passes really had.
3. **Exactness**: the first photo coded alone vs in the batched run (PSNR between their decodes),
   and on CUDA the fp16 decode of that file against the CPU fp32 decode (PSNR).

All photos are brought to one size (``--size``, default 768×512; portrait ones are turned) so that
their passes may share a batch, as a camera's photos would.

    python -m codec.tools.bench.throughput --device cuda --photos 64 --batches 1,8,32 --out DIR
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

import codec
from codec.imageio import load_image, resize_rgb, to_tensor
from codec.metrics import psnr
from codec.models import batching
from codec.models.registry import clear_cache, get_model
from codec.options import bpp_to_bytes
from codec.tools.bench.machine import describe, load_average
from codec.tools.bench.runner import list_images


def _photos(folder: Path, n: int, width: int, height: int) -> list[np.ndarray]:
    """``n`` photos at width×height (portraits turned, then resized); the folder is cycled if short."""
    paths = list_images(folder)
    out = []
    for i in range(n):
        rgb = load_image(paths[i % len(paths)])
        if (rgb.shape[0] > rgb.shape[1]) != (height > width):
            rgb = np.ascontiguousarray(np.rot90(rgb))
        if rgb.shape[:2] != (height, width):
            rgb = resize_rgb(rgb, width, height)
        out.append(rgb)
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def model_throughput(photos: list[np.ndarray], batches: list[int], device: str | None,
                     repeats: int) -> list[dict[str, Any]]:
    """Images/s of the bare encoder and decoder at each batch size."""
    model = get_model("taesd", device=device)
    rows = []
    for b in batches:
        x = torch.cat([to_tensor(photos[i % len(photos)]) for i in range(b)]).to(model.device)
        with torch.no_grad():
            z = model.encode(x)
            model.decode(z)  # warm-up (allocator, cuDNN plans)
            enc, dec = [], []
            for _ in range(repeats):
                _sync(model.device)
                t0 = time.perf_counter()
                model.encode(x)
                _sync(model.device)
                t1 = time.perf_counter()
                model.decode(z)
                _sync(model.device)
                enc.append(t1 - t0)
                dec.append(time.perf_counter() - t1)
        rows.append({"batch": b, "encode_images_per_s": b / statistics.median(enc),
                     "decode_images_per_s": b / statistics.median(dec)})
    return rows


def pipeline_throughput(photos: list[np.ndarray], batch: int, *, device: str | None, effort: str,
                        max_bytes: int, wait_ms: float) -> tuple[dict[str, Any], list[bytes]]:
    """``photos`` through ``codec.encode_result`` in ``batch`` threads on a model batched at ``batch``."""
    os.environ[batching.BATCH_MAX_ENV] = str(batch)
    os.environ[batching.BATCH_WAIT_ENV] = str(wait_ms)
    clear_cache()
    model = get_model("taesd", device=device)
    codec.encode(photos[0][:64, :64], max_bytes=400, effort=effort, device=device)  # warm the networks
    if isinstance(model, batching.BatchingAutoencoder):
        for b in model.batchers:
            b.stats = batching.BatchStats()
    seconds: list[float] = [0.0] * len(photos)

    def one(i: int) -> bytes:
        t0 = time.perf_counter()
        res = codec.encode_result(photos[i], max_bytes=max_bytes, effort=effort, device=device)
        seconds[i] = time.perf_counter() - t0
        return res.data

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=batch) as pool:
        files = list(pool.map(one, range(len(photos))))
    wall = time.perf_counter() - t0
    row: dict[str, Any] = {
        "batch": batch, "photos": len(photos), "wall_s": wall, "photos_per_s": len(photos) / wall,
        "median_s_per_photo": statistics.median(seconds),
        "mean_bytes": float(np.mean([len(f) for f in files])),
    }
    if isinstance(model, batching.BatchingAutoencoder):
        row["passes"] = {name: {"passes": s.passes, "rows": s.rows, "mean_rows": s.rows / max(1, s.passes),
                                "bypassed": s.bypassed, "retried_alone": s.retried_alone}
                         for name, s in model.stats().items()}
    return row, files


def exactness(alone: bytes, batched: bytes, device: str | None) -> dict[str, Any]:
    """PSNR between the decodes of one photo's file coded alone and in a batch (and GPU vs CPU)."""
    os.environ[batching.BATCH_MAX_ENV] = "1"
    clear_cache()
    a = np.asarray(codec.decode(alone, device=device))
    b = np.asarray(codec.decode(batched, device=device))
    out: dict[str, Any] = {"same_file": alone == batched, "psnr_alone_vs_batched_db": psnr(a, b)}
    if get_model("taesd", device=device).device.type == "cuda":
        out["psnr_gpu_fp16_vs_cpu_fp32_db"] = psnr(a, np.asarray(codec.decode(alone, device="cpu")))
    return out


def write_report(out: Path, result: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "throughput.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    m = result["machine"]
    lines = [
        "# Worker throughput with dynamic batching (issue 13)", "",
        f"Made by `{result['command']}` on {result['date']}.", "",
        f"Machine: {m.get('gpu') or m['cpu']} ({m['cpu_cores']} CPU cores), device {m['latent_device']}, "
        f"torch {m['torch']}, load average {result['load_average_start']} at start, "
        f"{result['load_average_end']} at end.", "",
        f"Photos: {result['photos']} at {result['size']}, effort `{result['effort']}`, "
        f"{result['max_bytes']} bytes each ({result['bpp']} bpp).", "",
        "## Model alone (images/s, median)", "", "| batch | encode | decode |", "|---|---|---|",
    ]
    lines += [f"| {r['batch']} | {r['encode_images_per_s']:.1f} | {r['decode_images_per_s']:.1f} |"
              for r in result["model"]]
    lines += ["", "## Worker path: `codec.encode_result` in B threads, model batched at B", "",
              "| batch | photos/s | median s/photo | mean rows per decoder pass | mean bytes |",
              "|---|---|---|---|---|"]
    for r in result["pipeline"]:
        # decoder passes: the stock decoder's and the tuned one's (`codec.models.tuned_decoder`)
        dec = [v for k, v in r.get("passes", {}).items() if k in ("decode", "tuned-decode") and v["passes"]]
        rows = sum(v["rows"] for v in dec) / max(1, sum(v["passes"] for v in dec)) if dec else 1.0
        lines.append(f"| {r['batch']} | {r['photos_per_s']:.2f} | {r['median_s_per_photo']:.2f} | "
                     f"{rows:.1f} | {r['mean_bytes']:.0f} |")
    lines += ["", "## Exactness", "", "```", json.dumps(result["exactness"], indent=2), "```", ""]
    (out / "throughput.md").write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=Path, default=None, help="photos folder (default: the Kodak set)")
    p.add_argument("--photos", type=int, default=64)
    p.add_argument("--batches", default="1,8,32")
    p.add_argument("--size", default="768x512")
    p.add_argument("--effort", default="default")
    p.add_argument("--bpp", type=float, default=0.10)
    p.add_argument("--device", default=None)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--wait-ms", type=float, default=batching.DEFAULT_WAIT_MS)
    p.add_argument("--out", type=Path, default=Path("bench-out/throughput"))
    argv = list(sys.argv[1:] if argv is None else argv)
    args = p.parse_args(argv)
    from codec.resources import resolve_dir

    width, height = (int(v) for v in args.size.lower().split("x"))
    batches = [int(b) for b in args.batches.split(",")]
    photos = _photos(args.images or resolve_dir("kodak"), args.photos, width, height)
    max_bytes = bpp_to_bytes(args.bpp, width, height)
    started = load_average()
    result: dict[str, Any] = {
        "command": " ".join(["python -m codec.tools.bench.throughput", *argv]),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"), "machine": describe(args.device),
        "photos": len(photos), "size": f"{width}x{height}", "effort": args.effort, "bpp": args.bpp,
        "max_bytes": max_bytes, "load_average_start": started,
        "model": model_throughput(photos, batches, args.device, args.repeats), "pipeline": [],
    }
    files: dict[int, list[bytes]] = {}
    for b in batches:
        row, files[b] = pipeline_throughput(photos, b, device=args.device, effort=args.effort,
                                            max_bytes=max_bytes, wait_ms=args.wait_ms)
        result["pipeline"].append(row)
        print(json.dumps(row, default=str), flush=True)
    result["exactness"] = exactness(files[batches[0]][0], files[batches[-1]][0], args.device)
    result["load_average_end"] = load_average()
    write_report(args.out, result)
    return result


if __name__ == "__main__":
    main()
