"""The upload size presets (name → bits per pixel) and byte budgets, defined once.

The model's choices, the form's bounds and the services' byte targets all read this table; the
bpp → bytes rounding is the codec's (``codec.options.bpp_to_bytes``: a budget rounds down, so a file
never exceeds the bpp it was asked for). Torch-free.
"""

from __future__ import annotations

from codec.options import bpp_to_bytes

#: preset name → nominal bits per pixel (measured on the oriented pixel count)
#: "high" (issue 14): above 0.2 bpp the codec spends part of the budget on a residual layer (Kodak 24
#: at 0.5 bpp: 27.7 → 29.8 dB, MS-SSIM 0.948 → 0.960, LPIPS 0.131 → 0.072; docs/bench/residual/), and
#: the ladder's up-scaled latents climb too (up to 3 MP coded); photos over 4 MP get no residual
PRESET_BPP: dict[str, float] = {"tiny": 0.05, "small": 0.10, "standard": 0.15, "high": 0.40}
BUDGET = "budget"  # the explicit byte budget choice
DEFAULT = "standard"

#: quality targets a preset may use (``GALLERY_PRESET_TARGET``; the codec's
#: ``codec.encoder.encode.TARGETS``, repeated here because that module imports torch)
PRESET_TARGETS: tuple[str, ...] = ("faithful",)

MIN_BUDGET_BYTES = 256
MAX_BUDGET_BYTES = 10 * 1024 * 1024


def label(name: str) -> str:
    """The choice label shown in the form and the admin."""
    if name == BUDGET:
        return "Explicit byte budget"
    return f"{name.capitalize()} (≈{PRESET_BPP[name]:.2f} bpp)"


def target_for(
    size: str, width: int, height: int, budget_bytes: int | None = None
) -> tuple[int, float | None]:
    """(byte budget, nominal bpp or None) for a size choice and the oriented image size."""
    if size == BUDGET:
        if budget_bytes is None:
            raise ValueError("an explicit budget needs budget_bytes")
        return int(budget_bytes), None
    bpp = PRESET_BPP[size]
    return max(MIN_BUDGET_BYTES, bpp_to_bytes(bpp, width, height)), bpp


def quality_target(size: str, target: str) -> str | None:
    """The codec ``target`` for a photo of this size choice (``GALLERY_PRESET_TARGET``, e.g.
    "faithful": the block floor and every face kept); an explicit byte budget, or an empty setting,
    is a plain budget."""
    return target if target and size in PRESET_BPP else None


def target_cap(target_bytes: int, headroom: float) -> int:
    """The most bytes a preset photo may take when its quality target needs more than the preset's
    nominal bytes (``GALLERY_PRESET_TARGET_HEADROOM`` × nominal, at most `MAX_BUDGET_BYTES`)."""
    return max(int(target_bytes), min(MAX_BUDGET_BYTES, int(target_bytes * headroom)))


def encode_budget(size: str, target_bytes: int, target: str, headroom: float) -> dict[str, object]:
    """The codec's rate arguments for a photo: a plain budget (``max_bytes``), or for a preset with a
    quality target the nominal bytes as ``base_bytes`` and the headroom cap as ``max_bytes``.

    Why upwards and not "the smallest file that meets the target": the target's floors say a face or
    a block is not broken, not that the picture is as good as the preset promised. Shrinking to them
    loses what they do not see (kodim04 at "standard": 7,099 → 2,192 bytes, LPIPS 0.141 → 0.330,
    blue eyes turned brown, floors met). So a preset photo is the nominal file when that already
    keeps its faces and structure (no extra encoder work), and only a photo that needs it grows."""
    quality = quality_target(size, target)
    if quality is None:
        return {"max_bytes": int(target_bytes)}
    return {"max_bytes": target_cap(target_bytes, headroom), "base_bytes": int(target_bytes),
            "target": quality}
