"""`encode`: image → bitstream, step by step.

1. read the image (`codec.imageio`: EXIF orientation, modes, limits) → RGB uint8;
2. for each resolution scale the rate control asks for, resize, run the encoder (tiled for large
   images) and, depending on ``effort``, the encoder-side RDO (`codec.encoder.rdo`); latents are cached
   per scale in the `EncodeSession`, so searching a byte budget costs one encoder pass per scale;
3. quantize (`codec.quant`), entropy-code (`codec.entropy`, best coder kept), pack (`codec.container`);
   with a byte budget, `codec.encoder.ratecontrol.search` picks the best setting whose file fits;
   an image without fine detail (`codec.encoder.flat`: flat fills, smooth gradients) searches only one
   tiny scale, so a huge flat picture costs milliseconds of encoder work, not minutes;
4. the fidelity guard (`codec.encoder.guard`) checks the decoded result block by block, and every face
   of the original against the identity floors (`codec.encoder.faces`), protecting what fails.

``target="faithful"`` (with a byte cap) searches the budget instead: the smallest file whose block floor
and faces hold (`encode_to_target`); when even the cap cannot hold them, the capped file says so
(``target_met: false``). With ``base_bytes`` the search only goes *up*: the file at ``base_bytes`` when
it already holds the target (no extra work), else the smallest budget up to the cap that does. That is
what a product preset wants: shrinking below the nominal budget to the bare floors loses visible
quality the floors do not see (kodim04 at 0.15 bpp: 7,099 B → 2,192 B, LPIPS 0.141 → 0.330, the blue
eyes turned brown, yet block floor and identity floors were met).
"""

from __future__ import annotations

import math
from typing import Any

from codec import memory
from codec.encoder import ratecontrol, residual
from codec.encoder import text as text_check
from codec.encoder.flat import low_detail_scale
from codec.encoder.guard import GuardResult, guard_result, resolve_floor
from codec.encoder.session import EncodeSession
from codec.errors import BudgetError, UsageError
from codec.imageio import load_image
from codec.models.registry import get_model
from codec.options import bpp_to_bytes, check_effort

#: quality targets of ``encode(target=...)``: the block floor and the identity floors (faces)
TARGETS = ("faithful",)
#: the budget search of a target stops when the bracket is this tight (ratio) or after this many tries
TARGET_PRECISION = 1.12
TARGET_MAX_TRIES = 6
#: smallest budget a target search starts from (bits per pixel)
TARGET_MIN_BPP = 0.02


def resolve_budget(
    quality: int | None, max_bytes: int | None, bpp: float | None, width: int, height: int
) -> tuple[int | None, int | None]:
    """(quality, max_bytes) with exactly one set: at most one of the three may be given."""
    named = (("quality", quality), ("max_bytes", max_bytes), ("bpp", bpp))
    given = [name for name, value in named if value is not None]
    if len(given) > 1:
        raise UsageError(f"give only one of quality, max_bytes, bpp (got {', '.join(given)})")
    if bpp is not None:
        max_bytes = bpp_to_bytes(bpp, width, height)
    if max_bytes is not None:
        if not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or max_bytes <= 0:
            raise UsageError(f"max_bytes must be a positive integer, got {max_bytes!r}")
        return None, max_bytes
    if quality is None:
        quality = ratecontrol.DEFAULT_QUALITY
    if not isinstance(quality, int) or isinstance(quality, bool):
        raise UsageError(f"quality must be an integer 1..100, got {quality!r}")
    return quality, None


