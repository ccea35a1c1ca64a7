"""Dynamic batching of encoder/decoder passes for a worker that codes several photos at once.

A GPU runs one 768×512 decoder pass in a few milliseconds, far below what one photo's CPU-side work
(entropy coding, rate search bookkeeping, metrics) leaves it to do; batch 32 costs little more than
batch 1. So a GPU worker runs many photos in threads (Celery ``--pool threads``) against ONE shared
model, and `BatchingAutoencoder` coalesces their concurrent ``encode``/``decode`` calls: the first
call of a kind opens a batch, calls of the same kind and tensor shape that arrive within
``max_wait_s`` (or until ``max_batch`` rows) join it, one batched forward pass runs on a dispatcher
thread and each caller gets its rows back. Like Triton's dynamic batcher, but in-process.

Rules:

- Only calls with the same per-item shape and dtype share a pass (no padding: padding would change the
  pixels near the border). Photos of one size (a camera's) batch; odd sizes run alone.
- A call made with autograd on (encoder-side RDO differentiates through ``decode``) bypasses the
  batcher: gradients must stay in the caller's graph.
- A batch that fails (e.g. out of memory at batch 32) is retried one call at a time, so one caller's
  problem never becomes another's error; each caller gets its own result or exception.
- Rows of a batched pass equal the same rows run alone up to the device's rounding: on CPU fp32 a
  batch of 4 TAESD passes differs from single passes by ≤ 3e-6 (encoder, tuned encoder and decoder
  alike). That can flip the rounding of a latent value near a quantizer decision, so a photo coded in
  a batch may get a file that differs in a few symbols from the file it gets alone — as good, not
  identical (``tests/codec/test_batching.py``; ``codec.tools.bench.throughput`` reports the PSNR between the
  two on the GPU). Decoding a given file stays deterministic per backend up to that rounding (a
  preview rendered in a batch may differ by one level in a few pixels from one rendered alone).

Configuration (read by `codec.models.registry.get_model`): ``CODEC_BATCH_MAX`` (rows per pass;
unset or 1 = no batching, the default) and ``CODEC_BATCH_WAIT_MS`` (default 2 ms).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from codec.errors import UsageError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

BATCH_MAX_ENV = "CODEC_BATCH_MAX"
BATCH_WAIT_ENV = "CODEC_BATCH_WAIT_MS"
DEFAULT_WAIT_MS = 2.0


def batch_settings() -> tuple[int, float]:
    """(max rows per pass, wait in seconds) from the environment; (1, …) means no batching."""
    raw = os.environ.get(BATCH_MAX_ENV, "").strip() or "1"
    wait_raw = os.environ.get(BATCH_WAIT_ENV, "").strip() or str(DEFAULT_WAIT_MS)
    try:
        rows, wait_ms = int(raw), float(wait_raw)
    except ValueError:
        raise UsageError(f"{BATCH_MAX_ENV} must be an integer ≥ 1 and {BATCH_WAIT_ENV} a number of "
                         f"milliseconds ≥ 0, got {raw!r} / {wait_raw!r}") from None
    if rows < 1 or not 0 <= wait_ms <= 1000:
        raise UsageError(f"{BATCH_MAX_ENV} must be ≥ 1 and {BATCH_WAIT_ENV} within 0..1000 ms, "
                         f"got {rows} / {wait_ms}")
    return rows, wait_ms / 1000.0


@dataclass
class _Call:
    x: torch.Tensor
    key: tuple
    arrived: float
    done: threading.Event = field(default_factory=threading.Event)
    out: torch.Tensor | None = None
    error: BaseException | None = None


@dataclass
class BatchStats:
    """What a batcher did: passes by batch size (rows), calls that bypassed it, fallbacks."""

    sizes: Counter = field(default_factory=Counter)
    bypassed: int = 0
    retried_alone: int = 0

    @property
    def passes(self) -> int:
        return sum(self.sizes.values())

    @property
    def rows(self) -> int:
        return sum(size * n for size, n in self.sizes.items())


class Batcher:
    """A callable ``(N, …) → (N, …)`` tensor function whose concurrent calls share forward passes."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], *, max_batch: int,
                 max_wait_s: float = DEFAULT_WAIT_MS / 1000, name: str = "batcher") -> None:
        if max_batch < 1:
            raise UsageError(f"max_batch must be ≥ 1, got {max_batch}")
        self.fn, self.max_batch, self.max_wait_s, self.name = fn, max_batch, max_wait_s, name
        self.stats = BatchStats()
        self._pending: list[_Call] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        import torch

        if (torch.is_grad_enabled() and x.requires_grad) or x.shape[0] >= self.max_batch:
            with self._cond:
                self.stats.bypassed += 1
            return self.fn(x)
        call = _Call(x.detach(), (tuple(x.shape[1:]), x.dtype, x.device), time.monotonic())
        with self._cond:
            self._ensure_thread()
            self._pending.append(call)
            self._cond.notify_all()
        call.done.wait()
        if call.error is not None:
            raise call.error
        assert call.out is not None
        return call.out

    # ------------------------------------------------------------------ dispatcher

    def _ensure_thread(self) -> None:
        """Start the dispatcher (again in a forked child, whose copy of the thread does not run)."""
        if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name=f"codec-{self.name}", daemon=True)
            self._thread.start()

    def _take_batch(self) -> list[_Call]:
        """Wait for a call, then for company of the same key until the batch is full or the first
        call has waited ``max_wait_s``. Called with the condition held."""
        while not self._pending:
            self._cond.wait()
        first = self._pending[0]
        deadline = first.arrived + self.max_wait_s
        while True:
            same = [c for c in self._pending if c.key == first.key]
            rows = sum(c.x.shape[0] for c in same)
            left = deadline - time.monotonic()
            if rows >= self.max_batch or left <= 0:
                break
            self._cond.wait(left)
        batch, rows = [], 0
        for c in same:
            if rows + c.x.shape[0] > self.max_batch and batch:
                break
            batch.append(c)
            rows += c.x.shape[0]
        taken = {id(c) for c in batch}
        self._pending = [c for c in self._pending if id(c) not in taken]
        return batch

    def _run(self) -> None:
        while True:
            with self._cond:
                batch = self._take_batch()
            self._execute(batch)

    def _execute(self, batch: list[_Call]) -> None:
        import torch

        try:
            with torch.no_grad():
                if len(batch) == 1:
                    outs = [self.fn(batch[0].x)]
                else:
                    y = self.fn(torch.cat([c.x for c in batch]))
                    outs = list(torch.split(y, [c.x.shape[0] for c in batch]))
            with self._cond:
                self.stats.sizes[sum(c.x.shape[0] for c in batch)] += 1
            for c, out in zip(batch, outs, strict=True):
                c.out = out.contiguous() if len(batch) > 1 else out
                c.done.set()
            return
        except BaseException as exc:  # handed to the callers, never lost
            if len(batch) == 1:
                batch[0].error = exc
                batch[0].done.set()
                return
            log.warning("%s: batched pass of %d calls failed (%s); running them one by one",
                        self.name, len(batch), exc)
        with self._cond:
            self.stats.retried_alone += len(batch)
        for c in batch:
            self._execute([c])


