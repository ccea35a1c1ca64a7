"""The one decode path: bitstream → RGB, used by `codec.decode`, the fidelity guard and the bench.

A latent payload goes symbols → latent (`codec.entropy`, `codec.quant`) → the learned latent denoiser
when the file names one this build has (metadata tag ``latent_filter``, `codec.models.denoiser`) → the
model's stock decoder, or the fine-tuned copy the filter names (`codec.models.tuned_decoder`, filter 2)
(tiled for large images, `codec.tiling`) → crop to the coded size → resize to the display size, then
the region latents (if any: faces coded once more as small latents, `codec.container.regionlayer`) are
blended in, the patch layer (if any) is pasted over it and the residual layer (if any: what that decode
still gets wrong, `codec.container.residuallayer`) is added. A whole-image AVIF payload (the guard's
last resort) is decoded by the container's strict image decoder. Torch-side: the web process never
imports this.

Before anything is decoded, the header is priced (`codec.container.cost`) and checked against the
caller's `codec.options.DecodeLimits`: a stream asking for more work than allowed, or a sparse
("hostile") one asking for more than ``sparse_work``, raises `DecodeLimitError` in milliseconds.
"""

from __future__ import annotations

import hashlib
from contextvars import ContextVar
from dataclasses import replace
from enum import Enum
from typing import Any, Final

import numpy as np
from PIL import Image

from codec import entropy
from codec.container import cost, patchlayer, regionlayer, residuallayer
from codec.container.describe import as_bytes
from codec.container.header import PAYLOAD_AVIF, Header, parse
from codec.container.images import decode_image
from codec.imageio import resize_rgb
from codec.models import denoiser, tuned_decoder
from codec.models.base import LatentAutoencoder
from codec.models.registry import get_model, get_spec
from codec.options import DEFAULT_DECODE_LIMITS, UNLIMITED_DECODE, DecodeLimits
from codec.quant import dequantize
from codec.tiling import decode_latent


class _Default(Enum):
    """Marks a keyword argument left out (None is a value: no limit)."""

    DEFAULT = 0


_DEFAULT: Final = _Default.DEFAULT


def latent_to_rgb(
    model: LatentAutoencoder, latent: np.ndarray, coded_w: int, coded_h: int, width: int, height: int
) -> np.ndarray:
    """Decoder pass: latent → RGB uint8 cropped to the coded size, upsampled to the display size."""
    rgb = decode_latent(model, latent)[:coded_h, :coded_w]
    if (coded_w, coded_h) != (width, height):
        rgb = resize_rgb(rgb, width, height)
    return rgb


def decode_rgb(
    data: Any,
    *,
    model: LatentAutoencoder | None = None,
    device: str | None = None,
    model_path: str | None = None,
    limits: DecodeLimits = UNLIMITED_DECODE,
    max_pixels: int | _Default | None = _DEFAULT,
    patches: bool = True,
    denoise: bool = True,
) -> np.ndarray:
    """Decode a bitstream to (H, W, 3) uint8 at the display size.

    ``model``: an already loaded model (the encoder's own, in the guard); else the header's model is
    loaded (cached per process). ``patches=False`` skips the patch, region and residual layers (the
    guard scores the plain latent first). ``limits``: see `codec.decode`; the default here is none but the
    format's own (callers inside the codec decode what they just encoded; `codec.decode` applies the
    defaults), ``max_pixels`` overrides that one field. ``denoise=False`` ignores the file's latent
    denoiser (the stock decoder path every SD-1.x decoder can take; the encoder compares both).
    """
    if max_pixels is not _DEFAULT:
        limits = replace(limits, max_pixels=max_pixels)
    header, payload = parse(as_bytes(data))
    cost.check(header, len(payload), limits)  # before anything is decoded
    if header.payload_kind == PAYLOAD_AVIF:  # the fidelity guard's last resort
        return decode_image(payload, "avif", (header.width, header.height))
    layer = regions = residual = None
    if patches and header.patch_layer is not None:  # checked before the latent is decoded
        layer = patchlayer.parse(header.patch_layer, header.width, header.height)
    if patches and header.residual_layer is not None:
        residual = residuallayer.parse(header.residual_layer, header.width, header.height)
    if patches and header.region_layer is not None:  # every nested header checked here too
        regions = regionlayer.parse(header.region_layer, header.width, header.height, header.model_id)
    latent = _latent(header, payload)
    if model is None:
        model = get_model(get_spec(header.model_id).name, device=device, model_path=model_path)
    decoder = model
    if denoise:
        latent = filter_latent(header, latent, model.name)
        decoder = filter_decoder(header, model)
    rgb = latent_to_rgb(decoder, latent, header.coded_width, header.coded_height, header.width, header.height)
    if regions is not None:  # priced with the outer stream by cost.check above
        loaded = model
        rgb = regionlayer.apply(rgb, regions, lambda stream: decode_rgb(
            stream, model=loaded, limits=UNLIMITED_DECODE, max_pixels=None, patches=False, denoise=denoise))
    if layer is not None:
        rgb = patchlayer.apply(rgb, layer)
    if residual is not None:
        rgb = residuallayer.apply(rgb, residual)
    return rgb


