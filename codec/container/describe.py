"""The JSON description of a bitstream (`codec.info`, `python -m codec info`): parse the header only.

Pure Python + numpy: no torch, no model. Keys are listed in docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from codec.container import patchlayer, regionlayer, residuallayer
from codec.container.cost import estimate
from codec.container.header import (
    _TAGS,
    EFFORTS,
    ENTROPY_CODERS,
    PAYLOAD_AVIF,
    PAYLOAD_KINDS,
    PAYLOAD_LATENT,
    Header,
    parse,
    section_bytes,
)
from codec.errors import BitstreamError, UsageError
from codec.models.specs import LATENT_FILTERS, MODELS_BY_ID


def as_bytes(data: Any) -> bytes:
    """``data`` as bytes; anything that is not bytes-like is a UsageError."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise UsageError(f"expected bytes, got {type(data).__name__}")


def info(data: bytes) -> dict[str, Any]:
    """The header of ``data`` as a JSON-able dict (what `codec.info` returns)."""
    raw = as_bytes(data)
    header, payload = parse(raw)
    return header_to_dict(header, len(raw), payload_bytes=len(payload))


def header_to_dict(header: Header, total_bytes: int, *, payload_bytes: int | None = None) -> dict[str, Any]:
    """The JSON object `python -m codec info` prints; with ``payload_bytes``, also ``decode_cost``
    (the decoder's work estimate of `codec.container.cost`)."""
    h = header
    spec = MODELS_BY_ID.get(int(h.model_id))
    out: dict[str, Any] = {
        "format_version": h.format_version,
        "payload_kind": PAYLOAD_KINDS.get(h.payload_kind, str(h.payload_kind)),
        "model": spec.name if (spec is not None and h.payload_kind == PAYLOAD_LATENT) else None,
        "model_id": h.model_id,
        "width": h.width,
        "height": h.height,
        "coded_width": h.coded_width,
        "coded_height": h.coded_height,
        "latent_channels": h.latent_channels if h.payload_kind == PAYLOAD_LATENT else None,
        "latent_height": h.latent_height,
        "latent_width": h.latent_width,
        "levels": h.quant.levels if h.quant is not None else None,
        "quant_domain": h.quant.domain if h.quant is not None else None,
        "quant_lo": list(h.quant.lo) if h.quant is not None else None,
        "quant_hi": list(h.quant.hi) if h.quant is not None else None,
        "quant_offsets": h.quant is not None and h.quant.offsets is not None,
        "entropy_coder": ENTROPY_CODERS.get(h.entropy_coder) if h.payload_kind == PAYLOAD_LATENT else None,
        "effort": EFFORTS[h.effort] if 0 <= h.effort < len(EFFORTS) else h.effort,
        "bytes": int(total_bytes),
        "bpp": 8.0 * total_bytes / (h.width * h.height),
    }
    for name, _kind in _TAGS.values():
        value = getattr(h, name)
        if value is not None:
            out[name] = value
    if h.payload_kind == PAYLOAD_LATENT and spec is not None:
        # which decoder path the file prefers: the stock decoder of its model (any SD-1.x VAE decoder
        # also works for taesd), or that decoder after the learned latent denoiser (issue 14 item 2)
        known = LATENT_FILTERS.get(h.latent_filter) if h.latent_filter is not None else None
        out["preferred_decoder"] = (f"{spec.name}+{known.name}" if known is not None
                                    else spec.name if h.latent_filter is None
                                    else f"{spec.name}+filter{h.latent_filter}")
        if h.latent_filter is not None:  # this build has its weights (denoiser and tuned decoder)
            out["latent_filter_available"] = known is not None and known.installed()
    if h.faces_found is not None or h.text_cer is not None:  # the identity check ran (issue 12)
        out["text_checked"] = h.text_cer is not None
    if payload_bytes is not None:
        out["decode_cost"] = estimate(h, payload_bytes).as_dict()
    if h.patch_layer is not None:
        out["patch_layer_bytes"] = len(h.patch_layer)
        out["patch_layer"] = _patches(h)
    if h.region_layer is not None:  # faces coded once more as small latents (issue 12)
        out["region_layer_bytes"] = len(h.region_layer)
        out["regions"] = _regions(h)
    if h.residual_layer is not None:  # what the decode still gets wrong, as one image (issue 14)
        out["residual_layer_bytes"] = len(h.residual_layer)
        out["residual_layer"] = _residual(h)
    if h.fidelity_min is not None:  # the guard ran: what it spent (layers, or the whole AVIF file)
        kinds = [k for k, body in (("regions", h.region_layer), ("patches", h.patch_layer))
                 if body is not None]
        out["guard"] = "avif" if h.payload_kind == PAYLOAD_AVIF else ("+".join(kinds) or "none")
        out["guard_bytes"] = (int(total_bytes) if h.payload_kind == PAYLOAD_AVIF
                              else len(section_bytes(dataclasses.replace(h, residual_layer=None))))
    return out


def _patches(h: Header) -> dict[str, object] | str:
    """Codec, windows and mode of the patch layer, or why it does not parse."""
    try:
        layer = patchlayer.parse(h.patch_layer or b"", h.width, h.height)
    except BitstreamError as exc:
        return f"invalid: {exc}"
    grid = patchlayer.Grid(h.height, h.width, layer.block)
    mode = {patchlayer.MODE_BLEND: "blend", patchlayer.MODE_FEATHER: "feather"}.get(layer.mode, "replace")
    return {"codec": layer.codec, "block": layer.block, "windows": len(layer.indices), "mode": mode,
            "margin": layer.margin, "feather": layer.feather,
            "atlas_size": list(layer.atlas_size(grid)), "atlas_bytes": len(layer.atlas)}


def _residual(h: Header) -> dict[str, object] | str:
    """Codec and size of the residual layer, or why it does not parse."""
    try:
        layer = residuallayer.parse(h.residual_layer or b"", h.width, h.height)
    except BitstreamError as exc:
        return f"invalid: {exc}"
    w, hh = residuallayer.image_size(h.width, h.height, layer.shift)
    return {"codec": layer.codec, "size": [w, hh], "bytes": len(layer.image)}


def _regions(h: Header) -> list[dict[str, object]] | str:
    """Box and bytes of each region latent, or why the layer does not parse."""
    try:
        layer = regionlayer.parse(h.region_layer or b"", h.width, h.height, int(h.model_id))
    except BitstreamError as exc:
        return f"invalid: {exc}"
    return [{"box": [r.x, r.y, r.w, r.h], "bytes": len(r.stream)} for r in layer.regions]
