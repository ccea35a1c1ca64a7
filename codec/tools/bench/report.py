"""report.md: machine, per codec × budget statistics, what did not fit, targets, speed, fidelity."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

#: Issue 2 targets for `latent` at --effort default on all 24 Kodak images: bpp → (max LPIPS, min MS-SSIM).
TARGETS = {0.05: (0.42, 0.68), 0.10: (0.26, 0.82), 0.15: (0.19, 0.88)}
DECODE_TARGET_S = 1.5  # issue 14: a 768×512 on 2 cores, denoiser included


def _stats(values: Sequence[float]) -> tuple[float, float] | None:
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return statistics.fmean(vals), statistics.median(vals)


def _fmt(pair: tuple[float, float] | None, digits: int) -> str:
    if pair is None:
        return "–"
    return f"{pair[0]:.{digits}f} / {pair[1]:.{digits}f}"


def _med(values: Sequence[float | None], digits: int = 2) -> str:
    vals = [v for v in values if v is not None]
    return f"{statistics.median(vals):.{digits}f}" if vals else "–"


def _row_stats(rows: list[dict[str, Any]]) -> list[str]:
    fit = [r for r in rows if r["fits"] and r.get("psnr") is not None]
    return [
        _fmt(_stats([r["bpp"] for r in fit]), 4),
        _fmt(_stats([r["psnr"] for r in fit]), 2),
        _fmt(_stats([r["ms_ssim"] for r in fit]), 4),
        _fmt(_stats([r["lpips"] for r in fit]), 4),
        _med([r["encode_s"] for r in rows]),
        _med([r["decode_s"] for r in rows]),
    ]


def render(
    *,
    rows: list[dict[str, Any]],
    codecs: Sequence[str],
    bpps: Sequence[float],
    images: Sequence[str],
    effort: str,
    machine: dict[str, Any],
    speed: dict[str, Any] | None,
    fidelity: str | None,
    grids: Sequence[str],
    row_seconds: float | None,
) -> str:
    n = len(images)
    out: list[str] = []
    add = out.append
    add("# Codec benchmark\n")
    budgets = ", ".join(f"{b:g}" for b in bpps)
    add(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {n} image(s) · budgets {budgets} bpp"
        f" · latent effort `{effort}` · codecs {', '.join(codecs)}\n")
    add("## Machine\n")
    for k, v in machine.items():
        add(f"- {k}: {v}")
    add("")
    add("## Results per codec and budget\n")
    add("Each cell is *mean / median* over the images whose file fits the budget (`max_bytes = "
        "floor(bpp·W·H/8)`); `fit` counts them. Encode/decode seconds are medians over all rows; "
        "for the classical codecs encode time includes the whole quality search (see "
        "`search_trials` and `final_encode_s` in results.json for one encode). `seed` has no "
        "rate control: one file per image, compared with each budget. PSNR in dB on RGB, MS-SSIM on "
        "RGB (1 = identical), LPIPS-alex v0.1 (0 = identical).\n")
    add("| codec | budget bpp | fit | bpp | PSNR | MS-SSIM | LPIPS | enc s | dec s |")
    add("|---|---|---|---|---|---|---|---|---|")
    for name in codecs:
        for b in bpps:
            sel = [r for r in rows if r["codec"] == name and r["target_bpp"] == b]
            if not sel:
                continue
            nfit = sum(1 for r in sel if r["fits"])
            add(f"| {name} | {b:g} | {nfit}/{len(sel)} | " + " | ".join(_row_stats(sel)) + " |")
        if name == "seed":
            per_image = list({r["image"]: r for r in rows if r["codec"] == "seed"}.values())
            if per_image:
                natural = [dict(r, fits=True) for r in per_image]
                add(f"| seed | natural size | {len(per_image)}/{len(per_image)} | "
                    + " | ".join(_row_stats(natural)) + " |")
    add("")
    add(_not_fitting(rows, codecs, bpps))
    errors = [r for r in rows if r.get("error")]
    if errors:
        add("## Errors\n")
        for r in errors:
            add(f"- {r['codec']} @ {r['target_bpp']:g} on {r['image']}: {r['error']}")
        add("")
    if "latent" in codecs:
        add(_targets(rows, bpps, n))
    add("## Decode speed\n")
    add(_speed(speed))
    add("## Fidelity guard (issue 5)\n")
    add(fidelity.strip() + "\n" if fidelity else
        "Not run (`--no-fidelity`): the fidelity-guard comparison (with/without the guard, blocks below "
        "the floor, bytes spent, worst-block crops, synthetic text/line-art cases) of "
        "`codec/tools/bench/fidelity_bench.py`.\n")
    add("## Files\n")
    add("- `results.json`: one row per image × codec × budget (keys image, codec, target_bpp, fits, "
        "bytes, bpp, psnr, ms_ssim, lpips, encode_s, decode_s, plus max_bytes, width, height, note and "
        "codec details)")
    add("- `rd.png`: rate–distortion (bpp vs MS-SSIM, bpp vs LPIPS)")
    for g in grids:
        add(f"- `{g}`: crop grid (original | latent | JPEG | WebP | AVIF)")
    add("- `streams/`: every coded file; `cache/`: per-row results reused by the next run")
    if row_seconds is not None:
        add(f"\nMeasured in this run: {row_seconds:.1f} s per newly measured row on average "
            "(encode + decode + metrics).")
    return "\n".join(out) + "\n"


def _not_fitting(rows: list[dict[str, Any]], codecs: Sequence[str], bpps: Sequence[float]) -> str:
    lines = ["## What fit and what did not\n"]
    for name in codecs:
        for b in bpps:
            sel = [r for r in rows if r["codec"] == name and r["target_bpp"] == b]
            if not sel:
                continue
            miss = [r for r in sel if not r["fits"]]
            if not miss:
                lines.append(f"- {name} @ {b:g} bpp: all {len(sel)} fit")
                continue
            sizes = [r["bpp"] for r in miss if r.get("bpp") is not None]
            smallest = (f"; its smallest files are {min(sizes):.3f}–{max(sizes):.3f} bpp "
                        f"(median {statistics.median(sizes):.3f})") if sizes else ""
            names = ", ".join(r["image"] for r in miss) if len(miss) <= 8 else f"{len(miss)} images"
            lines.append(f"- {name} @ {b:g} bpp: {len(miss)}/{len(sel)} do not fit ({names}){smallest}")
    lines.append("")
    return "\n".join(lines)


def _targets(rows: list[dict[str, Any]], bpps: Sequence[float], n: int) -> str:
    lines = ["## Issue 2 targets for `latent`\n"]
    if n < 24:
        lines.append(f"Only {n} image(s) here: the targets are defined on all 24 Kodak images.\n")
    lines.append("| budget | all fit | mean LPIPS (target) | mean MS-SSIM (target) | met |")
    lines.append("|---|---|---|---|---|")
    for b in bpps:
        key = min(TARGETS, key=lambda t: abs(t - b))
        if abs(key - b) > 1e-9:
            continue
        max_lpips, min_msssim = TARGETS[key]
        sel = [r for r in rows if r["codec"] == "latent" and r["target_bpp"] == b]
        fit = [r for r in sel if r["fits"] and r.get("lpips") is not None]
        if not sel:
            continue
        lp = statistics.fmean(r["lpips"] for r in fit) if fit else None
        ms = statistics.fmean(r["ms_ssim"] for r in fit) if fit else None
        all_fit = len(fit) == len(sel)
        met = all_fit and lp is not None and lp <= max_lpips and ms is not None and ms >= min_msssim
        lp_s = "–" if lp is None else f"{lp:.4f}"
        ms_s = "–" if ms is None else f"{ms:.4f}"
        lines.append(f"| {b:g} | {len(fit)}/{len(sel)} | {lp_s} (≤ {max_lpips}) | {ms_s} (≥ {min_msssim}) | "
                     f"{'yes' if met else 'no'} |")
    lines.append("")
    return "\n".join(lines)


def _speed(speed: dict[str, Any] | None) -> str:
    if not speed:
        return "Not measured (no latent codec in this run, or --no-speed).\n"
    if "error" in speed:
        return f"Failed: {speed['error']}\n"
    lines = [f"One 768×512 image ({speed['image']}) coded at {speed['bpp']} bpp ({speed['bytes']} B, "
             f"effort `{speed['effort']}`), CPU with {speed['cpu_threads']} torch threads:\n",
             f"- decode: {speed['cpu_decode_s_median']:.3f} s (median of {speed['cpu_decode_repeats']}; "
             f"target ≤ {DECODE_TARGET_S:g} s: "
             f"{'met' if speed['cpu_decode_s_median'] <= DECODE_TARGET_S else 'NOT met'})",
             f"- encode: {speed['cpu_encode_s']:.2f} s (one run, includes the rate search)"]
    heavy = speed.get("heavy")
    if heavy:
        s = heavy["cpu_decode_s_median"]
        what = f"latent {'×'.join(map(str, heavy.get('latent_shape', [])))}" + (
            ", residual layer" if heavy.get("residual") else "")
        lines.append(f"- at {heavy['bpp']:g} bpp ({heavy['bytes']} B: {what}): decode {s:.3f} s (target ≤ "
                     f"{DECODE_TARGET_S:g} s: "
                     f"{'met' if s <= DECODE_TARGET_S else 'NOT met'}), encode {heavy['cpu_encode_s']:.2f} s")
    cuda = speed.get("cuda")
    if cuda:
        lines.append(f"\nCUDA ({cuda['gpu']}, {cuda['dtype']}), TAESD autoencoder alone, "
                     "seconds per image:\n")
        lines.append("| batch | encode s/img | decode s/img |")
        lines.append("|---|---|---|")
        for b in (1, 16):
            r = cuda[f"batch{b}"]
            lines.append(f"| {b} | {r['encode_s_per_image']:.4f} | {r['decode_s_per_image']:.4f} |")
        lines.append(f"\nEnd to end on the GPU: `codec.decode` {cuda['codec_decode_s_median']:.3f} s, "
                     f"`codec.encode` {cuda['codec_encode_s']:.2f} s (one image).")
    else:
        lines.append("\nNo CUDA GPU on this machine: GPU timings not measured.")
    return "\n".join(lines) + "\n"
