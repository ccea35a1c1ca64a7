"""Learned dequantization: a small residual CNN that moves a dequantized latent towards the encoder's
latent before the (frozen, stock) decoder runs — the seed's "clean the quantization noise" step.

Input: the reconstruction points the decoder would see (``codec.quant.dequantize``) and the quantizer
(per-channel step, known from the header). Output: the latent plus a correction bounded by
`MAX_SHIFT` quantizer steps per value, so the result stays next to the decoded symbol's bin (the
file still decodes to a sensible picture without the network: it is an optional, non-critical
refinement, see FORMAT.md metadata tag 15). Conv only, no normalisation: the output at a position
depends only on a 2·`depth`+1 wide neighbourhood, so large latents are filtered in row strips with
that much context and give exactly what a whole pass would (bounded memory).

Weights: ``codec/zoo/<spec.file>`` (safetensors, float16 on disk, float32 at run time; metadata:
base model, width, depth, filter id, training report). `codec.tools.training.train_denoiser` makes
them. Torch-side (components layer).
"""

from __future__ import annotations

import json
import threading

import numpy as np
import torch
from safetensors import safe_open
from torch import Tensor, nn

from codec.errors import SetupError
from codec.models.specs import LATENT_FILTERS, ZOO_DIR, LatentFilterSpec
from codec.quant import CLAMP, TANH_POINT_LIMIT, QuantParams

#: the correction is at most this many quantizer steps (per value, in the quantizer domain)
MAX_SHIFT = 1.0
#: latent rows filtered at once (plus the receptive-field context above and below)
STRIP_ROWS = 128


class LatentDenoiser(nn.Module):
    """zq (N,C,h,w) + per-channel step (N,C,1,1) → cleaner latent, both in the quantizer domain."""

    def __init__(self, channels: int = 4, width: int = 48, depth: int = 5) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError("depth must be ≥ 2 (head + tail)")
        self.channels, self.width, self.depth = channels, width, depth
        layers: list[nn.Module] = [nn.Conv2d(2 * channels, width, 3, padding=1), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
        layers.append(nn.Conv2d(width, channels, 3, padding=1))
        self.net = nn.Sequential(*layers)
        nn.init.zeros_(layers[-1].weight)  # starts as the identity
        nn.init.zeros_(layers[-1].bias)

    @property
    def radius(self) -> int:
        """Latent positions of context one output value depends on, per side."""
        return self.depth

    def forward(self, u: Tensor, step: Tensor) -> Tensor:
        cond = torch.log(step).expand(-1, -1, u.shape[-2], u.shape[-1])
        r = self.net(torch.cat([u / CLAMP, cond], dim=1))
        return u + MAX_SHIFT * step * torch.tanh(r)


def filter_spec(filter_id: int) -> LatentFilterSpec | None:
    """The spec of a filter id this build knows, else None (a newer file: decode without it)."""
    return LATENT_FILTERS.get(int(filter_id))


def load(spec: LatentFilterSpec) -> LatentDenoiser:
    """The denoiser of ``spec`` from the zoo (float32, eval); SetupError if the file is missing/wrong."""
    path = ZOO_DIR / spec.file
    if not path.is_file():
        raise SetupError(f"latent denoiser weights missing: {path} (made by `make train-denoiser`)")
    with safe_open(str(path), framework="pt", device="cpu") as f:
        meta = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    # a denoiser file is written for the first filter that names it (later ids reuse it with a tuned decoder)
    made_for = min(s.filter_id for s in LATENT_FILTERS.values() if s.file == spec.file)
    if meta.get("base_model") != spec.model or int(meta.get("filter_id", -1)) != made_for:
        raise SetupError(f"{path}: made for {meta.get('base_model')!r} / filter "
                         f"{meta.get('filter_id')!r}, expected {spec.model!r} / {made_for}")
    config = json.loads(meta.get("config", "{}"))
    net = LatentDenoiser(**config)
    try:
        net.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=True)
    except RuntimeError as exc:
        raise SetupError(f"{path}: tensors do not fit the denoiser config {config}: {exc}") from exc
    return net.requires_grad_(False).eval()


_cache: dict[str, LatentDenoiser] = {}  # by weight file: filters that share a denoiser share one net
_lock = threading.Lock()


def get_denoiser(filter_id: int) -> LatentDenoiser:
    """The denoiser of ``filter_id``, loaded once per process (KeyError-free: SetupError if unknown)."""
    spec = filter_spec(filter_id)
    if spec is None:
        raise SetupError(f"latent filter {filter_id} is unknown to this build")
    with _lock:
        net = _cache.get(spec.file)
        if net is None:
            net = _cache[spec.file] = load(spec)
    return net


def apply(net: LatentDenoiser, latent: np.ndarray, qp: QuantParams) -> np.ndarray:
    """Denoise a dequantized (C, h, w) latent of quantizer ``qp`` → (C, h, w) float32.

    Runs in the quantizer domain (``u = z``, or ``3·tanh(z/3)``) and maps back; strips of
    `STRIP_ROWS` rows with ``net.radius`` rows of context, so the result equals a whole pass.
    """
    if latent.ndim != 3 or latent.shape[0] != net.channels or qp.channels != net.channels:
        raise ValueError(f"expected a ({net.channels}, h, w) latent and quantizer, got {latent.shape}")
    z = torch.from_numpy(np.ascontiguousarray(latent, dtype=np.float32))[None]
    tanh = qp.domain == "tanh"
    u = CLAMP * torch.tanh(z / CLAMP) if tanh else z
    step = torch.tensor(qp.step(), dtype=torch.float32).view(1, -1, 1, 1)
    h, r = u.shape[-2], net.radius
    out = torch.empty_like(u)
    with torch.inference_mode():
        for y0 in range(0, h, STRIP_ROWS):
            y1 = min(h, y0 + STRIP_ROWS)
            a, b = max(0, y0 - r), min(h, y1 + r)
            out[..., y0:y1, :] = net(u[..., a:b, :], step)[..., y0 - a : y1 - a, :]
    if tanh:
        out = CLAMP * torch.atanh(out.clamp(-TANH_POINT_LIMIT, TANH_POINT_LIMIT) / CLAMP)
    return out[0].numpy()
