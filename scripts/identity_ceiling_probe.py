"""Where does the latent lose identity on faces that pass the floor? (issue 12 diagnosis, training faces only)

For every face of the calibration/held-out TRAINING photos of the faces set (never Kodak or the test faces)
this measures the dlib identity distance of:

- ``ceil1``: the tuned (`default`) encoder's latent, NOT quantized, decoded by the stock decoder — the
  decoder's ceiling at scale 1.0, which no byte budget can beat at that scale;
- ``ceil1.5``: the same at scale 1.5 (image up-sampled 1.5×, decode down-sampled back);
- ``latent@B`` / ``avif@B``: the codec (effort default) and AVIF at the same budget B bpp.

    PYTHONPATH=. .venv/bin/python scripts/identity_ceiling_probe.py [--bpp 0.10 0.15] [--out F]

If the ceiling alone is as far from the original as AVIF at 0.10–0.15 bpp, spending bytes on the face at
scale 1.0 cannot close the gap: only a larger latent (region up-scale) or another decoder can.
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

from faces_set import load  # noqa: E402

import codec  # noqa: E402
from codec import baselines  # noqa: E402
from codec.encoder.rdo import encode_latent  # noqa: E402
from codec.metrics import identity as idm  # noqa: E402
from codec.models.registry import get_model  # noqa: E402


def ceiling(model: object, rgb: np.ndarray, scale: float) -> np.ndarray:
    """Unquantized round trip at ``scale`` (tuned encoder, stock decoder), back at the original size."""
    import torch

    h, w = rgb.shape[:2]
    src = rgb
    if scale != 1.0:
        sw, sh = round(w * scale / 8) * 8, round(h * scale / 8) * 8
        src = np.asarray(Image.fromarray(rgb).resize((sw, sh), Image.Resampling.LANCZOS))
    z = encode_latent(model, src, "default")
    with torch.no_grad():
        x = model.decode(torch.from_numpy(z)[None].float())[0]
    out = (x.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    out = out[: src.shape[0], : src.shape[1]]
    if out.shape[:2] != (h, w):
        out = np.asarray(Image.fromarray(out).resize((w, h), Image.Resampling.LANCZOS))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bpp", type=float, nargs="+", default=[0.10, 0.15])
    ap.add_argument("--min-face", type=int, default=64)
    ap.add_argument("--out", default=str(ROOT / "docs/bench/faces/identity_ceiling.json"))
    args = ap.parse_args()
    import torch

    torch.set_num_threads(2)
    model = get_model("taesd", device="cpu", backend="torch")
    faces_set = json.loads((ROOT / "docs/bench/faces/set.json").read_text())
    rows = []
    t0 = time.time()
    for item in faces_set["images"]:
        if item["split"] == "test":
            continue  # never looked at here
        rgb = load(item["path"])
        faces = [f for f in idm.detect_faces(rgb, upsample=1) if f.size >= args.min_face]
        if not faces:
            continue
        h, w = rgb.shape[:2]
        decs: dict[str, np.ndarray] = {"ceil1": ceiling(model, rgb, 1.0), "ceil1.5": ceiling(model, rgb, 1.5)}
        for bpp in args.bpp:
            budget = int(bpp * h * w / 8)
            data = codec.encode(rgb, max_bytes=budget)
            decs[f"latent@{bpp}"] = np.asarray(codec.decode(data).convert("RGB"))
            res = baselines.encode_at_budget(rgb, "avif", budget)
            decs[f"avif@{bpp}"] = baselines.decode_baseline(res) if res.fits else None
        for name, dec in decs.items():
            if dec is None:
                continue
            rep = idm.compare_faces(rgb, dec, faces=faces, probe_small=False)
            for i, f in enumerate(rep.faces):
                rows.append({"image": item["name"], "split": item["split"], "face": i, "face_px": f.box.size,
                             "what": name, "identity_distance": f.identity_distance,
                             "landmark_shift": f.landmark_shift})
        print(item["name"], {k: [round(r["identity_distance"], 3) for r in rows
                                 if r["image"] == item["name"] and r["what"] == k] for k in decs}, flush=True)
    whats = sorted({r["what"] for r in rows})
    summary = {w: float(np.mean([r["identity_distance"] for r in rows if r["what"] == w])) for w in whats}
    out = {"machine": platform.platform(), "elapsed_s": round(time.time() - t0, 1), "min_face": args.min_face,
           "faces": len({(r["image"], r["face"]) for r in rows}), "mean_identity_distance": summary,
           "rows": rows}
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
