"""Optional inference engines (codec/models/onnx_runtime.py) against the torch reference, real weights.

Lean: a 64×64 image and a 4×12×10 latent; the speed and full-size PSNR live in
scripts/bench_inference.py (docs/bench/inference/).
"""

from __future__ import annotations

import copy
import importlib.util
import sys

import numpy as np
import pytest
import torch

from codec.errors import UsageError
from codec.models import get_model
from codec.models.onnx_runtime import BACKEND_ENV, OnnxAutoencoder, resolve_backend
from codec.models.onnx_runtime import ENGINES as ENGINE_PACKAGES
from codec.resources import cache_root
from codec.tiling import TilingConfig, decode_latent


def _engines(*names: str) -> list:
    return [
        pytest.param(e, marks=pytest.mark.skipif(importlib.util.find_spec(ENGINE_PACKAGES[e]) is None,
                                                 reason=f"no {ENGINE_PACKAGES[e]}"))
        for e in names
    ]


F32_ENGINES = _engines("onnxruntime", "openvino")
#: max |engine − torch| on [0, 1] pixels / latents: float32 rounding, or bfloat16 arithmetic
TOLERANCE = {"onnxruntime": 1e-3, "openvino": 1e-3, "openvino-bf16": 0.15, "openvino-bf16enc": 0.15}


@pytest.fixture(scope="module")
def torch_model():
    return get_model("taesd", device="cpu", backend="torch")


@pytest.fixture(scope="module")
def latent(torch_model) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 96, 80, generator=g)
    with torch.inference_mode():
        return torch_model.encode(x)  # a real latent (4, 12, 10), not noise


@pytest.mark.parametrize("engine", _engines("onnxruntime", "openvino", "openvino-bf16"))
def test_engine_matches_torch_and_is_deterministic(engine: str, torch_model, latent) -> None:
    m = OnnxAutoencoder(torch_model, engine)
    with torch.inference_mode():
        ref = torch_model.decode(latent)
        a, b = m.decode(latent), m.decode(latent)
        x = ref.clamp(0, 1)[:, :, :64, :64].contiguous()
        z_ref, z = torch_model.encode(x), m.encode(x)
    assert a.shape == ref.shape and a.dtype == torch.float32
    assert torch.equal(a, b)  # same engine, same threads: bit-identical
    tol = TOLERANCE[engine]
    assert float((a - ref).abs().max()) < tol
    assert z.shape == z_ref.shape and float((z - z_ref).abs().max()) < 2 * tol
    assert list((cache_root() / "onnx").glob("taesd-dec-*.onnx"))  # exported at run time, into the cache


@pytest.mark.parametrize("engine", F32_ENGINES)
def test_the_tuned_encoder_of_effort_default_runs_on_the_engine(engine: str, torch_model) -> None:
    from codec.encoder import rdo

    m = OnnxAutoencoder(torch_model, engine)
    tuned_torch, tuned = rdo.get_encoder("default", torch_model), rdo.get_encoder("default", m)
    x = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        ref, out = tuned_torch(x), tuned(x)
    assert isinstance(tuned_torch, rdo.SequentialEncoder) and not isinstance(tuned, rdo.SequentialEncoder)
    assert out.shape == ref.shape and float((out - ref).abs().max()) < 2 * TOLERANCE[engine]
    assert list((cache_root() / "onnx").glob("taesd-enc-taesd_encoder_rdo-*.onnx"))
    stock = torch_model.encode(x)
    assert float((out - stock).abs().max()) > 0.01  # the tuned weights, not the stock encoder


def test_bf16_encoder_backend_keeps_the_f32_decoder(torch_model, latent) -> None:
    """``openvino-bf16enc``: the encoder graphs in bf16 (faster where the CPU has it), the decoder in f32,
    bit-identical to ``openvino``'s — a file must decode to the picture the guard checked."""
    pytest.importorskip("openvino")
    from codec.models import onnx_runtime
    from codec.models.onnx_runtime import precision_of

    assert [precision_of("openvino-bf16enc", p) for p in ("dec", "enc", "enc-rdo")] == [
        "f32", "fastest", "fastest"]
    assert precision_of("openvino", "enc") == "f32" and precision_of("openvino-bf16", "dec") == "bf16"
    f32, mixed = OnnxAutoencoder(torch_model, "openvino"), OnnxAutoencoder(torch_model, "openvino-bf16enc")
    x = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        assert torch.equal(mixed.decode(latent), f32.decode(latent))
        z32, z16 = f32.encode(x), mixed.encode(x)
    assert float((z16 - z32).abs().max()) < 2 * TOLERANCE["openvino-bf16enc"]
    # the encoder's precision was measured on this CPU: bf16 only when clearly faster than f32
    enc = mixed.runner("enc")
    assert enc.timings is not None and set(enc.timings) == {"f32", "bf16"}
    faster = enc.timings["bf16"] < onnx_runtime.BF16_MIN_GAIN * enc.timings["f32"]
    assert enc.precision == ("bf16" if faster else "f32")
    assert mixed.runner("dec").precision == "f32" and mixed.runner("dec").timings is None


