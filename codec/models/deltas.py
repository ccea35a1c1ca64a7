"""Fine-tuned tensors shipped in ``codec/zoo`` loaded over a copy of a stock network: the tuned encoder
tail (`codec.encoder.rdo`) and the tuned decoder (`codec.models.tuned_decoder`). A file holds only the
tensors it changes, plus metadata naming the model it was trained for."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import safe_open


def load_over(module: torch.nn.Module, path: str | Path, model_name: str, part: str,
              error: type[Exception]) -> None:
    """Load the tensors of ``path`` over ``module`` in place (each cast to the module's dtype and device).
    ``error`` is raised when the file was trained for another model or holds a tensor ``module`` (the
    model's ``part``) does not have."""
    with safe_open(str(path), framework="pt", device="cpu") as f:
        meta = f.metadata() or {}
        if meta.get("base_model", model_name) != model_name:
            raise error(f"{path} was trained for {meta.get('base_model')!r}, not {model_name!r}")
        delta = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    state = module.state_dict()
    unknown = sorted(set(delta) - set(state))
    if unknown:
        raise error(f"{path} holds tensors the {part} does not have: {unknown[:4]}")
    for k, v in delta.items():
        state[k] = v.to(dtype=state[k].dtype, device=state[k].device)
    module.load_state_dict(state, strict=True)
