"""Model registry: name ↔ stable numeric id ↔ configuration (as data), and the per-process cache.

The numeric ``model_id`` is written into bitstreams, so it must never change for a given name.
``get_model`` loads a model once per (name, device, model_path) and returns the same instance
afterwards (workers keep it warm). torch is imported only when a model is actually loaded.
"""

from __future__ import annotations

import importlib
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from codec.errors import UsageError
from codec.models.batching import BatchingAutoencoder, batch_settings
from codec.models.specs import (
    DEFAULT_MODEL,
    FACTORIES,
    MODELS,
    MODELS_BY_ID,
    ModelSpec,
    get_spec,
    list_models,
)

if TYPE_CHECKING:
    from codec.models.base import LatentAutoencoder

__all__ = ["DEFAULT_MODEL", "MODELS", "MODELS_BY_ID", "ModelSpec", "clear_cache", "get_model", "get_spec",
           "list_models"]


def build(spec: ModelSpec, device: object, model_path: str | None) -> LatentAutoencoder:
    """Construct the backend of ``spec`` with its family's factory (`codec.models.specs.FACTORIES`)."""
    if spec.family not in FACTORIES:  # pragma: no cover - the table is checked by the tests
        raise UsageError(f"model {spec.name!r} has unknown family {spec.family!r}")
    target, location_arg = FACTORIES[spec.family]
    module_name, _, class_name = target.partition(":")
    factory = getattr(importlib.import_module(module_name), class_name)
    return factory(spec, device=device, **{location_arg: model_path})


_cache: dict[tuple, LatentAutoencoder] = {}
_cache_lock = threading.Lock()


def get_model(
    name: str = DEFAULT_MODEL,
    device: str | None = None,
    model_path: str | os.PathLike[str] | None = None,
    backend: str | None = None,
) -> LatentAutoencoder:
    """The loaded model ``name`` on ``device`` (None → CUDA if available, else CPU), cached per process.

    ``model_path``: for the TAESD family a directory holding the weight files (overrides
    ``CODEC_MODEL_DIR``); for ``sd-vae`` the diffusers directory (required).
    ``backend``: inference engine, None → ``$CODEC_BACKEND``, default ``torch`` (the reference);
    ``onnxruntime``/``openvino`` run the TAESD family's inference on the CPU through
    `codec.models.onnx_runtime`. From the environment variable, a model or device the engine does not
    serve silently stays on torch; passed explicitly, it raises UsageError.
    ``CODEC_BATCH_MAX`` > 1 wraps the model in `codec.models.batching.BatchingAutoencoder` (a GPU
    worker coding several photos in threads shares forward passes between them).
    """
    from codec.device import resolve_device
    from codec.models.onnx_runtime import resolve_backend

    spec = get_spec(name)
    dev = resolve_device(device)
    path = str(Path(model_path).expanduser().resolve()) if model_path is not None else None
    engine = resolve_backend(backend)
    if engine != "torch" and backend is None and (spec.family != "taesd" or dev.type != "cpu"):
        engine = "torch"
    rows, wait_s = batch_settings()
    key = (spec.name, str(dev), path, engine, rows, wait_s if rows > 1 else 0.0)
    with _cache_lock:
        model = _cache.get(key)
        if model is None:
            # Built under the lock: two threads asking at once must not load twice.
            torch_key = (spec.name, str(dev), path, "torch", 1, 0.0)
            base = _cache.get(torch_key)
            if base is None:
                base = _cache[torch_key] = build(spec, dev, path)
            model = base if engine == "torch" else _wrap(spec, base, engine)
            if rows > 1:
                model = BatchingAutoencoder(model, max_batch=rows, max_wait_s=wait_s)
            _cache[key] = model
    return model


def _wrap(spec: ModelSpec, base: LatentAutoencoder, engine: str) -> LatentAutoencoder:
    from codec.models.onnx_runtime import OnnxAutoencoder

    if spec.family != "taesd":
        raise UsageError(f"backend {engine!r} serves the TAESD family only, not {spec.name!r}")
    return OnnxAutoencoder(base, engine)  # type: ignore[return-value]


def clear_cache() -> None:
    """Drop all cached models (tests, or to free memory)."""
    with _cache_lock:
        _cache.clear()
