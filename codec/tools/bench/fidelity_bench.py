"""The "Fidelity guard" part of ``make bench`` (issue 5), called through `codec.tools.bench.fidelity_hook`.

For every Kodak image × budget it compares the latent file the bench already wrote (encoded with the
guard on, the default) with the same encode without the guard (``min_fidelity=0``):

* images with a block below the floor, share of all blocks below it, mean worst block, mean fidelity;
* bytes (total, and spent by the guard: patch layer or a whole-file AVIF fallback), MS-SSIM, LPIPS;
* a crop grid of the worst blocks (original | without | with guard) in ``<out>/fidelity/``.

Then the same comparison on the synthetic hard cases of `codec.tools.bench.synthetic` (text at several sizes,
text on a photo, line art, faces), written to ``<out>/fidelity/synthetic/`` as PNG so they can be
inspected. The file without the guard is always encoded afresh (``min_fidelity=0``); when it holds
the same latent as the guarded one it is not decoded again. Every measurement is cached in
``<out>/fidelity/cache`` (keyed by the guarded file's sha256 and the floor), so a re-run only measures
what changed.
"""

from __future__ import annotations

import hashlib
import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

import codec
from codec.container.header import pack, parse
from codec.errors import BudgetError
from codec.metrics import fidelity
from codec.metrics.fidelity import BLOCK, measure
from codec.tools.bench.codecs import LatentCodec
from codec.tools.bench.fidelity_hook import BenchContext
from codec.tools.bench.plots import crop_grid
from codec.tools.bench.runner import max_bytes_for
from codec.tools.bench.synthetic import write_cases

CONTEXT = 32  # pixels of context around the worst block in the crop grid
ZOOM = 2
GRID_IMAGES = 6
SYNTHETIC_SIZE = (768, 512)  # (width, height): Kodak's size
CACHE_VERSION = 4  # 4: patched files were taken for the plain one


@dataclass
class Pair:
    """One image at one budget, without and with the guard."""
    image: str
    bpp: float
    without: dict[str, Any]
    with_: dict[str, Any]
    crops: Path | None = None  # <cache>/<name>.{original,without,with}.png: the worst block

    def crop(self, which: str) -> np.ndarray:
        assert self.crops is not None
        return np.asarray(Image.open(f"{self.crops}.{which}.png").convert("RGB"))


def _key(bpp: float) -> str:
    return f"{bpp:.4f}"


def _strip_tags(data: bytes) -> bytes:
    """``data`` without the guard's fidelity tags. A patch layer is kept: a patched file shows another
    picture than the plain one, so it must never compare equal to it (`_pair` measures both then)."""
    header, payload = parse(data)
    header.fidelity_min = header.fidelity_mean = header.fidelity_floor_met = header.fidelity_floor = None
    for name in GUARD_TAGS:  # the identity check's tags (issue 12) are the guard's too
        setattr(header, name, None)
    return pack(header, payload)


GUARD_TAGS = ("faces_found", "faces_too_small", "worst_identity_distance", "worst_landmark_shift",
              "faces_kept", "text_cer", "text_numbers_kept", "text_words_kept", "worst_small_face_detail",
              "target", "target_met", "protection_bytes", "patch_seams")


def _measure_file(ctx: BenchContext, rgb: np.ndarray, data: bytes, floor: float) -> tuple[dict, np.ndarray]:
    dec = np.asarray(codec.decode(data, device=ctx.device).convert("RGB"))
    rep = measure(rgb, dec, floor)
    meta = codec.info(data)
    out = {
        "bytes": len(data),
        "min": rep.min,
        "mean": rep.mean,
        "below": rep.below,
        "blocks": rep.blocks,
        "worst_block": list(rep.worst_block),
        "guard": meta.get("guard"),
        "guard_bytes": meta.get("guard_bytes", 0),
        "payload_kind": meta.get("payload_kind"),
    }
    out.update({k: ctx.metrics(rgb, dec).get(k) for k in ("ms_ssim", "lpips")})
    return out, dec


