"""What the numbers were measured on (for report.md)."""

from __future__ import annotations

import os
import platform
from typing import Any


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> str:
    """1/5/15-minute load averages: timings on a shared CPU are only comparable at similar load."""
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover - not on Linux
        return "n/a"


def describe(device: str | None = None) -> dict[str, Any]:
    """CPU model, cores, load, torch threads/version, the latent codec's device, library versions."""
    import PIL
    import torch
    from PIL import features

    from codec.device import resolve_device

    dev = resolve_device(device)
    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cpu_cores": os.cpu_count(),
        "load_average_at_report": load_average(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "pillow": PIL.__version__,
        "libavif": features.version("avif"),
        "libwebp": features.version("webp"),
        "libjpeg": features.version("jpg"),
        "latent_device": str(dev),
    }
    if dev.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(dev)
    elif torch.cuda.is_available():
        info["gpu_available"] = torch.cuda.get_device_name(0)
    try:
        from importlib.metadata import version

        info["pillow_jxl_plugin"] = version("pillow-jxl-plugin")
        info["pytorch_msssim"] = version("pytorch-msssim")
    except Exception:  # pragma: no cover
        pass
    return info
