"""The tuned decoder of latent filter 2 (issue 14 item 2): which files use it, what a build without it
does, the engine serving it, and the checks on its weight file. Lean: 64×48 streams, a synthetic zoo file."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from codec.errors import SetupError
from codec.models import tuned_decoder
from codec.models.registry import get_model
from codec.models.specs import LATENT_FILTERS
from tests.codec.test_denoiser import _latent_file

SPEC = LATENT_FILTERS[2]


def _write_tuned(folder: Path, base_model: str = "taesd", extra: dict | None = None) -> Path:
    """A tuned-decoder file: the stock output conv with its weights scaled (a visible, known change)."""
    stock = get_model("taesd", "cpu", backend="torch").ae.decoder.state_dict()
    tensors = {"layers.18.weight": (stock["layers.18.weight"] * 1.3).half().contiguous(),
               "layers.18.bias": (stock["layers.18.bias"] + 0.05).half().contiguous(), **(extra or {})}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / SPEC.decoder
    save_file(tensors, str(path), metadata={"base_model": base_model, "kind": "decoder-delta"})
    return path


@pytest.fixture
def zoo(tmp_path, monkeypatch) -> Path:
    """A zoo folder the tuned-decoder module reads (the real denoiser stays where it is)."""
    monkeypatch.setattr(tuned_decoder, "ZOO_DIR", tmp_path)
    monkeypatch.setattr(tuned_decoder, "_cache", {})
    return tmp_path


def test_filter_2_decodes_with_the_tuned_decoder_and_falls_back_without_it(zoo) -> None:
    from codec.decoder import decode_rgb

    f1, f2 = _latent_file(1), _latent_file(2)
    missing = decode_rgb(f2)  # no tuned file in the zoo: the denoiser, then the stock decoder
    assert np.array_equal(missing, decode_rgb(f1))
    _write_tuned(zoo)
    tuned = decode_rgb(f2)
    assert not np.array_equal(tuned, decode_rgb(f1))
    assert np.array_equal(tuned, decode_rgb(f2))  # deterministic
    # without the filter (the stock path every SD-1.x decoder can take) the file still decodes as before
    assert np.array_equal(decode_rgb(f2, denoise=False), decode_rgb(_latent_file(None)))


def test_decoder_model_is_a_copy_built_once(zoo) -> None:
    _write_tuned(zoo)
    model = get_model("taesd", "cpu", backend="torch")
    tuned = tuned_decoder.decoder_model(model, SPEC)
    assert tuned is not model and tuned_decoder.decoder_model(model, SPEC) is tuned
    assert tuned_decoder.decoder_model(model, LATENT_FILTERS[1]) is model  # no decoder named
    z = torch.randn(1, 4, 6, 8, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        a, b = model.decode(z), tuned.decode(z)
    assert not torch.equal(a, b)
    stock_w = model.ae.decoder.state_dict()["layers.18.weight"]
    assert torch.allclose(tuned.ae.decoder.state_dict()["layers.18.weight"], (stock_w * 1.3).half().float())
    assert torch.equal(model.ae.decoder.state_dict()["layers.2.conv.0.weight"],
                       tuned.ae.decoder.state_dict()["layers.2.conv.0.weight"])  # the rest is the stock one


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="no openvino")
def test_an_engine_model_serves_its_tuned_decoder_on_the_engine(zoo) -> None:
    from codec.models.onnx_runtime import OnnxAutoencoder

    _write_tuned(zoo)
    torch_tuned = tuned_decoder.decoder_model(get_model("taesd", "cpu", backend="torch"), SPEC)
    engine = get_model("taesd", "cpu", backend="openvino")
    tuned = tuned_decoder.decoder_model(engine, SPEC)
    assert isinstance(tuned, OnnxAutoencoder) and tuned.engine == "openvino"
    z = torch.randn(1, 4, 6, 8, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        ref, out = torch_tuned.decode(z), tuned.decode(z)
    assert float((ref - out).abs().max()) < 1e-3
    tuned_decoder.release(engine)  # hands back the tuned graph's buffers too (no error, still usable)
    with torch.inference_mode():
        assert torch.equal(tuned.decode(z), out)


def test_foreign_weight_files_are_refused(tmp_path) -> None:
    decoder = get_model("taesd", "cpu", backend="torch").ae.decoder
    import copy

    target = copy.deepcopy(decoder)
    with pytest.raises(SetupError, match="missing"):
        tuned_decoder.load_tensors(target, tmp_path / "nope.safetensors", "taesd")
    with pytest.raises(SetupError, match="trained for"):
        tuned_decoder.load_tensors(target, _write_tuned(tmp_path / "a", base_model="taesdxl"), "taesd")
    bad = _write_tuned(tmp_path / "b", extra={"layers.99.weight": torch.zeros(2, dtype=torch.float16)})
    with pytest.raises(SetupError, match="does not have"):
        tuned_decoder.load_tensors(target, bad, "taesd")


def test_info_names_the_tuned_path() -> None:
    from codec.container.describe import info

    meta = info(_latent_file(2))
    assert meta["latent_filter"] == 2 and meta["preferred_decoder"] == "taesd+dq1+dd1"
    assert meta["latent_filter_available"] == (tuned_decoder.ZOO_DIR / SPEC.decoder).is_file()