def encode(
    image: Any,
    *,
    quality: int | None = None,
    max_bytes: int | None = None,
    bpp: float | None = None,
    model: str = "taesd",
    effort: str = "default",
    device: str | None = None,
    model_path: str | None = None,
    min_fidelity: float | None = None,
    alpha: str = "composite",
    target: str | None = None,
    check_faces: bool = True,
    check_text: bool = False,
    base_bytes: int | None = None,
    probe_faces: bool | None = None,
) -> bytes:
    """Encode ``image`` to a bitstream.

    Rate: ``quality`` (1..100, default 75), or a hard budget ``max_bytes`` / ``bpp`` — the file is
    never larger than the budget; `BudgetError` when no setting fits. ``effort``: ``fast`` (no RDO),
    ``default`` (amortised RDO, CPU friendly), ``max`` (iterative RDO, meant for a GPU).
    ``min_fidelity``: worst-block fidelity floor of the guard (None → the default floor, 0 → off; off
    also skips the face identity check).
    ``target="faithful"``: the smallest file (≤ the cap ``max_bytes`` / ``bpp``) that meets the block
    floor and keeps every face; ``target_met`` in the file says whether the cap allowed it.
    ``base_bytes`` (with a target): the nominal budget; the file is coded at it when that meets the
    target, and only grows (up to the cap) when it does not — never smaller than the nominal file.
    ``check_faces=False`` skips the identity check and the face protection (the bench's "before").
    ``probe_faces``: look for faces below the detector's minimum (20–39 px) also in photos over 0.25 MP
    (True; costs seconds: `codec.encoder.faces.FORCED_PROBE_MAX_PIXELS`), or never (False).
    ``check_text=True`` also OCRs the original's text lines (in the background, during the encoder
    pass) and protects them (`codec.encoder.text`).
    """
    effort = check_effort(effort)
    rgb = load_image(image, alpha=alpha)
    height, width = rgb.shape[:2]
    quality, max_bytes = resolve_budget(quality, max_bytes, bpp, width, height)
    if target is not None:
        if target not in TARGETS:
            raise UsageError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")
        if max_bytes is None:
            raise UsageError("target needs a byte cap: give max_bytes or bpp")
        if resolve_floor(min_fidelity) <= 0.0:
            raise UsageError("target needs the fidelity guard (min_fidelity must not be 0)")
    if base_bytes is not None:
        if target is None:
            raise UsageError("base_bytes needs a target")
        if not isinstance(base_bytes, int) or isinstance(base_bytes, bool) or base_bytes <= 0:
            raise UsageError(f"base_bytes must be a positive integer, got {base_bytes!r}")
        assert max_bytes is not None
        if base_bytes > max_bytes:
            raise UsageError(f"base_bytes {base_bytes} exceeds the cap {max_bytes}")
    low = low_detail_scale(rgb)
    net = get_model(model, device=device, model_path=model_path)
    memory.release_if_large(net, height * width)  # what earlier photos left in this process
    session = EncodeSession(net, rgb, effort,
                            search_scales=(low,) if low is not None else ratecontrol.ALL_SCALES,
                            probe_faces=probe_faces)
    if check_text and resolve_floor(min_fidelity) > 0.0:
        text_check.start(session)  # Tesseract on the original overlaps the encoder pass
    if target is not None:
        assert max_bytes is not None
        return encode_to_target(session, target, max_bytes, min_fidelity, check_faces, check_text,
                                base=base_bytes).data

    if max_bytes is None:
        assert quality is not None
        setting = ratecontrol.setting_for_quality(quality)
        if low is not None:
            setting = ratecontrol.Setting(low, setting.levels)
    else:
        fitting = ratecontrol.candidates(lambda st: len(session.stream(st, search=True)), max_bytes,
                                         scales=session.search_scales)
        setting = session.upgrade(session.pick_measured(fitting), max_bytes)
    data = session.stream(setting)
    if effort == "max":
        data = session.refine_max(setting, data, max_bytes)
    result = guard_result(session, data, max_bytes=max_bytes, min_fidelity=min_fidelity,
                          check_faces=check_faces, check_text=check_text)
    if max_bytes is not None:  # above ~0.2 bpp: a smaller latent + the residual
        result = residual.improve(session, result, max_bytes, lambda b: encode_at_budget(
            session, b, min_fidelity, None, check_faces, check_text))
    data = result.data
    if max_bytes is not None and len(data) > max_bytes:  # defensive: search guarantees this
        raise BudgetError(f"internal error: {len(data)} bytes > budget {max_bytes}")
    return data


