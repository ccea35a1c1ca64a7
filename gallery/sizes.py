"""The upload size presets (name → bits per pixel) and byte budgets, defined once.

The model's choices, the form's bounds and the services' byte targets all read this table; the
bpp → bytes rounding is the codec's (``codec.options.bpp_to_bytes``: a budget rounds down, so a file
never exceeds the bpp it was asked for). Torch-free.
"""

from __future__ import annotations

from codec.options import bpp_to_bytes

#: preset name → nominal bits per pixel (measured on the oriented pixel count)
PRESET_BPP: dict[str, float] = {"tiny": 0.05, "small": 0.10, "standard": 0.15}
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
    """The codec ``target`` for a photo of this size choice: the presets are quality targets with
    their bytes as the cap (``GALLERY_PRESET_TARGET``, e.g. "faithful": the smallest file that keeps
    the block floor and every face); an explicit byte budget, or an empty setting, is a plain budget."""
    return target if target and size in PRESET_BPP else None
