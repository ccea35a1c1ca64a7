"""The codecs a bench row can use, behind one small interface (one adapter per kind).

Each adapter encodes an RGB uint8 image at a byte budget and decodes back to an array of the
original size; ``fingerprint()`` identifies the code + libraries behind its numbers so that cached
rows are reused only while they are still valid.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import PIL
import torch
from PIL import features

import codec
from codec.baselines import FORMATS, decode_baseline, encode_at_budget
from codec.errors import BudgetError, UsageError
from codec.seed_codec import decode_seed, encode_seed

CODEC_DIR = Path(__file__).resolve().parents[2]  # codec/ (this file: codec/tools/bench/codecs.py)
#: what the latent rows do not depend on (everything else under codec/ is in their cache key)
LATENT_EXCLUDE = ("tools", "baselines.py", "seed_codec.py", "cli.py", "__main__.py")
#: Order of the codecs in tables, plots and the default run.
ALL_CODECS = ("latent", "seed", "jpeg", "webp", "avif", "jxl")


@dataclass
class Encoded:
    """One encode: the file, whether it met the budget, and what the codec wants to note."""
    data: bytes
    fits: bool
    encode_s: float
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class BenchCodec(Protocol):
    name: str
    extension: str
    #: False: the codec has no rate control; it is encoded once per image and compared with each budget.
    budgeted: bool

    def fingerprint(self) -> str: ...

    def encode(self, rgb: np.ndarray, max_bytes: int) -> Encoded: ...

    def decode(self, data: bytes, size: tuple[int, int]) -> np.ndarray: ...


#: the metric modules whose numbers a bench row holds: only these key the classical and seed rows (a
#: new metric elsewhere in codec/metrics/ must not invalidate every cached AVIF/WebP/JXL row)
ROW_METRIC_FILES = ["metrics/_check.py", "metrics/psnr.py", "metrics/msssim.py", "metrics/lpips.py",
                    "metrics/lpips_alex.py"]


def _hash_files(paths: list[Path], *extra: str) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(str(p.relative_to(CODEC_DIR)).encode())
        h.update(p.read_bytes())
    for e in extra:
        h.update(e.encode())
    return h.hexdigest()[:16]


def _codec_files(include: list[str] | None = None, exclude: tuple[str, ...] = ()) -> list[Path]:
    """Files under codec/ (weights included, caches not); ``include``: only these relative paths/dirs."""
    out = []
    for p in CODEC_DIR.rglob("*"):
        if not p.is_file() or "__pycache__" in p.parts or p.suffix == ".pyc":
            continue
        rel = p.relative_to(CODEC_DIR).as_posix()
        if include is not None and not any(rel == i or rel.startswith(i.rstrip("/") + "/") for i in include):
            continue
        if any(rel == e or rel.startswith(e.rstrip("/") + "/") for e in exclude):
            continue
        out.append(p)
    return out


def _torch_version() -> str:
    return torch.__version__


class LatentCodec:
    """Ours: `codec.encode(img, max_bytes=..., effort=...)` / `codec.decode(data)`."""
    name = "latent"
    extension = ".lat"
    budgeted = True

    def __init__(self, effort: str = "default", device: str | None = None) -> None:
        self.effort, self.device = effort, device

    def fingerprint(self) -> str:
        # Any change to the codec (code or weights kept in the repo) invalidates cached rows.
        files = _codec_files(exclude=LATENT_EXCLUDE)
        return _hash_files(files, self.effort, str(self.device), _torch_version())

    def encode(self, rgb: np.ndarray, max_bytes: int) -> Encoded:
        t0 = time.perf_counter()
        try:
            data = codec.encode(rgb, max_bytes=max_bytes, effort=self.effort, device=self.device)
            fits, note = True, ""
        except BudgetError as exc:
            # The row still shows the smallest file the codec can make (quality 1).
            data = codec.encode(rgb, quality=1, effort=self.effort, device=self.device)
            fits, note = len(data) <= max_bytes, f"budget not met: {exc}"
        elapsed = time.perf_counter() - t0
        extra: dict[str, Any] = {}
        try:
            meta = codec.info(data)
            extra = {k: meta[k] for k in ("coded_width", "coded_height", "levels", "entropy_coder")
                     if k in meta}
            extra.update({k: meta[k] for k in ("fidelity_min", "fidelity_mean", "fidelity_floor_met")
                          if k in meta})
        except Exception as exc:  # info is informative only; never lose the row for it
            extra = {"info_error": str(exc)}
        return Encoded(data, fits and len(data) <= max_bytes, elapsed, note, extra)

    def decode(self, data: bytes, size: tuple[int, int]) -> np.ndarray:
        img = codec.decode(data, device=self.device)
        if img.size != tuple(size):
            raise RuntimeError(f"latent decode returned {img.size}, expected {size}")
        return np.asarray(img.convert("RGB"), dtype=np.uint8)


class SeedCodec:
    """The published palette trick (`codec.seed_codec`); natural size, no rate control."""
    name = "seed"
    extension = ".seed"
    budgeted = False

    def __init__(self, device: str | None = None) -> None:
        self.device = device

    def fingerprint(self) -> str:
        files = _codec_files(
            include=["seed_codec.py", "models", "imageio.py", "weights.py", "device.py", *ROW_METRIC_FILES]
        )
        return _hash_files(files, str(self.device), _torch_version())

    def encode(self, rgb: np.ndarray, max_bytes: int) -> Encoded:
        t0 = time.perf_counter()
        data = encode_seed(rgb, device=self.device)
        elapsed = time.perf_counter() - t0
        return Encoded(data, len(data) <= max_bytes, elapsed, "natural size (no rate control)")

    def decode(self, data: bytes, size: tuple[int, int]) -> np.ndarray:
        return decode_seed(data, device=self.device)


class BaselineCodec:
    """JPEG / WebP / AVIF / JPEG XL via `codec.baselines` (quality search, full resolution)."""
    budgeted = True

    def __init__(self, fmt: str, mode: str = "quality") -> None:
        self.name, self.mode = fmt, mode
        self.extension = FORMATS[fmt].extension

    def fingerprint(self) -> str:
        libs = f"{PIL.__version__} avif={features.version('avif')} jpg={features.version('jpg')} " \
               f"webp={features.version('webp')}"
        try:
            from importlib.metadata import version

            libs += f" jxl={version('pillow-jxl-plugin')}"
        except Exception:  # pragma: no cover - metadata missing
            pass
        return _hash_files(_codec_files(include=["baselines.py", *ROW_METRIC_FILES]), libs, self.mode)

    def encode(self, rgb: np.ndarray, max_bytes: int) -> Encoded:
        r = encode_at_budget(rgb, self.name, max_bytes, mode=self.mode)
        extra = {"quality": r.quality, "coded_width": r.width, "coded_height": r.height,
                 "search_trials": r.trials, "final_encode_s": r.final_encode_s}
        return Encoded(r.data, r.fits, r.encode_s, r.note, extra)

    def decode(self, data: bytes, size: tuple[int, int]) -> np.ndarray:
        return decode_baseline(data, size=size)


def make_codec(name: str, *, effort: str = "default", device: str | None = None) -> BenchCodec:
    """The adapter for a codec name in `ALL_CODECS`."""
    if name == "latent":
        return LatentCodec(effort, device)
    if name == "seed":
        return SeedCodec(device)
    if name in ("jpeg", "webp", "avif", "jxl"):
        return BaselineCodec(name)
    raise UsageError(f"unknown bench codec {name!r} (known: {', '.join(ALL_CODECS)})")
