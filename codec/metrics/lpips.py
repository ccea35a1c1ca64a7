"""Compatibility alias for the module path ``codec.metrics.lpips`` (the code is in `lpips_alex`).

Prefer ``from codec.metrics import lpips, get_lpips_model``. Importing a submodule called
``lpips`` rebinds the package attribute ``codec.metrics.lpips`` to the module, which would break
callers of the function ``codec.metrics.lpips(a, b)``; so this module is itself callable with the
same signature, and both spellings keep working whichever is imported first.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from codec.metrics.lpips_alex import MIN_SIDE, LpipsAlex, get_lpips_model, lpips, to_unit_tensor

__all__ = ["MIN_SIDE", "LpipsAlex", "get_lpips_model", "lpips", "to_unit_tensor"]


class _CallableModule(types.ModuleType):
    def __call__(self, a: Any, b: Any, **options: Any) -> float:
        return lpips(a, b, **options)


sys.modules[__name__].__class__ = _CallableModule
