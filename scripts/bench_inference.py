"""Issue 13 item 3: CPU inference backends for the TAESD encoder/decoder, measured side by side.

Backends (each at 2 threads, the model's own weights, fp32 unless named otherwise):

- ``torch_nchw``      torch eager, contiguous (NCHW) tensors
- ``torch_cl``        torch eager, channels_last — what ``codec.models.taesd`` runs: THE reference
- ``torch_bf16``      torch eager, channels_last, bfloat16 weights and activations
- ``torch_compile``   ``torch.compile`` (inductor, static shapes) of the channels_last fp32 module
- ``ort``             ONNX Runtime (CPU EP, all graph optimisations), model exported to ONNX at run time
- ``ov``              OpenVINO CPU plugin on the same ONNX file, f32 inference precision
- ``ov_bf16``         OpenVINO with its bf16 inference precision hint

Cases: decoder on the latent of a 768×512 Kodak photo (96×64 latents) and of a ~1 MP photo, encoder on
both photos. The latents are the torch reference encoder's output, so the decoder sees real data.
Every timed call is warm (one untimed call per backend and case first; that first call, which holds
the compile / graph optimisation time, is reported separately). Rounds interleave the backends in a
rotating order, so a load spike on the shared machine hits all of them alike; the median over the
rounds is reported with the load average before and after.

Quality: PSNR of each backend's output against torch_cl, on the uint8 pictures the codec ships (decoder)
and on the latents with the reference latent's range as the peak (encoder); ``deterministic``: every
timed run of the backend gave bit-identical output.

    .venv/bin/python scripts/bench_inference.py                 # docs/bench/inference/<date>.json + .md
    .venv/bin/python scripts/bench_inference.py --rounds 3 --backends torch_cl,ort --no-write
    .venv/bin/python scripts/bench_inference.py --e2e    # codec.decode of one file per CODEC_BACKEND
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import hashlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

THREADS = 2
ALL_BACKENDS = ("torch_nchw", "torch_cl", "torch_bf16", "torch_compile", "ort", "ov", "ov_bf16")
REFERENCE = "torch_cl"

Runner = Callable[[np.ndarray], np.ndarray]


def _torch_runner(module: torch.nn.Module, dtype: torch.dtype, channels_last: bool) -> Runner:
    fmt = torch.channels_last if channels_last else torch.contiguous_format

    def run(a: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            t = torch.from_numpy(a).to(dtype=dtype).contiguous(memory_format=fmt)
            return module(t).float().contiguous().numpy()

    return run


def build_runners(name: str, ae: torch.nn.Module, part: str, workdir: Path) -> Runner:
    """The runner of backend ``name`` for ``part`` ("enc" | "dec"): numpy float32 NCHW in → out."""
    from codec.models.onnx_runtime import export_onnx, graph_of, ort_runner, ov_runner

    if name in ("torch_nchw", "torch_cl", "torch_bf16", "torch_compile"):
        dtype = torch.bfloat16 if name == "torch_bf16" else torch.float32
        cl = name != "torch_nchw"
        mod = copy.deepcopy(ae)
        mod = torch.nn.Module.to(mod, dtype=dtype)
        mod = mod.to(memory_format=torch.channels_last if cl else torch.contiguous_format)
        g = graph_of(mod, part)
        if name == "torch_compile":
            g = torch.compile(g, dynamic=False)
        return _torch_runner(g, dtype, cl)

    onnx_path = workdir / f"{part}.onnx"
    if not onnx_path.exists():
        mod = copy.deepcopy(ae).float().to(memory_format=torch.contiguous_format)
        export_onnx(graph_of(mod, part), part, 4, onnx_path)
    if name == "ort":
        return ort_runner(onnx_path, THREADS)
    return ov_runner(onnx_path, THREADS, "bf16" if name == "ov_bf16" else "f32")


def psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)


def to_u8(y: np.ndarray) -> np.ndarray:
    return np.round(np.clip(y, 0, 1) * 255).astype(np.uint8)


def load_inputs(kodak_name: str, mp_size: tuple[int, int]) -> dict[str, np.ndarray]:
    """The two test photos as (1, 3, H, W) float32 in [0, 1]: a Kodak 768×512, a ~1 MP training photo."""
    from PIL import Image

    from codec.resources import kodak_dir, train_dir

    kodak = Image.open(kodak_dir() / kodak_name).convert("RGB")
    urban = sorted((train_dir() / "urban100_x2").glob("*.png"))
    src = Image.open(urban[0] if urban else sorted(train_dir().rglob("*.jpg"))[0]).convert("RGB")
    big = src.resize(mp_size, Image.LANCZOS)

    def arr(im: Image.Image) -> np.ndarray:
        a = np.asarray(im, dtype=np.float32) / 255.0
        return np.ascontiguousarray(a.transpose(2, 0, 1)[None])

    return {f"{kodak.width}x{kodak.height}": arr(kodak), f"{big.width}x{big.height}": arr(big)}


def end_to_end(kodak_name: str, rounds: int) -> int:
    """``codec.decode`` of one 768×512 file (0.10 bpp, coded at full size) under each ``CODEC_BACKEND``."""
    import codec
    from codec.models.onnx_runtime import BACKENDS
    from codec.resources import kodak_dir

    data = codec.encode(kodak_dir() / kodak_name, bpp=0.10, effort="fast", check_faces=False)
    meta = codec.info(data)
    print(f"{kodak_name}: {len(data)} B, coded {meta['coded_width']}x{meta['coded_height']}", flush=True)
    outs: dict[str, np.ndarray] = {}
    times: dict[str, list[float]] = {b: [] for b in BACKENDS}
    for b in BACKENDS:  # warm (export + compile)
        os.environ["CODEC_BACKEND"] = b
        outs[b] = np.asarray(codec.decode(data))
    for r in range(rounds):
        for b in BACKENDS[r % len(BACKENDS):] + BACKENDS[: r % len(BACKENDS)]:
            os.environ["CODEC_BACKEND"] = b
            t0 = time.perf_counter()
            out = np.asarray(codec.decode(data))
            times[b].append(time.perf_counter() - t0)
            if not np.array_equal(out, outs[b]):
                print(f"{b}: NOT deterministic")
    ref_t = statistics.median(times["torch"])
    print("| CODEC_BACKEND | decode median s | × vs torch | PSNR vs torch dB |\n|---|---:|---:|---:|")
    for b in BACKENDS:
        med = statistics.median(times[b])
        print(f"| {b} | {med:.2f} | {ref_t / med:.2f} | {psnr(outs[b], outs['torch'], 255.0):.2f} |")
    print(f"load average {[round(v, 2) for v in os.getloadavg()]}, {rounds} interleaved rounds")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--backends", default=",".join(ALL_BACKENDS))
    ap.add_argument("--kodak", default="kodim23.png")
    ap.add_argument("--mp-size", default="1152x896", help="the ~1 MP case, WxH (multiples of 8)")
    ap.add_argument("--parts", default="dec,enc")
    ap.add_argument("--out", default=str(ROOT / "docs/bench/inference"))
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--e2e", action="store_true", help="time codec.decode per CODEC_BACKEND instead")
    args = ap.parse_args()

    torch.set_num_threads(THREADS)
    os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))
    if args.e2e:
        return end_to_end(args.kodak, args.rounds)
    from codec.models.registry import get_model

    model = get_model("taesd", device="cpu")
    ae = model.ae
    backends = [b for b in args.backends.split(",") if b]
    if REFERENCE not in backends:
        backends.insert(0, REFERENCE)
    parts = [p for p in args.parts.split(",") if p]
    w, h = (int(v) for v in args.mp_size.lower().split("x"))
    images = load_inputs(args.kodak, (w, h))

    # inputs per case: images for the encoder, the reference encoder's latents for the decoder
    ref_enc = build_runners(REFERENCE, ae, "enc", Path("."))
    cases: list[tuple[str, str, np.ndarray]] = []
    for size, img in images.items():
        if "dec" in parts:
            cases.append(("dec", size, np.ascontiguousarray(ref_enc(img))))
        if "enc" in parts:
            cases.append(("enc", size, img))

    load_before = os.getloadavg()
    tmp = tempfile.TemporaryDirectory(prefix="bench-inference-")
    workdir = Path(tmp.name)
    runners: dict[tuple[str, str], Runner] = {}
    first_s: dict[tuple[str, str, str], float] = {}
    setup_s: dict[tuple[str, str], float] = {}
    errors: dict[str, str] = {}
    outputs: dict[tuple[str, str, str], np.ndarray] = {}
    hashes: dict[tuple[str, str, str], set[str]] = {}
    times: dict[tuple[str, str, str], list[float]] = {}

    for b in list(backends):
        for part in parts:
            t0 = time.perf_counter()
            try:
                runners[(b, part)] = build_runners(b, ae, part, workdir)
            except Exception as exc:  # a backend that does not work here is reported, not fatal
                errors[b] = f"{type(exc).__name__}: {exc}"[:500]
                break
            setup_s[(b, part)] = time.perf_counter() - t0
        if b in errors:
            backends.remove(b)
            runners = {k: v for k, v in runners.items() if k[0] != b}
            print(f"[skip] {b}: {errors[b]}", flush=True)
            continue
        for part, size, inp in cases:
            t0 = time.perf_counter()
            try:
                out = runners[(b, part)](inp)
            except Exception as exc:
                errors[b] = f"{type(exc).__name__}: {exc}"[:500]
                break
            first_s[(b, part, size)] = time.perf_counter() - t0
            outputs[(b, part, size)] = out
            hashes[(b, part, size)] = {hashlib.sha256(out.tobytes()).hexdigest()}
            print(f"[warm] {b:14s} {part} {size}: first call {first_s[(b, part, size)]:.2f} s", flush=True)
        if b in errors:
            backends.remove(b)
            print(f"[skip] {b}: {errors[b]}", flush=True)

    for r in range(args.rounds):
        order = backends[r % len(backends):] + backends[: r % len(backends)]
        for part, size, inp in cases:
            for b in order:
                t0 = time.perf_counter()
                out = runners[(b, part)](inp)
                dt_s = time.perf_counter() - t0
                times.setdefault((b, part, size), []).append(dt_s)
                hashes[(b, part, size)].add(hashlib.sha256(out.tobytes()).hexdigest())
        print(f"[round {r + 1}/{args.rounds}] load {os.getloadavg()[0]:.2f}", flush=True)
    load_after = os.getloadavg()
    tmp.cleanup()

    rows = []
    for part, size, _ in cases:
        ref_t = statistics.median(times[(REFERENCE, part, size)])
        ref_out = outputs[(REFERENCE, part, size)]
        for b in backends:
            out = outputs[(b, part, size)]
            ts = times[(b, part, size)]
            row = {
                "part": part, "size": size, "backend": b,
                "median_s": round(statistics.median(ts), 4), "min_s": round(min(ts), 4),
                "runs": len(ts), "first_call_s": round(first_s[(b, part, size)], 3),
                "speedup_vs_ref": round(ref_t / statistics.median(ts), 3),
                "deterministic": len(hashes[(b, part, size)]) == 1,
                "max_abs_diff": float(np.max(np.abs(out.astype(np.float64) - ref_out))),
            }
            if part == "dec":
                a, r_ = to_u8(out), to_u8(ref_out)
                row["psnr_db"] = round(psnr(a, r_, 255.0), 2)
                row["identical_u8_share"] = round(float(np.mean(a == r_)), 5)
            else:
                row["psnr_db"] = round(psnr(out, ref_out, float(ref_out.max() - ref_out.min())), 2)
            rows.append(row)

    import onnxruntime
    import openvino

    result = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python " + " ".join(sys.argv),
        "threads": THREADS, "rounds": args.rounds, "reference": REFERENCE,
        "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
        "loadavg_before": [round(v, 2) for v in load_before],
        "loadavg_after": [round(v, 2) for v in load_after],
        "versions": {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
                     "openvino": openvino.__version__},
        "setup_s": {f"{b}/{p}": round(v, 2) for (b, p), v in setup_s.items()},
        "errors": errors, "rows": rows,
    }
    md = render_md(result)
    print(md)
    if not args.no_write:
        out_dir = Path(args.out)
        out_dir.mkdir(parents=True, exist_ok=True)
        stem = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
        (out_dir / f"{stem}.json").write_text(json.dumps(result, indent=1) + "\n")
        (out_dir / f"{stem}.md").write_text(md)
        print(f"wrote {out_dir / stem}.json/.md")
    return 0


def render_md(res: dict) -> str:
    lines = [
        f"# TAESD CPU inference backends ({res['date']})", "",
        f"`{res['command']}` — {res['threads']} threads per backend, {res['rounds']} interleaved warm rounds "
        f"(median), {res['cores']} cores shared with other developers: load average "
        f"{res['loadavg_before']} before, {res['loadavg_after']} after. Versions: "
        + ", ".join(f"{k} {v}" for k, v in res["versions"].items()) + ".",
        "",
        f"PSNR against `{res['reference']}` (torch eager fp32, channels_last, what the codec runs): on uint8 "
        "pictures for the decoder, on latents (peak = the reference latent's range) for the encoder. "
        "`det.`: all timed runs bit-identical.",
        "",
        "| part | size | backend | median s | min s | × vs ref | first call s | PSNR dB | max abs diff "
        "| det. |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in res["rows"]:
        lines.append(
            f"| {r['part']} | {r['size']} | {r['backend']} | {r['median_s']:.3f} | {r['min_s']:.3f} | "
            f"{r['speedup_vs_ref']:.2f} | {r['first_call_s']:.2f} | {r['psnr_db']} | "
            f"{r['max_abs_diff']:.2e} | {'yes' if r['deterministic'] else 'NO'} |"
        )
    if res["errors"]:
        lines += ["", "Backends that did not run:", ""]
        lines += [f"- `{b}`: {e}" for b, e in res["errors"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