def _latent(header: Header, payload: bytes) -> np.ndarray:
    """Entropy-decode and dequantize the latent (bounded by the header's shape)."""
    assert header.quant is not None
    symbols = entropy.decode_symbols(header.entropy_coder, payload, header.latent_shape, header.quant.levels)
    return dequantize(symbols, header.quant)


#: denoised latents kept while `codec.encoder.result.encode_result` runs in this thread (None
#: elsewhere): the guard and the final reconstruction denoise the same latent once, not twice
FILTER_MEMO: ContextVar[dict | None] = ContextVar("codec_filter_memo", default=None)
FILTER_MEMO_MAX = 16


def filter_latent(header: Header, latent: np.ndarray, model_name: str) -> np.ndarray:
    """``latent`` through the denoiser the header names, when this build knows it for ``model_name``
    (an unknown id — a newer file — or another model's decoder: the latent as it is)."""
    spec = denoiser.filter_spec(header.latent_filter) if header.latent_filter is not None else None
    if spec is None or spec.model != model_name:
        return latent
    assert header.quant is not None
    memo = FILTER_MEMO.get()
    if memo is None:
        return denoiser.apply(denoiser.get_denoiser(spec.filter_id), latent, header.quant)
    arr = np.ascontiguousarray(latent)
    key = (spec.filter_id, repr(header.quant), arr.shape, arr.dtype.str,
           hashlib.blake2b(arr.tobytes(), digest_size=20).digest())
    found = memo.get(key)
    if found is None:
        found = denoiser.apply(denoiser.get_denoiser(spec.filter_id), latent, header.quant)
        if len(memo) < FILTER_MEMO_MAX:
            memo[key] = found.copy()
        return found
    return found.copy()


def filter_decoder(header: Header, model: LatentAutoencoder) -> LatentAutoencoder:
    """The model that decodes the latent of a file whose filter names a tuned decoder
    (`codec.models.tuned_decoder`), when this build has it; else ``model`` (its stock decoder)."""
    spec = denoiser.filter_spec(header.latent_filter) if header.latent_filter is not None else None
    if spec is None or spec.model != model.name or spec.decoder is None or not tuned_decoder.available(spec):
        return model
    return tuned_decoder.decoder_model(model, spec)


def decode(
    data: bytes,
    *,
    device: str | None = None,
    model_path: str | None = None,
    limits: DecodeLimits | None = None,
    max_pixels: int | _Default | None = _DEFAULT,
    max_work: float | _Default | None = _DEFAULT,
    sparse_work: float | _Default | None = _DEFAULT,
) -> Image.Image:
    """Decode a bitstream to an RGB PIL image of the original display size.

    The decode cost is bounded by the header's claims, not by the stream's length: an all-zero latent
    of a huge image entropy-codes to a few dozen bytes. So the header is priced first and refused
    (`DecodeLimitError`, a `BitstreamError`) when it asks for more than the limits allow:

    - ``max_pixels`` (default 50 MP, the encoder's input limit; None = the format's 100 MP);
    - ``max_work`` (default 80 work units ≈ a 50 MP image; 1 unit ≈ 6 s on 2 idle cores);
    - ``sparse_work`` (default 4 units ≈ 25 s): the most a stream with implausibly few payload bits
      per latent value (< ``limits.min_bits_per_value``, default 0.01) may ask for.

    The defaults decode every file our encoder writes up to 50 MP (flat images included) and refuse
    the decode bombs of issue 10 in under a millisecond. Services decoding untrusted streams should
    pass a ``max_work`` from their time budget (seconds / 6 on 2 cores). ``limits`` gives all at once
    (`codec.options.DecodeLimits`); the keyword arguments override single fields of it.
    """
    base = DEFAULT_DECODE_LIMITS if limits is None else limits
    overrides = {name: value for name, value in
                 (("max_pixels", max_pixels), ("max_work", max_work), ("sparse_work", sparse_work))
                 if value is not _DEFAULT}
    if overrides:
        base = replace(base, **overrides)
    rgb = decode_rgb(data, device=device, model_path=model_path, limits=base)
    return Image.fromarray(rgb, "RGB")
