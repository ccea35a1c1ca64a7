"""The training pack: random crops of the training photos + the frozen encoder prefix's features.

Source: ``$CODEC_TRAIN_DIR`` → ``../shared/data/train`` (via `codec.weights.train_dir`; Kodak is never
read here). Every photo whose shorter side exceeds ``max_short`` is first downscaled (Lanczos) to that
shorter side, so the very large ImageNet photos do not turn into texture close-ups; then
``per_image`` random ``crop``×``crop`` windows are cut, each flipped left–right with probability ½.
All randomness comes from ``seed``; files are visited in sorted order, so the pack is reproducible.

Only the later encoder blocks are trained, so the frozen prefix (layers ``0 .. first_trainable-1``)
runs once per crop here and its output is cached (float16) next to the crops. Both arrays live in
``training-cache/`` (git-ignored), named after their parameters, and are reused when present.
"""

from __future__ import annotations

import copy
import hashlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from codec.weights import project_root, train_dir

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


@dataclass(frozen=True)
class PackSpec:
    crop: int = 256
    per_image: int = 2
    max_short: int = 512
    seed: int = 0

    def name(self) -> str:
        return f"crops_c{self.crop}_k{self.per_image}_s{self.max_short}_seed{self.seed}"


def cache_dir() -> Path:
    d = project_root() / "training-cache"
    d.mkdir(exist_ok=True)
    return d


def list_photos(root: Path) -> list[Path]:
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if any("kodim" in p.name.lower() for p in files):
        raise RuntimeError(f"{root} contains Kodak images: the training set must not include the test set")
    return files


def build_crops(spec: PackSpec, root: Path | None = None) -> np.ndarray:
    """(N, crop, crop, 3) uint8, cached as ``training-cache/<name>.npy``."""
    path = cache_dir() / f"{spec.name()}.npy"
    if path.is_file():
        return np.load(path, mmap_mode="r")
    root = root or train_dir()
    files = list_photos(root)
    if not files:
        raise RuntimeError(f"no training photos in {root}")
    rng = np.random.default_rng(spec.seed)
    crops: list[np.ndarray] = []
    for f in files:
        img = Image.open(f).convert("RGB")
        short = min(img.size)
        if short > spec.max_short:
            s = spec.max_short / short
            img = img.resize((round(img.width * s), round(img.height * s)), Image.Resampling.LANCZOS)
        a = np.asarray(img)
        h, w = a.shape[:2]
        if h < spec.crop or w < spec.crop:
            continue
        for _ in range(spec.per_image):
            y = int(rng.integers(0, h - spec.crop + 1))
            x = int(rng.integers(0, w - spec.crop + 1))
            c = a[y : y + spec.crop, x : x + spec.crop]
            if rng.random() < 0.5:
                c = c[:, ::-1]
            crops.append(np.ascontiguousarray(c))
    arr = np.stack(crops)
    np.save(path, arr)
    print(f"[data] {len(arr)} crops from {len(files)} photos → {path}", file=sys.stderr)
    return np.load(path, mmap_mode="r")


def prefix_tag(prefix: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in prefix.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:10]


def build_features(
    spec: PackSpec, crops: np.ndarray, prefix: torch.nn.Module, batch: int = 8, bf16: bool = True
) -> torch.Tensor:
    """The frozen prefix's output for every crop, (N, C, crop/s, crop/s) float16, cached on disk.

    ``bf16``: run the prefix under CPU bfloat16 autocast (≈ 2× faster; 0.4 % relative difference
    from float32, far below what the trained tail has to absorb anyway).
    """
    path = cache_dir() / f"{spec.name()}_feat_{prefix_tag(prefix)}{'_bf16' if bf16 else ''}.pt"
    if path.is_file():
        return torch.load(path, weights_only=True)
    out: list[torch.Tensor] = []
    t0 = time.perf_counter()
    prefix = copy.deepcopy(prefix).to(memory_format=torch.channels_last)
    dev = next(prefix.parameters()).device
    bf16 = bf16 and dev.type == "cpu"  # on a GPU the float32 pass is cheap anyway
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for i in range(0, len(crops), batch):
            x = torch.from_numpy(np.array(crops[i : i + batch])).permute(0, 3, 1, 2).to(dev).float() / 255.0
            y = prefix(x.contiguous(memory_format=torch.channels_last))
            out.append(y.float().half().contiguous().cpu())
            if (i // batch) % 25 == 0:
                done, el = i + len(x), time.perf_counter() - t0
                print(f"[data] features {done}/{len(crops)} ({el:.0f} s)", file=sys.stderr)
    feats = torch.cat(out)
    torch.save(feats, path)
    return feats


class CropSampler:
    """Random aligned sub-crops: (features window, image window) pairs for one training step.

    The tail runs on the whole cached feature map (so it sees real context, as on a full image) and
    the latent is cut afterwards; ``window`` is the image-space sub-crop side (multiple of ``down``).
    """

    def __init__(
        self, crops: np.ndarray, feats: torch.Tensor, window: int, down: int = 8, seed: int = 0
    ) -> None:
        self.crops, self.feats, self.window, self.down = crops, feats, window, down
        self.crop = crops.shape[1]
        self.g = torch.Generator().manual_seed(seed)
        if window % down or window > self.crop:
            raise ValueError(f"window {window} must be a multiple of {down} and ≤ {self.crop}")

    def __len__(self) -> int:
        return len(self.crops)

    def sample(self, batch: int) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
        """(features (B,C,f,f) float32, target images (B,3,window,window) in [0,1], latent offset)."""
        idx = torch.randint(0, len(self.crops), (batch,), generator=self.g)
        n_off = (self.crop - self.window) // self.down + 1
        oy, ox = (int(v) for v in torch.randint(0, n_off, (2,), generator=self.g))
        f = self.feats[idx].float()
        sel = np.sort(idx.numpy())
        order = np.argsort(np.argsort(idx.numpy()))
        imgs = np.array(self.crops[sel])[order]
        y0, x0 = oy * self.down, ox * self.down
        x = torch.from_numpy(imgs[:, y0 : y0 + self.window, x0 : x0 + self.window]).permute(0, 3, 1, 2)
        return f, x.float() / 255.0, (oy, ox)
