"""Device and dtype choice for the autoencoders.

Policy:

- ``device=None`` → ``$CODEC_DEVICE`` if set, else ``cuda`` when a CUDA GPU is available, else ``cpu``.
- ``device="cpu"`` → float32. ``device="cuda"`` (or ``"cuda:N"``) → float16, the models are tiny and
  fp16 halves memory traffic. A request for CUDA on a machine without it raises ``UsageError``.
- ``$CODEC_NUM_THREADS`` (if set) caps torch's CPU threads when a model is loaded; otherwise torch's
  default (one per physical core) is kept.

Determinism (what :func:`make_deterministic` sets, called on every model load):

- cuDNN: ``deterministic=True``, ``benchmark=False`` (no autotuner picking different kernels per run),
  TF32 off for convolutions and matmuls (so fp32 results do not depend on the GPU generation's defaults).
- CPU: torch's CPU convolutions are deterministic for a fixed thread count; decode uses no random
  numbers (TAESD decoders are deterministic; ``sd-vae`` uses the posterior mode, never a sample).

The same latents decoded twice on the same device, dtype and thread count give bit-identical pixels.
Results across devices (CPU fp32 vs GPU fp16) differ by rounding only, which is why the bitstream
stores latents, not pixels. torch is imported lazily so that importing this module is cheap.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from codec.errors import UsageError

if TYPE_CHECKING:
    import torch

DEVICE_ENV = "CODEC_DEVICE"
THREADS_ENV = "CODEC_NUM_THREADS"


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """Turn ``None | "cpu" | "cuda" | "cuda:N" | torch.device`` into a usable ``torch.device``."""
    import torch

    if device is None or (isinstance(device, str) and device.strip().lower() in {"", "auto"}):
        env = os.environ.get(DEVICE_ENV, "").strip()
        if env and env.lower() != "auto":
            return resolve_device(env)
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise UsageError(f"invalid device {device!r}: use 'cpu', 'cuda' or 'cuda:N'") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError("device 'cuda' requested but no CUDA GPU is available (use --device cpu)")
        if dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
        elif dev.index >= torch.cuda.device_count():
            raise UsageError(f"device {device!r} does not exist ({torch.cuda.device_count()} GPU(s))")
    elif dev.type != "cpu":
        raise UsageError(f"unsupported device {device!r}: use 'cpu' or 'cuda'")
    return dev


def default_dtype(device: torch.device) -> torch.dtype:
    """float16 on CUDA, float32 elsewhere."""
    import torch

    return torch.float16 if device.type == "cuda" else torch.float32


def apply_thread_limit() -> None:
    """Cap torch CPU threads at ``$CODEC_NUM_THREADS`` when that variable is set."""
    import torch

    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return
    try:
        n = int(raw)
    except ValueError:
        raise UsageError(f"{THREADS_ENV} must be a positive integer, got {raw!r}") from None
    if n < 1:
        raise UsageError(f"{THREADS_ENV} must be a positive integer, got {raw!r}")
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def make_deterministic(device: torch.device) -> None:
    """Process-wide settings that make decode repeatable on ``device`` (see module docstring)."""
    import torch

    apply_thread_limit()
    if device.type == "cuda":
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
