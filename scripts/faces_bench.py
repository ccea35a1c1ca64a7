"""Faces benchmark: identity distance, landmark shift and still-detected per face, for the latent codec
against AVIF and WebP at the same bytes (``codec.baselines.encode_at_budget``), at several bpp.

    .venv/bin/python scripts/faces_bench.py [--set docs/bench/faces/set.json] [--bpp 0.05 0.10 0.15]
        [--effort fast] [--splits test heldout calibration] [--crops] [--out docs/bench/faces/results.json]

Two kinds of rows: ``full`` (the whole photo coded at the budget, every face of it measured) and
``crop256`` (a 256×256 face photo: the face box ×2 around its centre, Lanczos-resized, coded alone).
Every face row also carries ``rank1``: whether the decode's embedding (at the original's box) is closer
to its own original than to any other face of the set (all splits' originals as distractors) — the
"same person kept" label `scripts/calibrate_identity.py` calibrates the floors against.

Only the public codec API is used (``codec.encode``/``codec.decode``, ``codec.baselines``). When the
working tree's codec is mid-refactor, point ``PYTHONPATH`` at a checkout of the last commit: the
project root is appended to ``sys.path``, so ``PYTHONPATH`` wins.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT))

import codec  # noqa: E402
from codec import baselines  # noqa: E402
from codec.metrics import identity as idm  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from faces_set import load  # noqa: E402

CROP_SIDE = 256
#: Originals closer than this to the face's own original are not used as distractors.
SAME_PERSON_EXCLUDE = 0.5
CODECS = ("latent", "avif", "webp")




def face_crop(rgb: np.ndarray, box: idm.FaceBox, side: int = CROP_SIDE) -> tuple[np.ndarray, idm.FaceBox]:
    """A square crop of twice the face box around its centre (clipped to the image), resized to ``side``."""
    h, w = rgb.shape[:2]
    half = min(box.size, min(h, w) // 2)  # a window of 2 × the box, at most the image's short side
    cx, cy = (box.left + box.right) // 2, (box.top + box.bottom) // 2
    # Shifted (not shrunk) to stay inside the image: the face keeps its margin for the detector.
    left = min(max(cx - half, 0), w - 2 * half)
    top = min(max(cy - half, 0), h - 2 * half)
    crop = Image.fromarray(rgb[top:top + 2 * half, left:left + 2 * half])
    k = side / (2 * half)
    mapped = idm.FaceBox(round((box.left - left) * k), round((box.top - top) * k),
                         round((box.right - left) * k), round((box.bottom - top) * k),
                         box.score, box.upsample)
    return np.asarray(crop.resize((side, side), Image.Resampling.LANCZOS)), mapped


def code(rgb: np.ndarray, name: str, budget: int, effort: str) -> tuple[np.ndarray, int, bool, float]:
    """Decoded image, bytes, fits, encode seconds for one codec at ``budget`` bytes."""
    t0 = time.time()
    if name == "latent":
        data = codec.encode(rgb, max_bytes=budget, effort=effort)
        seconds = time.time() - t0
        return np.asarray(codec.decode(data).convert("RGB")), len(data), len(data) <= budget, seconds
    res = baselines.encode_at_budget(rgb, name, budget)
    if not res.fits:  # even the lowest quality is over budget: shrink the image instead (same bytes)
        res = baselines.encode_at_budget(rgb, name, budget, mode="downscale")
    return baselines.decode_baseline(res), res.nbytes, bool(res.fits), time.time() - t0


def measure(rgb: np.ndarray, faces: list[idm.FaceBox], gallery: list[tuple[str, np.ndarray]], own: list[str],
            bpp_list: list[float], effort: str, codecs: tuple[str, ...]) -> list[dict]:
    h, w = rgb.shape[:2]
    rows = []
    for bpp in bpp_list:
        budget = int(bpp * h * w / 8)
        for name in codecs:
            try:
                dec, nbytes, fits, secs = code(rgb, name, budget, effort)
            except codec.CodecError as exc:
                rows.append({"bpp": bpp, "codec": name, "budget": budget,
                             "error": f"{type(exc).__name__}: {exc}"})
                continue
            rep = idm.compare_faces(rgb, dec, faces=faces, probe_small=False)
            for i, f in enumerate(rep.faces):
                emb = idm.face_embedding(dec, f.box)
                ref = dict(gallery)[own[i]]
                # Distractors: other faces of the set, minus those that look like the same person
                # in the originals (BSDS has several photos of one shoot).
                d = {key: float(np.linalg.norm(emb - e)) for key, e in gallery
                     if key == own[i] or float(np.linalg.norm(ref - e)) >= SAME_PERSON_EXCLUDE}
                d_own = d[own[i]]
                d_other = min((v for k, v in d.items() if k != own[i]), default=float("inf"))
                rows.append({
                    "bpp": bpp, "codec": name, "budget": budget, "bytes": nbytes, "fits": fits,
                    "encode_s": round(secs, 2), "face": i, "face_px": f.box.size,
                    "identity_distance": f.identity_distance, "landmark_shift": f.landmark_shift,
                    "landmark_shift_max": f.landmark_shift_max, "detected": f.detected_in_decoded,
                    "rank1": bool(d_own < d_other), "nearest_other": d_other,
                })
            rows.append({"bpp": bpp, "codec": name, "budget": budget, "bytes": nbytes, "fits": fits,
                         "encode_s": round(secs, 2), "image_row": True})
            if name in ("latent", "avif", "webp") and bpp == 0.10:
                _CROPS.setdefault(id(rgb), {})[name] = dec
    return rows


_CROPS: dict[int, dict[str, np.ndarray]] = {}


def grid_tiles(rgb: np.ndarray, decs: dict[str, np.ndarray], faces: list[idm.FaceBox],
               tile: int = 128) -> list:
    out = []
    for f in faces:
        row = []
        for img in [rgb] + [decs[c] for c in ("latent", "avif", "webp") if c in decs]:
            h, w = img.shape[:2]
            m = f.size // 4
            crop = img[max(0, f.top - m):min(h, f.bottom + m), max(0, f.left - m):min(w, f.right + m)]
            tile_img = Image.fromarray(np.ascontiguousarray(crop))
            row.append(tile_img.resize((tile, tile), Image.Resampling.LANCZOS))
        out.append(row)
    return out


def save_grid(rows: list[tuple[str, list]], path: Path, tile: int = 128) -> None:
    from PIL import ImageDraw

    if not rows:
        return
    cols = max(len(r[1]) for r in rows)
    label_w = 150
    grid = Image.new("RGB", (label_w + cols * tile, 18 + len(rows) * tile), "white")
    draw = ImageDraw.Draw(grid)
    for j, title in enumerate(("original", "latent", "AVIF", "WebP")[:cols]):
        draw.text((label_w + j * tile + 4, 3), title, fill="black")
    for i, (label, tiles) in enumerate(rows):
        draw.text((4, 18 + i * tile + tile // 2), label[:24], fill="black")
        for j, t in enumerate(tiles):
            grid.paste(t, (label_w + j * tile, 18 + i * tile))
    grid.save(path, optimize=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", default=str(ROOT / "docs/bench/faces/set.json"))
    ap.add_argument("--bpp", type=float, nargs="+", default=[0.05, 0.10, 0.15])
    ap.add_argument("--effort", default="fast")
    ap.add_argument("--splits", nargs="+", default=["test", "heldout", "calibration"])
    ap.add_argument("--full-splits", nargs="+", default=["test", "heldout", "calibration"],
                    help="splits whose whole photos are coded (the crops are coded for all --splits)")
    ap.add_argument("--crops", action="store_true", help="also code 256×256 face crops")
    ap.add_argument("--max-per-split", type=int, default=99)
    ap.add_argument("--out", default=str(ROOT / "docs/bench/faces/results.json"))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    spec = json.loads(Path(args.set).read_text())
    items = [it for it in spec["images"] if it["split"] in args.splits]
    counts: dict[str, int] = {}
    chosen = []
    for it in items:
        counts[it["split"]] = counts.get(it["split"], 0) + 1
        if counts[it["split"]] <= args.max_per_split:
            chosen.append(it)
    # Originals: faces, embeddings (the identification gallery), too-small report.
    originals = []
    gallery: list[tuple[str, np.ndarray]] = []
    for it in chosen:
        rgb = load(it["path"])
        rep = idm.compare_faces(rgb, rgb)
        faces = [f.box for f in rep.measured]
        keys = [f"{it['name']}#{i}" for i in range(len(faces))]
        gallery += [(k, idm.face_embedding(rgb, b)) for k, b in zip(keys, faces, strict=True)]
        originals.append((it, rgb, faces, keys, rep))
    results: dict = {"machine": {"platform": platform.platform(), "python": platform.python_version(),
                                 "cpu_threads_torch": args.threads, "processor": platform.processor()},
                     "effort": args.effort, "bpp": args.bpp, "images": []}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    grid_rows: list[tuple[str, list]] = []
    crop_grid_rows: list[tuple[str, list]] = []
    t_start = time.time()
    for it, rgb, faces, keys, rep in originals:
        entry = {"name": it["name"], "split": it["split"], "width": rgb.shape[1], "height": rgb.shape[0],
                 "faces": [{"box": [f.left, f.top, f.right, f.bottom], "size": f.size, "score": f.score}
                           for f in faces],
                 "too_small": [{"box": [f.box.left, f.box.top, f.box.right, f.box.bottom], "size": f.box.size}
                               for f in rep.too_small],
                 "rows": [], "crops": []}
        if faces and it["split"] in args.full_splits:
            entry["rows"] = measure(rgb, faces, gallery, keys, args.bpp, args.effort, CODECS)
            decs = _CROPS.pop(id(rgb), {})
            if decs:
                for k, tiles in zip(keys, grid_tiles(rgb, decs, faces), strict=True):
                    grid_rows.append((f"{k} ({it['split']})", tiles))
        if args.crops:
            for i, f in enumerate(faces):
                if f.size < 48:
                    continue
                crop, mapped = face_crop(rgb, f)
                cfaces = [b for b in idm.detect_faces(crop) if b.iou(mapped) >= idm.MATCH_IOU]
                # A face filling most of the crop escapes the HOG window: measure at the mapped box then
                # (its "still detected" answers are then the detector's limit, for every codec alike).
                cbox = max(cfaces, key=lambda b: b.size) if cfaces else mapped
                crow = measure(crop, [cbox], gallery, [keys[i]], args.bpp, args.effort, CODECS)
                entry["crops"].append({"face": i, "rows": crow,
                                       "box_from": "detected" if cfaces else "mapped"})
                decs = _CROPS.pop(id(crop), {})
                if decs:
                    crop_grid_rows += [(f"{keys[i]} 256", t) for t in grid_tiles(crop, decs, [cbox])]
        results["images"].append(entry)
        results["elapsed_s"] = round(time.time() - t_start, 1)
        out.write_text(json.dumps(results, indent=1))
        print(f"{it['name']} ({it['split']}): {len(faces)} faces, {time.time() - t_start:.0f} s", flush=True)
    save_grid(grid_rows, out.with_name(out.stem + "_grid_0.10bpp.png"))
    save_grid(crop_grid_rows, out.with_name(out.stem + "_crops256_grid_0.10bpp.png"))


if __name__ == "__main__":
    main()