class _Cache:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def get(self, name: str, fingerprint: str) -> dict | None:
        try:
            cached = json.loads((self.folder / f"{name}.json").read_text())
        except (OSError, ValueError):
            return None
        return cached["value"] if cached.get("fingerprint") == fingerprint else None

    def put(self, name: str, fingerprint: str, value: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{name}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"fingerprint": fingerprint, "value": value}))
        tmp.replace(path)


def _pair(
    ctx: BenchContext,
    cache: _Cache,
    name: str,
    rgb: np.ndarray,
    guarded: bytes | None,
    max_bytes: int,
    floor: float,
    encode_fp: str,
) -> Pair | None:
    """Measure one image at one budget. ``guarded`` None: encode it here (synthetic cases)."""
    bpp = max_bytes * 8 / (rgb.shape[0] * rgb.shape[1])
    fp = hashlib.sha256(
        f"{CACHE_VERSION} {floor} {encode_fp} {max_bytes}".encode() + (guarded or b"")
    ).hexdigest()[:20]
    crops = cache.folder / name
    cached = cache.get(name, fp)
    if cached is not None and all(
        Path(f"{crops}.{w}.png").is_file() for w in ("original", "without", "with")
    ):
        return Pair(name, bpp, cached["without"], cached["with"], crops)
    try:
        if guarded is None:
            guarded = codec.encode(rgb, max_bytes=max_bytes, effort=ctx.effort, device=ctx.device)
        with_, dec_with = _measure_file(ctx, rgb, guarded, floor)
        # always a fresh encode: even with guard "none" the guard may have chosen a smaller latent
        plain = codec.encode(rgb, max_bytes=max_bytes, effort=ctx.effort, device=ctx.device, min_fidelity=0)
        if _strip_tags(guarded) == plain:  # the same latent: the same picture, no second decode
            without, dec_without = dict(with_, bytes=len(plain), guard=None, guard_bytes=0), dec_with
        else:
            without, dec_without = _measure_file(ctx, rgb, plain, floor)
    except BudgetError as exc:
        ctx.log(f"fidelity bench: {name} does not fit {max_bytes} bytes: {exc}")
        return None
    crops.parent.mkdir(parents=True, exist_ok=True)
    for which, img in (("original", rgb), ("without", dec_without), ("with", dec_with)):
        Image.fromarray(_crop(img, without["worst_block"])).save(f"{crops}.{which}.png")
    cache.put(name, fp, {"without": without, "with": with_})
    return Pair(name, bpp, without, with_, crops)


def _crop(rgb: np.ndarray, block: list[int]) -> np.ndarray:
    """The block with `CONTEXT` pixels around it, zoomed `ZOOM`×, the block outlined."""
    x, y, w, h = block
    h_img, w_img = rgb.shape[:2]
    side = max(w, h) + 2 * CONTEXT
    x0 = int(np.clip(x - CONTEXT, 0, max(0, w_img - side)))
    y0 = int(np.clip(y - CONTEXT, 0, max(0, h_img - side)))
    crop = np.ascontiguousarray(rgb[y0 : y0 + side, x0 : x0 + side])
    img = Image.fromarray(crop).resize((crop.shape[1] * ZOOM, crop.shape[0] * ZOOM), Image.Resampling.NEAREST)
    bx, by = (x - x0) * ZOOM, (y - y0) * ZOOM
    ImageDraw.Draw(img).rectangle((bx - 1, by - 1, bx + w * ZOOM, by + h * ZOOM), outline=(255, 230, 0))
    return np.asarray(img)


