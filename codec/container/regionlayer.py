"""Region latents: small extra latents for regions that must stay what they are (faces, issue 12).

At a small byte budget the whole-image latent often cannot keep a face: eyes become smudges, a mouth a
blob. Re-coding the face box as pixels (the patch layer, `codec.container.patchlayer`) costs many bytes
and looks like a different codec pasted in. A region latent instead codes the box once more *as a
latent of its own*, at its own resolution scale (up to 2× the box, so a 50-px face gets a 100-px
latent) and quantizer: the same decoder, the same look, and on training faces fewer bytes for the
same identity distance than a WebP/AVIF patch (see docs/bench/faces/regions.md).

Section body (integers are LEB128 varints):

==================  ===========================================================================
``u8`` version       0
count                number of regions, 1..`MAX_REGIONS`
per region:
  x, y, w, h         the box in display pixels: inside the image, ``w, h ≥ MIN_SIDE``
  ``u8`` feather     width in pixels of the linear blend at the box edges that are not on the
                     image border, ≤ min(w, h) / 4
  length             bytes of the stream, 1..`max_stream_bytes`
  stream             a complete bitstream of this format (`codec.container.header`) whose display
                     size is exactly ``w × h``: a latent payload of the outer file's model, no
                     extension sections (no nested patch or region layers)
==================  ===========================================================================

Regions are pasted in order over the decoded base latent, before the patch layer. `parse` checks all
of it, including every nested header (strictly, by `codec.container.header.parse`), before a pixel is
decoded; anything wrong is a `BitstreamError`. No torch here: the web process may parse these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from codec.container.patchlayer import edge_ramp
from codec.container.wire import Reader, varint_bytes
from codec.errors import BitstreamError, UnsupportedVersionError

VERSION = 0
MAX_REGIONS = 8
MIN_SIDE = 16
#: a region's box may cover at most this share of the image (more: code the whole image better)
MAX_AREA_SHARE = 0.75


@dataclass(frozen=True)
class Region:
    """One box of the display image and the bitstream that codes it."""

    x: int
    y: int
    w: int
    h: int
    feather: int
    stream: bytes


@dataclass(frozen=True)
class RegionLayer:
    regions: tuple[Region, ...]


def max_stream_bytes(w: int, h: int) -> int:
    """Upper bound on one region's stream (the raw pixels of the box at 2× plus framing)."""
    return 3 * (2 * w) * (2 * h) + 4096


def _check_box(x: int, y: int, w: int, h: int, feather: int, width: int, height: int) -> None:
    if w < MIN_SIDE or h < MIN_SIDE or x + w > width or y + h > height:
        raise BitstreamError(f"region {x},{y} {w}x{h} not inside the {width}x{height} image "
                             f"(or a side under {MIN_SIDE} px)")
    if w * h > MAX_AREA_SHARE * width * height:
        raise BitstreamError(f"region {w}x{h} covers more than {MAX_AREA_SHARE:.0%} of the image")
    if feather > min(w, h) // 4:
        raise BitstreamError(f"region feather {feather} over a quarter of its side")


def pack(layer: RegionLayer, width: int, height: int) -> bytes:
    """Serialise ``layer`` for an image of ``width × height`` (ValueError if it is not valid)."""
    if not 1 <= len(layer.regions) <= MAX_REGIONS:
        raise ValueError(f"a region layer holds 1..{MAX_REGIONS} regions, got {len(layer.regions)}")
    out = bytearray([VERSION]) + varint_bytes(len(layer.regions))
    for reg in layer.regions:
        try:
            _check_box(reg.x, reg.y, reg.w, reg.h, reg.feather, width, height)
        except BitstreamError as exc:
            raise ValueError(str(exc)) from exc
        if not 1 <= len(reg.stream) <= max_stream_bytes(reg.w, reg.h):
            raise ValueError(f"region stream of {len(reg.stream)} bytes")
        for v in (reg.x, reg.y, reg.w, reg.h):
            out += varint_bytes(int(v))
        out += bytes([reg.feather]) + varint_bytes(len(reg.stream)) + reg.stream
    return bytes(out)


