"""Decode/encode speed of the latent codec: CPU (2 threads) and, when there is a GPU, CUDA fp16.

* CPU: the median of several ``codec.decode`` calls on one 768×512 image coded with the bench's effort
  at 0.10 bpp and at 0.5 bpp (`HEAVY_BPP`: issue 14's high-rate point, on Kodak a full-size latent with
  the tuned decoder plus the residual layer; the section records what the file holds), after one warm-up
  decode (model load); plus one ``codec.encode`` timing per budget. Budgets above it may be heavier still
  (a plain up-scaled latent can win over the residual files there).
* CUDA (only if ``torch.cuda.is_available()``): the TAESD autoencoder alone in the registry's GPU
  dtype (fp16), seconds per image for encode and decode at batch 1 and batch 16 (median of several
  synchronised runs after warm-up), and end-to-end ``codec.decode`` / ``codec.encode`` on the GPU.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

import codec
from codec.container.header import parse
from codec.imageio import resize_rgb, to_tensor
from codec.models.registry import get_model
from codec.options import bpp_to_bytes

SPEED_SIZE = (768, 512)
SPEED_BPP = 0.10
#: the second budget timed: full-size latent + residual layer (issue 14: ≤ 1.5 s on 2 cores)
HEAVY_BPP = 0.5


def pick_speed_image(images: list[Path], load: Callable[[Path], np.ndarray]) -> tuple[str, np.ndarray]:
    """The first 768×512 image; else the first image resized to 768×512 (noted in the name)."""
    for path in images:
        rgb = load(path)
        if (rgb.shape[1], rgb.shape[0]) == SPEED_SIZE:
            return path.name, rgb
    rgb = load(images[0])
    return f"{images[0].name} resized to 768×512", resize_rgb(rgb, *SPEED_SIZE)


def _median_time(fn: Callable[[], Any], repeats: int, sync: Callable[[], None] = lambda: None) -> float:
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure_speed(
    images: list[Path],
    load: Callable[[Path], np.ndarray],
    *,
    effort: str,
    log: Callable[[str], None],
    repeats: int = 5,
) -> dict[str, Any]:

    name, rgb = pick_speed_image(images, load)
    max_bytes = bpp_to_bytes(SPEED_BPP, *SPEED_SIZE)
    out: dict[str, Any] = {"image": name, "bpp": SPEED_BPP, "effort": effort,
                           "cpu_threads": torch.get_num_threads()}
    t0 = time.perf_counter()
    data = codec.encode(rgb, max_bytes=max_bytes, effort=effort, device="cpu")
    out["cpu_encode_s"] = time.perf_counter() - t0
    out["bytes"] = len(data)
    codec.decode(data, device="cpu")  # warm-up (model load)
    out["cpu_decode_s_median"] = _median_time(lambda: codec.decode(data, device="cpu"), repeats)
    out["cpu_decode_repeats"] = repeats
    log(f"speed: CPU decode {out['cpu_decode_s_median']:.2f} s (median of {repeats}), "
        f"encode {out['cpu_encode_s']:.2f} s")
    heavy_bytes = bpp_to_bytes(HEAVY_BPP, *SPEED_SIZE)
    t0 = time.perf_counter()
    heavy = codec.encode(rgb, max_bytes=heavy_bytes, effort=effort, device="cpu")
    header, _ = parse(heavy)
    out["heavy"] = {"bpp": HEAVY_BPP, "bytes": len(heavy), "cpu_encode_s": time.perf_counter() - t0,
                    "latent_shape": list(header.latent_shape) if header.latent_height is not None else [],
                    "residual": header.residual_layer is not None,
                    "cpu_decode_s_median": _median_time(lambda: codec.decode(heavy, device="cpu"), repeats)}
    log(f"speed: CPU decode at {HEAVY_BPP} bpp {out['heavy']['cpu_decode_s_median']:.2f} s "
        f"(median of {repeats})")
    if torch.cuda.is_available():
        out["cuda"] = _cuda_speed(rgb, data, max_bytes, effort, log)
    return out


def _cuda_speed(
    rgb: np.ndarray, data: bytes, max_bytes: int, effort: str, log: Callable[[str], None]
) -> dict[str, Any]:

    model = get_model("taesd", device="cuda")
    res: dict[str, Any] = {"gpu": torch.cuda.get_device_name(model.device), "dtype": str(model.dtype)}
    sync = torch.cuda.synchronize
    x1 = to_tensor(rgb).to(model.device, model.dtype)
    for batch in (1, 16):
        x = x1.repeat(batch, 1, 1, 1)
        with torch.no_grad():
            for _ in range(3):  # warm-up: cuDNN autotuning, allocator
                z = model.encode(x)
                model.decode(z)
            enc = _median_time(lambda x=x: model.encode(x), 10, sync)
            dec = _median_time(lambda z=z: model.decode(z), 10, sync)
        res[f"batch{batch}"] = {"encode_s_per_image": enc / batch, "decode_s_per_image": dec / batch}
        log(f"speed: CUDA {res['dtype']} batch {batch}: encode {enc / batch * 1000:.1f} ms/img, "
            f"decode {dec / batch * 1000:.1f} ms/img")
    codec.decode(data, device="cuda")
    res["codec_decode_s_median"] = _median_time(lambda: codec.decode(data, device="cuda"), 5, sync)
    t0 = time.perf_counter()
    codec.encode(rgb, max_bytes=max_bytes, effort=effort, device="cuda")
    sync()
    res["codec_encode_s"] = time.perf_counter() - t0
    return res
