"""The sd-vae backend on a tiny randomly initialised AutoencoderKL saved by the test itself."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from codec.errors import ModelNotFoundError, UsageError
from codec.models import get_model
from codec.models.base import LatentAutoencoder


@pytest.fixture(scope="module")
def tiny_vae_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    vae = AutoencoderKL(
        block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        layers_per_block=1,
        norm_num_groups=4,
        latent_channels=4,
        scaling_factor=0.5,
        shift_factor=0.1,
    )
    out = tmp_path_factory.mktemp("tiny_vae")
    vae.save_pretrained(out)
    return out


def test_loads_and_round_trips_shapes(tiny_vae_dir: Path) -> None:
    from diffusers import AutoencoderKL

    m = get_model("sd-vae", device="cpu", model_path=tiny_vae_dir)
    assert isinstance(m, LatentAutoencoder)
    assert get_model("sd-vae", device="cpu", model_path=str(tiny_vae_dir)) is m  # cached
    assert (m.name, m.model_id, m.latent_channels, m.downscale) == ("sd-vae", 16, 4, 2)
    x = torch.rand(2, 3, 16, 24, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        z = m.encode(x)
        y = m.decode(z)
        y2 = m.decode(z)
    assert z.shape == (2, 4, 8, 12) and z.dtype == torch.float32
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert torch.equal(y, y2)

    # the wrapper applies [-1,1] images, the posterior mode and shift/scale exactly like diffusers
    ref = AutoencoderKL.from_pretrained(tiny_vae_dir).eval()
    with torch.inference_mode():
        mode = ref.encode(x * 2 - 1).latent_dist.mode()
        torch.testing.assert_close(z, (mode - 0.1) * 0.5)
        torch.testing.assert_close(y, (ref.decode(mode).sample + 1) / 2)


def test_model_path_required() -> None:
    with pytest.raises(UsageError, match="--model-path"):
        get_model("sd-vae", device="cpu")


def test_model_path_without_config(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=r"config\.json"):
        get_model("sd-vae", device="cpu", model_path=tmp_path)


def test_model_path_with_broken_weights(tmp_path: Path, tiny_vae_dir: Path) -> None:
    (tmp_path / "config.json").write_bytes((tiny_vae_dir / "config.json").read_bytes())
    (tmp_path / "diffusion_pytorch_model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ModelNotFoundError):
        get_model("sd-vae", device="cpu", model_path=tmp_path)