def _grid(pairs: list[Pair], path: Path, title: str) -> str | None:
    rows = []
    for p in pairs:
        block = p.without["worst_block"]
        w, g = p.without, p.with_
        rows.append(
            [
                (p.crop("original"), ["original", f"{p.image} block at ({block[0]},{block[1]})"]),
                (p.crop("without"), ["without guard", f"worst {w['min']:.3f}, {w['bytes']:,} B"]),
                (
                    p.crop("with"),
                    [
                        "with guard",
                        f"worst {g['min']:.3f}, {g['bytes']:,} B, {g['guard']} {g['guard_bytes']:,} B",
                    ],
                ),
            ]
        )
    if not rows:
        return None
    crop_grid(rows, path, title)
    return path.name


def _mean(values: list[Any]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return statistics.fmean(vals) if vals else None


def _fmt(v: float | None, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def _share(pairs: list[Pair], which: str) -> float:
    below = sum(getattr(p, which)["below"] for p in pairs)
    return below / max(1, sum(getattr(p, which)["blocks"] for p in pairs))


def _summary(pairs: list[Pair], floor: float) -> list[str]:
    lines = ["| | without guard | with guard |", "|---|---|---|"]

    def row(label: str, fn) -> None:
        lines.append(f"| {label} | {fn('without')} | {fn('with_')} |")

    def side(p: Pair, which: str) -> dict:
        return getattr(p, which)

    n = len(pairs)
    row(
        "images with a block below the floor",
        lambda w: f"{sum(side(p, w)['below'] > 0 for p in pairs)} / {n}",
    )
    row(
        "blocks below the floor",
        lambda w: f"{100 * _share(pairs, w):.2f} %",
    )
    row("mean worst block", lambda w: _fmt(_mean([side(p, w)["min"] for p in pairs])))
    row("lowest worst block", lambda w: _fmt(min(side(p, w)["min"] for p in pairs)))
    row("mean block fidelity", lambda w: _fmt(_mean([side(p, w)["mean"] for p in pairs])))
    row("MS-SSIM (mean)", lambda w: _fmt(_mean([side(p, w)["ms_ssim"] for p in pairs]), 4))
    row("LPIPS (mean)", lambda w: _fmt(_mean([side(p, w)["lpips"] for p in pairs]), 4))
    row("bytes (mean)", lambda w: f"{_mean([side(p, w)['bytes'] for p in pairs]):,.0f}")
    row(
        "bytes spent on the guard (total)",
        lambda w: f"{sum(side(p, w)['guard_bytes'] or 0 for p in pairs):,}",
    )
    acted = [p for p in pairs if p.with_["guard"] not in (None, "none")]
    lines.append(
        f"| guard actions | – | {sum(p.with_['guard'] == 'patches' for p in acted)} patch layers, "
        f"{sum(p.with_['guard'] == 'avif' for p in acted)} AVIF fallbacks |"
    )
    return lines


def _details(pairs: list[Pair]) -> list[str]:
    acted = [p for p in pairs if p.with_["guard"] not in (None, "none") or p.without["below"]]
    if not acted:
        return []
    lines = [
        "",
        "| image | worst block without → with | blocks below | bytes without → with | guard (bytes) "
        "| MS-SSIM without → with |",
        "|---|---|---|---|---|---|",
    ]
    for p in acted:
        w, g = p.without, p.with_
        lines.append(
            f"| {p.image} | {w['min']:.3f} → {g['min']:.3f} | {w['below']} → {g['below']} | "
            f"{w['bytes']:,} → {g['bytes']:,} | {g['guard']} ({g['guard_bytes']:,}) | "
            f"{_fmt(w['ms_ssim'], 4)} → {_fmt(g['ms_ssim'], 4)} |"
        )
    return lines


def bench_section(ctx: BenchContext) -> str:
    """Markdown for report.md (see the module docstring)."""
    floor = fidelity.DEFAULT_MIN_FIDELITY
    out = ctx.out_dir / "fidelity"
    cache = _Cache(out / "cache")
    encode_fp = LatentCodec(ctx.effort, ctx.device).fingerprint()
    parts = [
        f"Floor {floor:.2f} on the worst {BLOCK}×{BLOCK} block "
        "(`codec.metrics.fidelity.DEFAULT_MIN_FIDELITY`, "
        'calibrated on training photos). "With guard" is the bench\'s latent file; "without" the same '
        "encode with `min_fidelity=0`."
    ]

    for bpp in ctx.bpps:
        pairs: list[Pair] = []
        for path in ctx.images:
            stream = ctx.out_dir / "streams" / "latent" / f"{path.stem}@{_key(bpp)}.lat"
            row = next(
                (
                    r
                    for r in ctx.rows
                    if r["image"] == path.name and r["codec"] == "latent" and r["target_bpp"] == bpp
                ),
                None,
            )
            if not stream.is_file() or row is None or not row.get("fits"):
                continue
            name = f"kodak-{path.stem}@{_key(bpp)}"
            pair = _pair(
                ctx, cache, name, ctx.load(path), stream.read_bytes(), row["max_bytes"], floor, encode_fp
            )
            if pair is None:
                continue
            pair.image, pair.bpp = path.name, bpp
            pairs.append(pair)
            ctx.log(
                f"fidelity {path.name} @{bpp}: worst {pair.without['min']:.3f} → {pair.with_['min']:.3f} "
                f"({pair.with_['guard']})"
            )
        if not pairs:
            continue
        parts += ["", f"### {bpp:g} bpp, {len(pairs)} images", "", *_summary(pairs, floor), *_details(pairs)]
        worst = sorted(pairs, key=lambda p: p.without["min"])[:GRID_IMAGES]
        grid = _grid(
            worst,
            out / f"worst_blocks_{bpp:.2f}bpp.png",
            f"Worst blocks at {bpp:g} bpp: original | without guard | with guard ({ZOOM}x zoom)",
        )
        if grid:
            parts.append(f"\n![worst blocks {bpp:g} bpp](fidelity/{grid})")

    # ---------------------------------------------------------------- synthetic hard cases
    syn_rows: list[str] = [
        "",
        "### Synthetic hard cases (`codec.tools.bench.synthetic`)",
        "",
        "| case | bpp | worst block without → with | blocks below without → with | "
        "bytes without → with | guard (bytes) | MS-SSIM without → with |",
        "|---|---|---|---|---|---|---|",
    ]
    syn_pairs: list[Pair] = []
    for path in write_cases(out / "synthetic", *SYNTHETIC_SIZE):
        rgb = ctx.load(path)
        for bpp in ctx.bpps:
            mb = max_bytes_for(bpp, rgb.shape[1], rgb.shape[0])
            pair = _pair(ctx, cache, f"{path.stem}@{_key(bpp)}", rgb, None, mb, floor, encode_fp)
            if pair is None:
                continue
            pair.image, pair.bpp = path.name, bpp
            syn_pairs.append(pair)
            w, g = pair.without, pair.with_
            syn_rows.append(
                f"| {path.stem.removeprefix('synthetic_')} | {bpp:g} | {w['min']:.3f} → {g['min']:.3f} | "
                f"{w['below']} → {g['below']} of {w['blocks']} | {w['bytes']:,} → {g['bytes']:,} | "
                f"{g['guard']} ({g['guard_bytes']:,}) | {_fmt(w['ms_ssim'], 4)} → {_fmt(g['ms_ssim'], 4)} |"
            )
            ctx.log(f"fidelity {path.name} @{bpp}: worst {w['min']:.3f} → {g['min']:.3f} ({g['guard']})")
    parts += syn_rows
    mid = sorted(ctx.bpps)[len(ctx.bpps) // 2]
    grid = _grid(
        [p for p in syn_pairs if p.bpp == mid],
        out / f"synthetic_worst_blocks_{mid:.2f}bpp.png",
        f"Synthetic cases at {mid:g} bpp, worst block: original | without guard | with guard",
    )
    if grid:
        parts.append(f"\n![synthetic worst blocks](fidelity/{grid})")
    return "\n".join(parts) + "\n"