def encode_at_budget(session: EncodeSession, max_bytes: int, min_fidelity: float | None,
                     target: str | None = None, check_faces: bool = True,
                     check_text: bool = False, quality_ref: float | None = None,
                     eyes_quick: bool = False) -> GuardResult:
    """Rate control + guard + face check at one byte budget (raises `BudgetError` when nothing fits).
    ``quality_ref``: the nominal file's whole-image quality in an upward target search
    (`codec.encoder.guard._FaceGuard.acceptable`); ``eyes_quick``: a search's try below its cap
    (`codec.encoder.guard._FaceGuard.eyes_quick`)."""
    fitting = ratecontrol.candidates(lambda st: len(session.stream(st, search=True)), max_bytes,
                                     scales=session.search_scales)
    setting = session.upgrade(session.pick_measured(fitting), max_bytes)
    data = session.stream(setting)
    if session.effort == "max":
        data = session.refine_max(setting, data, max_bytes)
    return guard_result(session, data, max_bytes=max_bytes, min_fidelity=min_fidelity, target=target,
                        check_faces=check_faces, check_text=check_text, quality_ref=quality_ref,
                        eyes_quick=eyes_quick)


def encode_to_target(
    session: EncodeSession, target: str, cap: int, min_fidelity: float | None, check_faces: bool = True,
    check_text: bool = False, base: int | None = None,
) -> GuardResult:
    """The smallest file meeting ``target`` up to ``cap`` bytes.

    The cap first: if even it misses the target, that file is written with ``target_met = false``. Else
    a geometric bisection of the budget between `TARGET_MIN_BPP` and the cap (a faithful file at a
    budget is assumed to stay faithful at a larger one: the rate control and the guard are monotone in
    bytes), at most `TARGET_MAX_TRIES` more encodes; the latents are cached in the session, so a try
    costs entropy coding and the guard's decodes, not an encoder pass.

    ``base``: search upwards instead — the file at ``base`` if it meets the target (one encode, as
    without a target), else the cap's (``target_met = false`` when even it misses), else the smallest
    budget in between that meets it (bisection, ≤ `TARGET_MAX_TRIES` more).
    """
    if base is not None and base >= cap:
        return encode_at_budget(session, cap, min_fidelity, target, check_faces, check_text)
    if base is not None:
        try:
            first = encode_at_budget(session, base, min_fidelity, target, check_faces, check_text,
                                     eyes_quick=True)
        except BudgetError:
            first = None
        if first is not None and first.faithful:
            return residual.improve(session, first, base, lambda b: encode_at_budget(
                session, b, min_fidelity, target, check_faces, check_text), target)
        # the extra bytes may protect faces as long as the photo stays as good as the nominal file
        ref = None if first is None else first.plain_quality if first.plain_quality is not None else (
            _quality(session, first.data))
        best = encode_at_budget(session, cap, min_fidelity, target, check_faces, check_text, ref)
        if not best.faithful:
            return best
        return _bisect(session, target, base, best, min_fidelity, check_faces, check_text, ref)
    best = encode_at_budget(session, cap, min_fidelity, target, check_faces, check_text)
    if not best.faithful:
        return best
    width, height = session.size
    lo = min(cap, max(64, bpp_to_bytes(TARGET_MIN_BPP, width, height)))
    return _bisect(session, target, lo, best, min_fidelity, check_faces, check_text)


def _bisect(session: EncodeSession, target: str, lo: int, best: GuardResult, min_fidelity: float | None,
            check_faces: bool, check_text: bool, quality_ref: float | None = None) -> GuardResult:
    """Smallest faithful file between ``lo`` bytes (not faithful or untried) and ``best`` (faithful)."""
    hi = len(best.data)
    for _ in range(TARGET_MAX_TRIES):
        if hi <= lo * TARGET_PRECISION:
            break
        mid = int(math.sqrt(lo * hi))
        try:
            result = encode_at_budget(session, mid, min_fidelity, target, check_faces, check_text,
                                      quality_ref, eyes_quick=True)
        except BudgetError:
            lo = mid
            continue
        if result.faithful:
            best, hi = result, min(mid, len(result.data))
        else:
            lo = mid
    return best


def _quality(session: EncodeSession, data: bytes) -> float:
    """Whole-image quality (MS-SSIM − LPIPS) of ``data`` against the session's original."""
    from codec.decoder import decode_rgb

    return session.quality_of(decode_rgb(data, model=session.model, max_pixels=None))
