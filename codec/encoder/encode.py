"""`encode`: image → bitstream, step by step.

1. read the image (`codec.imageio`: EXIF orientation, modes, limits) → RGB uint8;
2. for each resolution scale the rate control asks for, resize, run the encoder (tiled for large
   images) and, depending on ``effort``, the encoder-side RDO (`codec.encoder.rdo`); latents are cached
   per scale in the `EncodeSession`, so searching a byte budget costs one encoder pass per scale;
3. quantize (`codec.quant`), entropy-code (`codec.entropy`, best coder kept), pack (`codec.container`);
   with a byte budget, `codec.encoder.ratecontrol.search` picks the best setting whose file fits;
4. the fidelity guard (`codec.encoder.guard`) checks the decoded result block by block.
"""

from __future__ import annotations

from typing import Any

from codec.encoder import ratecontrol
from codec.encoder.guard import guard
from codec.encoder.session import EncodeSession
from codec.errors import BudgetError, UsageError
from codec.imageio import load_image
from codec.models.registry import get_model
from codec.options import bpp_to_bytes, check_effort


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
) -> bytes:
    """Encode ``image`` to a bitstream.

    Rate: ``quality`` (1..100, default 75), or a hard budget ``max_bytes`` / ``bpp`` — the file is
    never larger than the budget; `BudgetError` when no setting fits. ``effort``: ``fast`` (no RDO),
    ``default`` (amortised RDO, CPU friendly), ``max`` (iterative RDO, meant for a GPU).
    ``min_fidelity``: worst-block fidelity floor of the guard (None → the default floor, 0 → off).
    """
    effort = check_effort(effort)
    rgb = load_image(image, alpha=alpha)
    height, width = rgb.shape[:2]
    quality, max_bytes = resolve_budget(quality, max_bytes, bpp, width, height)
    session = EncodeSession(get_model(model, device=device, model_path=model_path), rgb, effort)

    if max_bytes is None:
        assert quality is not None
        setting = ratecontrol.setting_for_quality(quality)
    else:
        fitting = ratecontrol.candidates(lambda st: len(session.stream(st, search=True)), max_bytes)
        setting = session.pick_measured(fitting)
    data = session.stream(setting)
    if effort == "max":
        data = session.refine_max(setting, data, max_bytes)
    data = guard(session, data, max_bytes=max_bytes, min_fidelity=min_fidelity)
    if max_bytes is not None and len(data) > max_bytes:  # defensive: search guarantees this
        raise BudgetError(f"internal error: {len(data)} bytes > budget {max_bytes}")
    return data
