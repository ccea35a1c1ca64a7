"""Model registry and the TAESD-family backends with the real weights on real Kodak crops."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from codec import weights
from codec.errors import UsageError
from codec.models import get_model, get_spec, list_models
from codec.models.base import LatentAutoencoder


def _kodak_crop(name: str = "kodim23.png", size: int = 256) -> torch.Tensor:
    try:
        d = weights.kodak_dir()
    except Exception as exc:  # pragma: no cover - machine without ../shared
        pytest.skip(f"Kodak not available: {exc}")
    img = np.asarray(Image.open(d / name).convert("RGB"))
    h, w = img.shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    crop = np.ascontiguousarray(img[top : top + size, left : left + size])
    return torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 255


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    a8 = (a.clamp(0, 1) * 255).round()
    b8 = (b.clamp(0, 1) * 255).round()
    mse = float(((a8 - b8) ** 2).mean())
    return 10 * np.log10(255**2 / mse)


def test_registry_ids_are_stable() -> None:
    ids = {n: get_spec(n).model_id for n in list_models()}
    assert ids == {"taesd": 1, "taesdxl": 2, "taesd3": 3, "taef1": 4, "taef2": 5, "sd-vae": 16}
    assert get_spec(3).name == "taesd3"
    assert get_spec("TAESD").latent_channels == 4
    assert get_spec("taef1").latent_channels == 16
    assert get_spec("taef2").latent_channels == 32


@pytest.mark.parametrize("bad", ["nope", 999, "", None])
def test_unknown_model(bad: object) -> None:
    with pytest.raises(UsageError, match="unknown model"):
        get_spec(bad)  # type: ignore[arg-type]
    if isinstance(bad, str):
        with pytest.raises(UsageError):
            get_model(bad, device="cpu")


def test_bad_device() -> None:
    with pytest.raises(UsageError):
        get_model("taesd", device="tpu")


def test_taesd_loads_once_and_round_trips() -> None:
    x = _kodak_crop()
    m = get_model("taesd", device="cpu")
    assert get_model("taesd", device="cpu") is m
    assert get_model("taesd", device="cpu") is get_model("taesd", device=torch.device("cpu").type)
    assert isinstance(m, LatentAutoencoder)
    assert (m.name, m.model_id, m.latent_channels, m.downscale) == ("taesd", 1, 4, 8)
    assert m.dtype == torch.float32
    with torch.inference_mode():
        z = m.encode(x)
        y = m.decode(z)
        y2 = m.decode(z)
    assert z.shape == (1, 4, 32, 32) and z.dtype == torch.float32
    assert float(z.abs().max()) < 12  # roughly [-3, 3], tails go further
    assert y.shape == x.shape
    assert torch.equal(y, y2), "decode must be deterministic on a device"
    # measured 26.8 dB on this crop; floor with margin
    assert _psnr(x, y) >= 25.0


# measured on the 128-px centre crop of kodim23: taesdxl 32.7, taesd3 35.7, taef1 34.2, taef2 35.6 dB
@pytest.mark.parametrize(
    ("name", "channels", "floor"),
    [("taesdxl", 4, 30.5), ("taesd3", 16, 33.5), ("taef1", 16, 32.0), ("taef2", 32, 33.5)],
)
def test_other_tiny_models(name: str, channels: int, floor: float) -> None:
    x = _kodak_crop(size=128)
    m = get_model(name, device="cpu")
    with torch.inference_mode():
        z = m.encode(x)
        y = m.decode(z)
    assert z.shape == (1, channels, 16, 16)
    assert _psnr(x, y) >= floor


def test_input_checks() -> None:
    m = get_model("taesd", device="cpu")
    with pytest.raises(ValueError, match="multiple of 8"):
        m.encode(torch.zeros(1, 3, 20, 16))
    with pytest.raises(ValueError):
        m.decode(torch.zeros(1, 16, 2, 2))


def test_gradients_flow_to_latents() -> None:
    m = get_model("taesd", device="cpu")
    z = torch.zeros(1, 4, 4, 4, requires_grad=True)
    m.decode(z).mean().backward()
    assert z.grad is not None and float(z.grad.abs().sum()) > 0
    assert all(not p.requires_grad for p in m.ae.parameters())  # type: ignore[attr-defined]


def test_taef2_loads_strict_with_pool_branches() -> None:
    from codec.models.taef2 import TAEF2

    m = get_model("taef2", device="cpu")
    assert isinstance(m, TAEF2) and isinstance(m, LatentAutoencoder)
    pooled_enc = [i for i, layer in enumerate(m.encoder) if getattr(layer, "pool", None) is not None]
    pooled_dec = [i for i, layer in enumerate(m.decoder) if getattr(layer, "pool", None) is not None]
    assert (pooled_enc, pooled_dec) == ([11, 12, 13], [3, 4, 5])
    assert m.encoder[-1].out_channels == 32



def test_device_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    from codec.device import default_dtype, resolve_device

    monkeypatch.delenv("CODEC_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device(None).type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    assert default_dtype(torch.device("cpu")) == torch.float32
    assert default_dtype(torch.device("cuda", 0)) == torch.float16
    monkeypatch.setenv("CODEC_DEVICE", "cpu")
    assert resolve_device(None).type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="no CUDA"):
            resolve_device("cuda")
    for bad in ("tpu", "cuda:x", "mps"):
        with pytest.raises(UsageError):
            resolve_device(bad)