def test_large_inputs_of_the_tuned_encoder_stay_on_torch(torch_model, monkeypatch) -> None:
    """Big tiles run on torch (the engine's activation memory on a 12 MP photo broke the 3 GB cap)."""
    pytest.importorskip("openvino")
    from codec.encoder import rdo
    from codec.models import onnx_runtime

    monkeypatch.setattr(onnx_runtime, "ENGINE_ENCODER_MAX_PIXELS", 64 * 64)
    m = OnnxAutoencoder(torch_model, "openvino")
    tuned = rdo.get_encoder("default", m)
    x = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        assert torch.equal(tuned(x), rdo.get_encoder("default", torch_model)(x))
    assert not m._runners  # nothing was exported or run on the engine


@pytest.mark.parametrize("engine", F32_ENGINES)
def test_tiled_decode_uses_dynamic_shapes(engine: str, torch_model, latent) -> None:
    m = OnnxAutoencoder(torch_model, engine)
    cfg = TilingConfig(max_whole_pixels=0, tile=48, margin=16)  # tiles of several shapes
    ref = decode_latent(torch_model, latent[0].numpy(), config=cfg, tiled=True).astype(int)
    out = decode_latent(m, latent[0].numpy(), config=cfg, tiled=True).astype(int)
    assert out.shape == ref.shape and np.abs(out - ref).max() <= 1


def test_gradients_go_to_torch(torch_model, latent) -> None:
    pytest.importorskip("onnxruntime")
    m = OnnxAutoencoder(torch_model, "onnxruntime")
    z = latent.clone().requires_grad_(True)
    m.decode(z).mean().backward()  # the encoder-side RDO differentiates through decode
    assert z.grad is not None and float(z.grad.abs().sum()) > 0
    assert m.ae is torch_model.ae  # the rest of the torch model shows through
    assert copy.deepcopy(m).ae is not torch_model.ae  # a copy to fine-tune is a torch copy


@pytest.mark.parametrize(("engine", "package"), [("onnxruntime", "onnxruntime"), ("openvino", "openvino"),
                                                 ("openvino", "onnx")])
def test_missing_package_is_a_clear_error(monkeypatch, torch_model, engine: str, package: str) -> None:
    monkeypatch.setitem(sys.modules, package, None)  # import <package> → ImportError
    with pytest.raises(UsageError, match=rf"pip install {package}\b"):
        OnnxAutoencoder(torch_model, engine)


def test_backend_selection(monkeypatch) -> None:
    monkeypatch.setenv(BACKEND_ENV, "tensorrt")
    with pytest.raises(UsageError, match=BACKEND_ENV):
        resolve_backend()
    monkeypatch.setenv(BACKEND_ENV, "")
    assert resolve_backend() == "torch"
    assert get_model("taesd", device="cpu") is get_model("taesd", device="cpu", backend="torch")
    with pytest.raises(UsageError, match="TAESD family only"):
        get_model("taef2", device="cpu", backend="onnxruntime")


def test_openvino_buffers_are_handed_back_once_per_large_pass(torch_model, latent, monkeypatch) -> None:
    """OpenVINO keeps the buffers of its largest input (1.9 GB after a 12 MP decode): `codec.tiling`
    asks for them back once per large image (not per tile), and never during another thread's call."""
    pytest.importorskip("openvino")
    from codec import tiling
    from codec.models import onnx_runtime

    calls: list[str] = []
    real = onnx_runtime.OvRunner.release
    monkeypatch.setattr(onnx_runtime.OvRunner, "release", lambda self: (calls.append("r"), real(self))[1])
    m = OnnxAutoencoder(torch_model, "openvino")
    cfg = TilingConfig(max_whole_pixels=0, tile=48, margin=16)  # several tiles
    first = decode_latent(m, latent[0].numpy(), config=cfg, tiled=True)
    assert calls == []  # 96×80 px is below RELEASE_PIXELS
    monkeypatch.setattr(tiling, "RELEASE_PIXELS", 0)
    again = decode_latent(m, latent[0].numpy(), config=cfg, tiled=True)
    assert calls == ["r"]  # one "dec" runner, released once after the last tile
    assert np.array_equal(first, again)
    assert np.array_equal(decode_latent(m, latent[0].numpy(), config=cfg, tiled=True), first)  # after it
    m._active = 1  # another thread's engine call in flight: nothing is released under it
    assert m.release_memory() is False and calls == ["r", "r"]  # (the third decode released once more)
