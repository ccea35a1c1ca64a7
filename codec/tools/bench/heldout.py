"""The bench's second image set: training-set pixels the tuned encoder never trained on.

The encoder tail in ``codec/zoo`` was trained on a pack of 2 random 256-px crops from EVERY one of
the 1,100 training photos (`codec.tools.training.data.build_crops`, seed 0, photos first shrunk to a
512-px shorter side), minus 24 crops held out for evaluation (``train_encoder``: permutation of
``default_rng(seed + 1)``, the first ``--holdout`` = 24). So no whole training photo is unseen;
what is unseen are the 24 held-out windows, and those overlap the trained crop of the same photo
in all photos but one (bsds500/187071). So this module rebuilds the pack's crop positions
bit-exactly (same file order, same random draws, sizes only) and cuts windows that

- overlap NO crop of the pack (trained or held out): pixels the encoder never saw, and
- come from a photo no calibration read: the rate-control ladder (`ratecontrol_table.json` meta)
  and the fidelity floor (`scripts/calibrate_fidelity.py` sample, seed 5, n 48).

Result: 256×256 RGB PNGs named ``<folder>__<stem>__y<Y>x<X>.png`` (positions in the shrunk photo),
written once into a cache folder.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from codec.tools.training.data import PackSpec, list_photos
from codec.weights import train_dir

FIDELITY_SAMPLE = (5, 48)  # scripts/calibrate_fidelity.py sample(seed, n)


@dataclass(frozen=True)
class Window:
    path: Path
    index: int  # crop index in the pack
    y: int
    x: int
    scale: float  # the shrink factor applied before cropping (1.0 = none)

    @property
    def name(self) -> str:
        return f"{self.path.parent.name}__{self.path.stem}__y{self.y}x{self.x}.png"


def pack_windows(spec: PackSpec = PackSpec(), root: Path | None = None) -> list[Window]:
    """The crop windows of the training pack, in pack order (sizes only: no pixels decoded)."""
    files = list_photos(root or train_dir())
    rng = np.random.default_rng(spec.seed)
    out: list[Window] = []
    for f in files:
        with Image.open(f) as img:
            w, h = img.size
        short = min(w, h)
        s = 1.0
        if short > spec.max_short:
            s = spec.max_short / short
            w, h = round(w * s), round(h * s)
        if h < spec.crop or w < spec.crop:
            continue
        for _ in range(spec.per_image):
            y = int(rng.integers(0, h - spec.crop + 1))
            x = int(rng.integers(0, w - spec.crop + 1))
            rng.random()  # the flip draw
            out.append(Window(f, len(out), y, x, s))
    return out


def _calibration_names(root: Path) -> set[str]:
    names: set[str] = set()
    table = Path(__file__).resolve().parents[2] / "encoder" / "ratecontrol_table.json"
    try:
        meta = json.loads(table.read_text())["meta"]
        names.update(meta.get("images", []))
        names.update(meta.get("images_up", []))
    except (OSError, ValueError, KeyError):
        pass
    seed, n = FIDELITY_SAMPLE
    subs = sorted(p for p in root.iterdir() if p.is_dir())
    rng = random.Random(seed)
    per = -(-n // len(subs))
    for sub in subs:
        files = sorted(p for p in sub.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        names.update(p.name for p in rng.sample(files, min(per, len(files))))
    return names


def heldout_windows(
    n: int = 8, spec: PackSpec = PackSpec(), root: Path | None = None, seed: int = 14
) -> list[Window]:
    """``n`` windows, crop×crop in the shrunk photo, that overlap NO window of the training pack.

    Photos come round-robin from the sub-folders (each shuffled with ``seed``), skipping photos any
    calibration read; in a photo, the first free position in a 16-px raster scan is taken. The
    tail's 24 held-out crops are ignored here: they overlap the trained crop of their photo in all
    but one photo (bsds500/187071), so they are not "never trained on" pixels.
    """
    root = root or train_dir()
    wins = pack_windows(spec, root)
    by_photo: dict[Path, list[Window]] = {}
    for w in wins:
        by_photo.setdefault(w.path, []).append(w)
    skip = _calibration_names(root)
    queues = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        photos = [p for p in by_photo if p.parent == sub and p.name not in skip]
        random.Random(seed).shuffle(photos)
        queues.append(photos)
    out: list[Window] = []
    c = spec.crop
    while len(out) < n and any(queues):
        for q in queues:
            if not q or len(out) >= n:
                continue
            path = q.pop(0)
            taken = by_photo[path]
            with Image.open(path) as img:
                w, h = img.size
            s = taken[0].scale
            w, h = (round(w * s), round(h * s)) if s != 1.0 else (w, h)
            free = next(
                (
                    (y, x)
                    for y in range(0, h - c + 1, 16)
                    for x in range(0, w - c + 1, 16)
                    if all(abs(o.y - y) >= c or abs(o.x - x) >= c for o in taken)
                ),
                None,
            )
            if free is not None:
                out.append(Window(path, -1, free[0], free[1], s))
    return out


def build_heldout(folder: Path, limit: int | None = None, spec: PackSpec = PackSpec()) -> list[Path]:
    """Write the held-out windows as PNGs into ``folder`` (kept when present); returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for w in heldout_windows(limit or 8, spec):
        p = folder / w.name
        if not p.is_file():
            img = Image.open(w.path).convert("RGB")
            if w.scale != 1.0:
                img = img.resize(
                    (round(img.width * w.scale), round(img.height * w.scale)), Image.Resampling.LANCZOS
                )
            img.crop((w.x, w.y, w.x + spec.crop, w.y + spec.crop)).save(p)
        paths.append(p)
    return paths
