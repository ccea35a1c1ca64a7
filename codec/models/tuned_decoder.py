"""A fine-tuned copy of a model's decoder, for files whose latent filter names one (issue 14 item 2).

The stock TAESD decoder was distilled on clean latents; the codec feeds it quantized ones (after the `dq1`
denoiser). `codec.tools.training.train_decoder` fine-tunes a copy on exactly those inputs. A latent filter
spec with ``decoder`` set (`codec.models.specs.LATENT_FILTERS`) decodes its files with that copy; the
stream itself is unchanged, so the stock decoder (or any SD-1.x VAE decoder) still decodes it to a
sensible picture — the tag is a preference, not a requirement (FORMAT.md tag 15).

`decoder_model` gives a model whose ``decode`` runs the tuned decoder: the torch model copied with the
zoo file's tensors loaded over its decoder, served by the same engine as the model it came from (an
OpenVINO/ONNX Runtime model exports the tuned graph once, under its own weight hash). Built once per
(model, file) and kept, like the tuned encoder of `codec.encoder.rdo`.
"""

from __future__ import annotations

import copy
import threading
from pathlib import Path
from typing import Any

import torch

from codec.errors import SetupError
from codec.models import deltas
from codec.models.base import LatentAutoencoder
from codec.models.specs import ZOO_DIR, LatentFilterSpec

_cache: dict[tuple[int, str], tuple[Any, LatentAutoencoder]] = {}
_lock = threading.Lock()


def decoder_path(spec: LatentFilterSpec) -> Path | None:
    """The zoo file of ``spec``'s tuned decoder, None when the spec has none."""
    return ZOO_DIR / spec.decoder if spec.decoder else None


def available(spec: LatentFilterSpec) -> bool:
    """Whether this build can decode ``spec``'s files the way they ask (its tuned decoder file is here)."""
    path = decoder_path(spec)
    return path is None or path.is_file()


def load_tensors(decoder: torch.nn.Module, path: Path, model_name: str) -> None:
    """Load the tensors of ``path`` over ``decoder`` (in place; every name must exist in it)."""
    if not path.is_file():
        raise SetupError(f"tuned decoder weights missing: {path} (made by `make train-decoder`)")
    deltas.load_over(decoder, path, model_name, "decoder", SetupError)


def decoder_model(model: LatentAutoencoder, spec: LatentFilterSpec) -> LatentAutoencoder:
    """``model`` with ``spec``'s tuned decoder (``model`` itself when the spec has none)."""
    path = decoder_path(spec)
    if path is None:
        return model
    key = (id(model), str(path))
    with _lock:
        hit = _cache.get(key)
        if hit is not None and hit[0] is model:
            return hit[1]
        tuned = build(model, path)
        _cache[key] = (model, tuned)  # the model is kept alive with it, so its id is not reused
    return tuned


def build(model: LatentAutoencoder, path: Path) -> LatentAutoencoder:
    """A new model whose decoder carries the tensors of ``path`` (uncached; `decoder_model` caches)."""
    from codec.models.onnx_runtime import OnnxAutoencoder

    base: Any = getattr(model, "base", model) if type(model).__name__ == "BatchingAutoencoder" else model
    engine = base.engine if isinstance(base, OnnxAutoencoder) else None
    torch_base: Any = base.base if engine is not None else base
    if getattr(torch_base, "ae", None) is None:
        raise SetupError(f"model {model.name!r} has no TAESD decoder to tune")
    # a shallow copy with its own networks: not the instance's call wrappers (`encode_result` installs a
    # memo as ``model.decode`` while it runs; the copy must call its own decoder)
    torch_model = copy.copy(torch_base)
    vars(torch_model).pop("decode", None)
    torch_model.ae = copy.deepcopy(torch_base.ae)
    load_tensors(torch_model.ae.decoder, path, model.name)
    torch_model.ae.decoder.requires_grad_(False).eval()
    out: Any = OnnxAutoencoder(torch_model, engine) if engine is not None else torch_model
    batched = getattr(model, "batch_callable", None)  # `codec.models.batching`: a GPU worker's threads
    if batched is not None:
        out.decode = batched(out.decode, "tuned-decode")  # share passes like the stock decoder's
    return out


def release(model: object) -> None:
    """Hand back the engine buffers of the tuned decoders built from ``model`` (`codec.memory.release`)."""
    with _lock:
        tuned = [t for m, t in _cache.values() if m is model]
    for t in tuned:
        free = getattr(t, "release_memory", None)
        if callable(free):
            free()
