"""Codec ``seed``: the published "palette of 8-bit latents" trick, kept as a point of comparison.

The idea (Bühlmann, "Stable Diffusion based image compression", 2022, there with the full SD VAE;
here with TAESD): encode the image to its 4-channel latent, store the latent as an 8-bit
RGBA-like image using TAESD upstream's convention ``u8 = round(clamp(z / 6 + 0.5, 0, 1) · 255)``,
reduce that 4-channel image to a 256-entry palette (Pillow's fast-octree quantizer, the only Pillow
method that handles 4 channels; optionally Floyd–Steinberg dithered in latent space), and compress
palette + indices with zlib. Decoding maps indices back through the palette, undoes the 8-bit
mapping and runs the TAESD decoder.

It has no rate control: the size is whatever the image gives (~0.13–0.15 bpp on Kodak). Dithering
is on by default (as published): on Kodak it costs ~5 % more bytes and gains ~0.01 MS-SSIM.

Container (all integers big-endian), 10 bytes of header:

    0  2  magic  b"SP"
    2  1  version (1)
    3  1  flags: bit 0 = dithered (informative); other bits must be 0
    4  1  model id (codec.models.registry; 4-channel models only)
    5  2  width   (1..65535)
    7  2  height  (1..65535)
    9  1  palette entries − 1
    10 …  zlib( palette (entries × 4 bytes) ‖ indices (ceil(H/8) × ceil(W/8) bytes, row-major) )

The parser is strict (no torch needed for it): bad magic/version/flags, absurd sizes, trailing or
missing bytes after decompression, and indices outside the palette raise `BitstreamError`, and
decompression never produces more than the header implies.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

from codec.errors import BitstreamError, UsageError

MAGIC = b"SP"
VERSION = 1
FLAG_DITHER = 1
_HEADER = struct.Struct(">2sBBBHHB")
HEADER_SIZE = _HEADER.size
#: Largest image the parser accepts (the TAESD decode of anything bigger is out of scope here).
MAX_PIXELS = 50_000_000
#: Upstream TAESD 8-bit convention: latents in about [-3, 3] ↔ [0, 1].
LATENT_RANGE = 6.0


@dataclass(frozen=True)
class SeedHeader:
    dithered: bool
    model_id: int
    width: int
    height: int
    colors: int

    @property
    def latent_shape(self) -> tuple[int, int]:
        return (-(-self.height // 8), -(-self.width // 8))


def latent_to_u8(z: np.ndarray) -> np.ndarray:
    """(…, C) float latents → uint8 with ``x / 6 + 0.5`` (upstream TAESD's 8-bit convention)."""
    return np.round(np.clip(z / LATENT_RANGE + 0.5, 0.0, 1.0) * 255.0).astype(np.uint8)


def u8_to_latent(u8: np.ndarray) -> np.ndarray:
    """Inverse of `latent_to_u8` (up to the rounding)."""
    return ((u8.astype(np.float32) / 255.0) - 0.5) * LATENT_RANGE


def palettize(u8: np.ndarray, colors: int = 256, dither: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(h, w, 4) uint8 → (palette (n, 4) uint8, indices (h, w) uint8) via Pillow's fast octree.

    Pillow only dithers when converting RGB/L images to a given palette, so the 4-channel
    Floyd–Steinberg pass (``dither=True``) is done here in numpy against Pillow's palette.
    """
    if not 2 <= colors <= 256:
        raise UsageError(f"colors must be in 2..256, got {colors}")
    img = Image.fromarray(np.ascontiguousarray(u8), "RGBA")
    q = img.quantize(colors=colors, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    indices = np.asarray(q, dtype=np.uint8)
    n = int(indices.max()) + 1
    palette = np.frombuffer(bytes(q.getpalette("RGBA")), dtype=np.uint8).reshape(-1, 4)[:n].copy()
    if dither:
        indices = _floyd_steinberg(u8, palette)
    return palette, indices


def _floyd_steinberg(u8: np.ndarray, palette: np.ndarray) -> np.ndarray:
    h, w, _ = u8.shape
    work = u8.astype(np.float32)
    pal = palette.astype(np.float32)
    out = np.empty((h, w), np.uint8)
    for y in range(h):
        for x in range(w):
            px = work[y, x]
            k = int(np.argmin(((pal - px) ** 2).sum(axis=1)))
            out[y, x] = k
            err = px - pal[k]
            if x + 1 < w:
                work[y, x + 1] += err * (7 / 16)
            if y + 1 < h:
                if x > 0:
                    work[y + 1, x - 1] += err * (3 / 16)
                work[y + 1, x] += err * (5 / 16)
                if x + 1 < w:
                    work[y + 1, x + 1] += err * (1 / 16)
    return out


def pack(header: SeedHeader, palette: np.ndarray, indices: np.ndarray, level: int = 9) -> bytes:
    """Header + zlib(palette ‖ indices)."""
    flags = FLAG_DITHER if header.dithered else 0
    head = _HEADER.pack(MAGIC, VERSION, flags, header.model_id, header.width, header.height,
                        header.colors - 1)
    body = palette.astype(np.uint8).tobytes() + indices.astype(np.uint8).tobytes()
    return head + zlib.compress(body, level)


def parse(data: bytes) -> tuple[SeedHeader, np.ndarray, np.ndarray]:
    """Strictly parse a ``seed`` file → (header, palette (n, 4), indices (h, w)). No torch."""
    if len(data) < HEADER_SIZE:
        raise BitstreamError(f"seed file truncated: {len(data)} bytes < {HEADER_SIZE}-byte header")
    magic, version, flags, model_id, width, height, ncol = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise BitstreamError("not a seed-codec file (bad magic)")
    if version != VERSION:
        raise BitstreamError(f"unsupported seed-codec version {version}")
    if flags & ~FLAG_DITHER:
        raise BitstreamError(f"unknown seed-codec flags 0x{flags:02x}")
    if width == 0 or height == 0 or width * height > MAX_PIXELS:
        raise BitstreamError(f"seed-codec image size {width}×{height} is out of range")
    header = SeedHeader(bool(flags & FLAG_DITHER), model_id, width, height, ncol + 1)
    lh, lw = header.latent_shape
    expected = header.colors * 4 + lh * lw
    d = zlib.decompressobj()
    try:
        body = d.decompress(data[HEADER_SIZE:], expected + 1)
    except zlib.error as exc:
        raise BitstreamError(f"seed-codec payload is corrupt: {exc}") from None
    if len(body) != expected or not d.eof or d.unused_data or d.unconsumed_tail:
        raise BitstreamError(f"seed-codec payload has the wrong length (expected {expected} bytes)")
    palette = np.frombuffer(body, np.uint8, header.colors * 4).reshape(header.colors, 4)
    indices = np.frombuffer(body, np.uint8, lh * lw, offset=header.colors * 4).reshape(lh, lw)
    if int(indices.max()) >= header.colors:
        raise BitstreamError("seed-codec index outside the palette")
    return header, palette, indices


def _model(model_id_or_name: int | str, device: str | None):
    from codec.models.registry import get_model, get_spec

    spec = get_spec(model_id_or_name)
    if spec.latent_channels != 4 or spec.encoder_file is None:
        raise UsageError(f"the seed codec needs a 4-channel TAESD-family model, not {spec.name!r}")
    return spec, get_model(spec.name, device=device)


def encode_seed(
    rgb: np.ndarray,
    *,
    dither: bool = True,
    colors: int = 256,
    model: str = "taesd",
    device: str | None = None,
) -> bytes:
    """Encode a uint8 HxWx3 RGB image with the palette trick; returns the file bytes (natural size)."""
    import torch

    from codec.imageio import pad_to_multiple, to_tensor

    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise UsageError(f"encode_seed needs a uint8 HxWx3 array, got {rgb.dtype} {rgb.shape}")
    h, w = rgb.shape[:2]
    if not (0 < h <= 65535 and 0 < w <= 65535) or h * w > MAX_PIXELS:
        raise UsageError(f"image {w}×{h} is outside the seed codec's limits")
    spec, ae = _model(model, device)
    with torch.no_grad():
        z = ae.encode(to_tensor(pad_to_multiple(rgb, 8)))[0]
    u8 = latent_to_u8(z.float().permute(1, 2, 0).cpu().numpy())
    palette, indices = palettize(u8, colors, dither)
    header = SeedHeader(dither, spec.model_id, w, h, palette.shape[0])
    return pack(header, palette, indices)


def decode_seed(data: bytes, *, device: str | None = None) -> np.ndarray:
    """Decode a ``seed`` file to a uint8 HxWx3 RGB array. Raises `BitstreamError` on bad bytes."""
    import torch

    from codec.imageio import to_uint8

    header, palette, indices = parse(bytes(data))
    try:
        _spec, ae = _model(header.model_id, device)
    except UsageError as exc:
        raise BitstreamError(f"seed-codec file names an unusable model: {exc}") from None
    z = torch.from_numpy(u8_to_latent(palette[indices])).permute(2, 0, 1).unsqueeze(0)
    with torch.no_grad():
        x = ae.decode(z).clamp(0, 1)
    return to_uint8(x)[: header.height, : header.width]
