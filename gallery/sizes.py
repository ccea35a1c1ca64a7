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