def parse(data: bytes, width: int, height: int, model_id: int) -> RegionLayer:
    """Parse and check a section body of a ``width × height`` image coded with ``model_id``.

    Every nested stream is parsed by the container's strict parser and must be a plain latent of the
    same model at exactly its box's size; `BitstreamError` on anything else.
    """
    from codec.container.header import PAYLOAD_LATENT, section_bytes
    from codec.container.header import parse as parse_stream

    data = bytes(data)
    r = Reader(data, len(data))
    version = r.u8("region layer version")
    if version != VERSION:
        raise UnsupportedVersionError(f"region layer version {version} (this build reads {VERSION})")
    n = r.varint("region count", MAX_REGIONS)
    if n < 1:
        raise BitstreamError("region layer without regions")
    regions = []
    for _ in range(n):
        x = r.varint("region x", width)
        y = r.varint("region y", height)
        w = r.varint("region width", width)
        h = r.varint("region height", height)
        feather = r.u8("region feather")
        _check_box(x, y, w, h, feather, width, height)
        length = r.varint("region stream length", max_stream_bytes(w, h))
        if length < 1:
            raise BitstreamError("empty region stream")
        stream = r.take(length, "region stream")
        sub, _payload = parse_stream(stream)
        if sub.payload_kind != PAYLOAD_LATENT or sub.model_id != model_id:
            raise BitstreamError("a region stream must be a latent of the file's own model")
        if (sub.width, sub.height) != (w, h):
            raise BitstreamError(f"region stream is {sub.width}x{sub.height}, its box {w}x{h}")
        if section_bytes(sub):
            raise BitstreamError("a region stream may not carry extension sections")
        regions.append(Region(x, y, w, h, feather, bytes(stream)))
    if r.pos != r.end:
        raise BitstreamError(f"{r.end - r.pos} trailing bytes after the regions")
    return RegionLayer(tuple(regions))


def blend_mask(reg: Region, width: int, height: int) -> np.ndarray:
    """(h, w, 1) float32 weights of the region's pixels: 1 inside, a linear ramp over ``feather`` px at
    the box edges that are not on the image border (there the region's own decoder edge shows)."""
    wy = edge_ramp(reg.h, reg.feather, reg.y > 0, reg.y + reg.h < height)
    wx = edge_ramp(reg.w, reg.feather, reg.x > 0, reg.x + reg.w < width)
    return (wy[:, None] * wx[None, :])[:, :, None]


def paste(base: np.ndarray, reg: Region, pixels: np.ndarray) -> np.ndarray:
    """``base`` with the region's decoded ``pixels`` (h, w, 3) uint8 blended in (a new array)."""
    height, width = base.shape[:2]
    out = base.copy()
    window = out[reg.y : reg.y + reg.h, reg.x : reg.x + reg.w].astype(np.float32)
    m = blend_mask(reg, width, height)
    window = m * pixels.astype(np.float32) + (1.0 - m) * window
    out[reg.y : reg.y + reg.h, reg.x : reg.x + reg.w] = np.clip(np.rint(window), 0, 255).astype(np.uint8)
    return out


def apply(base: np.ndarray, layer: RegionLayer, decode: Callable[[bytes], np.ndarray]) -> np.ndarray:
    """Paste every region, decoded by ``decode`` (stream → (h, w, 3) uint8), over ``base``."""
    out = base
    for reg in layer.regions:
        pixels = decode(reg.stream)
        if pixels.shape != (reg.h, reg.w, 3):
            raise BitstreamError(f"region decoded to {pixels.shape}, expected {(reg.h, reg.w, 3)}")
        out = paste(out, reg, pixels)
    return out
