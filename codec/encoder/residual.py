"""The residual layer's encoder side (issue 14): above ~0.2 bpp, a smaller latent plus the residual.

The latent decoder has a ceiling (≈ 26–27 dB on Kodak even unquantized), so above ~0.2 bpp more latent
bytes buy little. `improve` runs after the guard at a fixed budget: it takes the guarded files at
`LATENT_BPPS` of the picture (`latent_budgets`; and the guarded file itself when it leaves `MIN_LEFTOVER`
of the budget unused), codes for each the residual ``original − decode`` as a 4:4:4
AVIF image in the bytes left (`codec.container.residuallayer`), and keeps whichever file's decode
scores best in whole-image quality (MS-SSIM − LPIPS, the score of every encoder-side choice), when it
beats the guarded file by `MIN_GAIN`. The file's fidelity and face/text tags are measured again on the
final decode (the guard's verdict must describe what the decoder shows).

Measured on training photos (scripts/residual_layer_probe.py, docs/bench/residual/README.md): at
0.25 and 0.5 bpp a latent at 40 % of the budget plus an AVIF residual beat the latent alone on PSNR,
MS-SSIM and LPIPS on every photo (e.g. an urban100 photo at 0.5 bpp: 25.9 → 27.8 dB, MS-SSIM 0.928 →
0.945, LPIPS 0.122 → 0.061); WebP residuals were worse than AVIF on each.
Where the latent goes (docs/bench/residual/settings.md, scripts/probe_residual_settings.py, 10 + 15
other training photos at 0.25–0.6 bpp): the best latent sits at ≈ 0.125–0.15 bpp whatever the budget
(fixed shares put it at 0.2–0.36 bpp at 0.5–0.6 bpp, where the latent's own gains have flattened), and
4:4:4 residuals beat 4:2:0 at the same bytes on most photos (AVIF's quality steps are coarse: 4:2:0
often leaves 5–10 % of the budget unused).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from codec.baselines import encode_at_budget
from codec.container import patchlayer, residuallayer
from codec.container.header import PAYLOAD_LATENT, pack, parse
from codec.container.residuallayer import ResidualLayer
from codec.decoder import decode_rgb
from codec.encoder import guard
from codec.encoder import text as text_check
from codec.encoder.guard import GuardResult
from codec.encoder.session import EncodeSession
from codec.errors import BudgetError
from codec.metrics.fidelity import block_scores, report

#: budgets below this many bits per pixel get no residual (the latent is still climbing there)
MIN_BPP = 0.2
#: bits per pixel the latent under a residual is coded at (besides the guarded file itself), each as a
#: share of the budget of at most `MAX_SHARE` (see `latent_budgets` and the module docstring)
LATENT_BPPS = (0.125, 0.15)
MAX_SHARE = 0.7
#: AVIF save options of the residual image (over `codec.baselines.FORMATS`' own): full-resolution chroma
RESIDUAL_OPTIONS = {"subsampling": "4:4:4"}
#: the residual file must beat the guarded one by this much whole-image quality (MS-SSIM − LPIPS)
MIN_GAIN = 0.005
#: fewest bytes worth coding a residual image in
MIN_RESIDUAL_BYTES = 256
#: the guarded file itself gets a residual only when it leaves this share of the budget unused (the
#: ladder's top rung on a simple photo); on Kodak at 0.25/0.5 bpp it was never the best base
MIN_LEFTOVER = 0.1
#: section framing: count varint, TLV id, length varint (≤ 4 bytes), kind byte
FRAMING = 8
#: larger photos get no residual (an AVIF search over a 12 MP residual is tens of seconds)
MAX_PIXELS = guard.LARGE_PIXELS
CODEC = "avif"


def eligible(session: EncodeSession, max_bytes: int | None) -> bool:
    """Whether a fixed budget of ``max_bytes`` is worth trying residual files at (never at effort
    ``fast``: two more guarded encodes and AVIF searches)."""
    width, height = session.size
    return (max_bytes is not None and session.effort != "fast" and width * height <= MAX_PIXELS
            and 8.0 * max_bytes / (width * height) >= MIN_BPP)


def latent_budgets(max_bytes: int, width: int, height: int) -> list[int]:
    """Byte budgets of the latents to try under a residual: `LATENT_BPPS` of the picture, each at
    most `MAX_SHARE` of ``max_bytes`` (distinct, ascending)."""
    cap = int(MAX_SHARE * max_bytes)
    return sorted({min(cap, int(bpp * width * height / 8.0)) for bpp in LATENT_BPPS})


def code(session: EncodeSession, data: bytes, decoded: np.ndarray, max_bytes: int) -> ResidualLayer | None:
    """The largest AVIF residual of ``decoded`` that fits in ``max_bytes`` with ``data`` (None: none)."""
    allowance = max_bytes - len(data) - FRAMING
    if allowance < MIN_RESIDUAL_BYTES:
        return None
    res = encode_at_budget(residuallayer.residual_image(session.rgb, decoded), CODEC, allowance,
                           mode="quality", options=RESIDUAL_OPTIONS)
    if not res.fits or not res.data:
        return None
    return ResidualLayer(CODEC, 0, res.data)


def improve(session: EncodeSession, result: GuardResult, max_bytes: int,
            at_budget: Callable[[int], GuardResult], target: str | None = None) -> GuardResult:
    """The best of ``result`` and residual files (see the module docstring), ≤ ``max_bytes``.
    ``at_budget(bytes)``: the guarded file at a smaller budget (rate control + guard, as ``result``)."""
    if not eligible(session, max_bytes) or parse(result.data)[0].payload_kind != PAYLOAD_LATENT:
        return result
    model = session.model

    def decode(data: bytes) -> np.ndarray:
        return decode_rgb(data, model=model, max_pixels=None)  # type: ignore[arg-type]

    def decoded(r: GuardResult) -> np.ndarray:
        return r.decoded if r.decoded is not None else decode(r.data)

    plain = decoded(result)
    best_q, best = session.quality_of(plain), None
    ref_q = best_q
    bases: list[tuple[GuardResult, np.ndarray]] = []
    if max_bytes - len(result.data) >= MIN_LEFTOVER * max_bytes:  # the ladder could not use the budget
        bases.append((result, plain))
    for budget in latent_budgets(max_bytes, *session.size):
        try:
            base = at_budget(budget)
        except BudgetError:
            continue
        if parse(base.data)[0].payload_kind == PAYLOAD_LATENT and base.data != result.data \
                and all(base.data != b.data for b, _ in bases):  # two budgets, one rung: code it once
            bases.append((base, decoded(base)))
    for base, dec in bases:
        layer = code(session, base.data, dec, max_bytes)
        if layer is None:
            continue
        out = residuallayer.apply(dec, layer)
        q = session.quality_of(out)
        if q > best_q and q >= ref_q + MIN_GAIN:
            best_q, best = q, (base, layer, out)
    if best is None:
        return result
    base, layer, out = best
    final = remeasure(session, base, layer, out, target, max_bytes)
    if result.faithful and not final.faithful:  # the residual may not break what the guard kept
        return result
    return final


def remeasure(session: EncodeSession, base: GuardResult, layer: ResidualLayer, decoded: np.ndarray,
              target: str | None, max_bytes: int) -> GuardResult:
    """``base`` with the residual section, its fidelity and face/text tags measured on ``decoded``."""
    header, payload = parse(base.data)
    header.residual_layer = residuallayer.pack(layer)
    if header.patch_layer is not None:  # the residual changes what the patch layer's windows look like
        patches = patchlayer.parse(header.patch_layer, header.width, header.height)
        header.patch_seams = guard.layer_seams(session.rgb, decoded, patches)
    rep = base.report
    if rep is not None:
        rep = report(block_scores(session.rgb, decoded), rep.floor)
        header.fidelity_min, header.fidelity_mean = rep.min, rep.mean
        header.fidelity_floor_met = rep.floor_met
    verdict = base.faces
    if verdict is not None:
        faces = session.faces()
        text = text_check.session_regions(session) if verdict.text_cer is not None else None
        if faces is not None:
            verdict = guard.verdict_of(session.rgb, decoded, faces, text)
    res = dataclasses.replace(base, data=pack(header, payload), report=rep, faces=verdict)
    return guard.tagged(res, target, max_bytes)