class BatchingAutoencoder:
    """A `LatentAutoencoder` whose ``encode``/``decode`` batch concurrent calls (see module docstring).

    Everything else (name, ids, device, dtype, the underlying torch module ``ae`` that the tuned
    encoder is built from) is the wrapped model's.
    """

    def __init__(self, base: Any, *, max_batch: int, max_wait_s: float = DEFAULT_WAIT_MS / 1000) -> None:
        self.base, self.max_batch, self.max_wait_s = base, max_batch, max_wait_s
        for name in ("name", "model_id", "latent_channels", "downscale", "device", "dtype"):
            setattr(self, name, getattr(base, name))
        self._encode = Batcher(base.encode, max_batch=max_batch, max_wait_s=max_wait_s, name="encode")
        self._decode = Batcher(base.decode, max_batch=max_batch, max_wait_s=max_wait_s, name="decode")
        self.batchers: list[Batcher] = [self._encode, self._decode]

    def __getattr__(self, name: str) -> Any:  # spec, ae, … of the wrapped model
        if name == "base":
            raise AttributeError(name)
        return getattr(self.base, name)

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        """A deep copy is a copy of the wrapped model (what callers copy to fine-tune, see base.py);
        the dispatcher threads and their queues are not copied."""
        import copy

        return copy.deepcopy(self.base, memo)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self._encode(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self._decode(z)

    def batch_callable(self, fn: Callable[[torch.Tensor], torch.Tensor], name: str) -> Batcher:
        """Another network of this model (e.g. the tuned encoder) behind the same batching rules."""
        b = Batcher(fn, max_batch=self.max_batch, max_wait_s=self.max_wait_s, name=name)
        self.batchers.append(b)
        return b

    def stats(self) -> dict[str, BatchStats]:
        return {b.name: b.stats for b in self.batchers}

    def __repr__(self) -> str:
        wait_ms = self.max_wait_s * 1e3
        return f"BatchingAutoencoder({self.base!r}, max_batch={self.max_batch}, wait={wait_ms:g} ms)"
