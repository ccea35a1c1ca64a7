"""What a decode will cost, from the header alone, and the limits for untrusted streams.

A flat latent of any size entropy-codes to a few dozen bytes, so the stream's length says nothing
about the work it asks for: a valid 113-byte stream claiming 2048² ran the TAESD decoder for 130 s
(1.45 GB); 170–316-byte streams claiming 4096²–7071² ran > 300 s. `estimate` prices a header
*before* anything is decoded; `check` refuses what the caller's `codec.options.DecodeLimits` do not
allow (`codec.errors.DecodeLimitError`). Torch-free: `codec.info` shows the estimate.

**Work unit**: one megapixel through the TAESD decoder (the tile overlap counted: a 2048² image is
decoded as 4 tiles of 1152² = 5.3 units). Other costs are converted to the same unit: entropy
decoding (per latent symbol), the patch-layer atlas and an AVIF payload (image pixels decoded by
Pillow), the resize to the display size.

**Plausibility**: our encoder's sparsest latent payloads are flat grey images, 0.04–0.13 bits per
latent value (photos ≈ 0.8; the measurements are with the defaults in `codec.options`);
a stream far below that (``DecodeLimits.min_bits_per_value``) which asks for more work than
``DecodeLimits.sparse_work`` is refused as hostile, whatever ``max_work`` says.

The tile geometry lives here (torch-free) and `codec.tiling` runs it, so the estimate counts exactly
the tiles the decoder will run.
"""

from __future__ import annotations

from dataclasses import dataclass

from codec.container.header import PAYLOAD_AVIF, PAYLOAD_LATENT, Header
from codec.container.patchlayer import MAX_MARGIN
from codec.container.wire import Reader
from codec.errors import BitstreamError, DecodeLimitError
from codec.models.specs import MODELS_BY_ID
from codec.options import DecodeLimits

# ---- tile geometry (shared with codec.tiling) ----------------------------------------------------


@dataclass(frozen=True)
class TilingConfig:
    """When and how to tile. Sizes are in image pixels and rounded to the model's downscale."""
    max_whole_pixels: int = 2_000_000  # ≤ this many pixels: one pass (~2 GB peak on CPU, float32)
    tile: int = 1024  # core size of a tile (pixels); a tile with margins is ≤ 1280² ≈ 1.6 MP
    margin: int = 128  # context around each core (pixels; decoder uses margin/downscale latents)


DEFAULT_TILING = TilingConfig()


def _spans(length: int, core: int) -> list[tuple[int, int]]:
    """Split ``range(length)`` into near-equal consecutive spans of at most ``core`` units."""
    n = max(1, -(-length // max(1, core)))
    bounds = [round(i * length / n) for i in range(n + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(n)]


def tile_boxes(
    rows: int, cols: int, core: int, margin: int
) -> list[tuple[tuple[int, int, int, int], tuple[int, int, int, int]]]:
    """The tile loop of the codec (encode, decode, and the RDO refinement of `codec.encoder.rdo`).

    Splits a ``rows × cols`` grid into near-equal cores of at most ``core`` units; returns, per tile,
    the core ``(y0, y1, x0, x1)`` and the core grown by ``margin`` units of context on every side,
    clipped to the grid ``(ey0, ey1, ex0, ex1)``. Raster order.
    """
    return [
        ((y0, y1, x0, x1), (max(0, y0 - m), min(rows, y1 + m), max(0, x0 - m), min(cols, x1 + m)))
        for m in (margin,)
        for y0, y1 in _spans(rows, core)
        for x0, x1 in _spans(cols, core)
    ]


def round_to(v: int, m: int) -> int:
    """``v`` rounded up to a multiple of ``m`` (at least ``m``)."""
    return max(m, (v + m - 1) // m * m)


def decode_tiles(lh: int, lw: int, ds: int, config: TilingConfig = DEFAULT_TILING) -> list[tuple[int, int]]:
    """(height, width) in pixels of every decoder pass for a ``lh × lw`` latent (one when untiled)."""
    if lh * lw * ds * ds <= config.max_whole_pixels:
        return [(lh * ds, lw * ds)]
    core = max(1, round_to(config.tile, ds) // ds)
    m = round_to(config.margin, ds) // ds if config.margin > 0 else 0
    return [((ey1 - ey0) * ds, (ex1 - ex0) * ds) for _, (ey0, ey1, ex0, ex1) in tile_boxes(lh, lw, core, m)]


# ---- calibration -----------------------------------------------------------------------------------
# Measured on the project machine (2 shared CPU cores, torch 2.13 CPU, float32, torch.set_num_threads(2),
# load average 10–13 from other developers), TAESD decoder through `codec.tiling.decode_latent`:
#   wall 2.9 s at 256², 8.5 s at 512², 33.3 s at 1024² (whole) → ~32 s/MP under that load; the 2048²
#   flat stream (4 passes of 1152² = 5.3 units) 130 s in the attack run, 372 s here at load 13, with
#   63 CPU-s → 12 CPU-s per unit, i.e. ≈ 6 s per unit on 2 idle cores (SECONDS_PER_WORK; expect
#   5–10× that wall time on a machine loaded like ours).
#   Peak RSS (ru_maxrss): 496 MB at 256², 656 MB at 512², 1232 MB at 1024² (whole) → 0.73 KB per pixel
#   of the largest decoder pass + 465 MB (python, torch, the model); tiled (passes ≤ 1152²): 2048²
#   1558 MB (estimate 1509), 4096² 1747 MB (estimate 1963; 16 passes, 270 CPU-s = 11.3 per unit).
SECONDS_PER_WORK = 6.0
PEAK_BASE_BYTES = 465_000_000
PEAK_BYTES_PER_PASS_PIXEL = 730
#: output + resize + PIL copies per display pixel (uint8 RGB, three times)
PEAK_BYTES_PER_IMAGE_PIXEL = 9
#: a blend/feather patch layer's float buffers (sum, weights, blend temporaries) per pixel of its
#: bounding box, priced over the whole display (an upper bound: the box is known only after parsing)
PEAK_BYTES_PER_BLEND_PIXEL = 48
#: decoder cost of each model relative to TAESD (per output pixel). taesd/taesdxl/taesd3/taef1 share
#: the TAESD decoder body (only the first conv's input channels differ): taesd3 measured 0.95–1.0 of
#: taesd at 384² (CPU time); taef2 adds pool branches: measured 1.05–1.1; sd-vae (full AutoencoderKL,
#: no weights here, not measured) is an upper-side guess from its much larger per-pixel MAC count.
#: Peak memory is scaled by the same factor.
MODEL_WORK: dict[str, float] = {
    "taesd": 1.0, "taesdxl": 1.0, "taesd3": 1.0, "taef1": 1.0, "taef2": 1.1, "sd-vae": 25.0,
}
#: entropy decoding, in work units per million latent symbols (ctx coder, the slowest: 2.6 CPU-s per
#: million random symbols, 1.3 for the flat 4096² stream ≈ 0.22 / 0.11 units; rounded up)
WORK_PER_MSYMBOL = 0.25
#: coders slower than that, by coder id: 5 = learned (an integer MLP per symbol: 14.8 CPU-s for a
#: 4×500×750 latent = 9.8 CPU-s per million symbols under load ≈ 0.82 units; rounded up)
WORK_PER_MSYMBOL_BY_CODER: dict[int, float] = {5: 1.0}
#: Pillow decoding an AVIF/WebP/JPEG XL image, resizing, pasting, in work units per megapixel (AVIF
#: 1 MP: 0.017 CPU-s ≈ 0.0014 units; rounded up generously)
WORK_PER_IMAGE_MP = 0.01


@dataclass(frozen=True)
class DecodeCost:
    """The estimate for one stream (all from the header and the payload's length)."""

    work: float  # work units (see the module docstring)
    decoder_pixels: int  # pixels through the neural decoder, tile overlap included
    passes: int  # decoder passes (tiles)
    image_pixels: int  # pixels Pillow decodes (AVIF payload, patch atlas) or resizes
    symbols: int  # latent values to entropy-decode
    bits_per_value: float | None  # payload bits per latent value (None: not a latent payload)
    seconds: float  # ≈ wall time on 2 idle cores
    peak_bytes: int  # ≈ peak RSS of the decoding process

    def as_dict(self) -> dict[str, float | int | None]:
        """The JSON shown by `codec.info` under ``decode_cost``."""
        return {
            "work": round(self.work, 3),
            "decoder_megapixels": round(self.decoder_pixels / 1e6, 3),
            "decoder_passes": self.passes,
            "bits_per_latent_value": None if self.bits_per_value is None else round(self.bits_per_value, 5),
            "seconds_2_cores": round(self.seconds, 1),
            "peak_mb": round(self.peak_bytes / 1e6),
        }


def _atlas_pixels(h: Header) -> int:
    """Pixels of the patch-layer atlas (an upper bound: ``2·n`` slots, a blend-mode slot with the
    largest margin), read from its first fields."""
    if h.patch_layer is None:
        return 0
    try:
        r = Reader(bytes(h.patch_layer), len(h.patch_layer))
        kind = r.u8("patch layer kind")
        block = r.u8("patch layer block size")
        n = r.varint("patch layer block count", 1 << 31)
    except BitstreamError:
        return 0  # the decoder's patch-layer parse refuses it before anything is decoded
    m = 2 * MAX_MARGIN if (kind >> 3) & 0x03 else 0
    return 2 * n * (min(block, h.width) + m) * (min(block, h.height) + m)


def estimate(h: Header, payload_bytes: int) -> DecodeCost:
    """Price a parsed header (`codec.container.parse`) before anything is decoded."""
    display = h.width * h.height
    if h.payload_kind != PAYLOAD_LATENT:
        assert h.payload_kind == PAYLOAD_AVIF
        work = display / 1e6 * WORK_PER_IMAGE_MP
        return DecodeCost(work, 0, 0, display, 0, None, work * SECONDS_PER_WORK,
                          PEAK_BASE_BYTES + PEAK_BYTES_PER_IMAGE_PIXEL * display)
    lh, lw = int(h.latent_height or 0), int(h.latent_width or 0)
    passes = decode_tiles(lh, lw, h.downscale)
    decoder_px = sum(a * b for a, b in passes)
    spec = MODELS_BY_ID.get(int(h.model_id))
    factor = MODEL_WORK.get(spec.name, max(MODEL_WORK.values())) if spec else max(MODEL_WORK.values())
    symbols = h.latent_channels * lh * lw
    coded = int(h.coded_width or h.width) * int(h.coded_height or h.height)
    image_px = _atlas_pixels(h) + (display if coded != display else 0)
    if h.residual_layer is not None:  # one more image at (at most) the display size, added to it
        image_px += 2 * display
    per_msymbol = WORK_PER_MSYMBOL_BY_CODER.get(int(h.entropy_coder), WORK_PER_MSYMBOL)
    work = decoder_px / 1e6 * factor + symbols / 1e6 * per_msymbol + image_px / 1e6 * WORK_PER_IMAGE_MP
    largest = max(a * b for a, b in passes)
    peak = PEAK_BASE_BYTES + PEAK_BYTES_PER_PASS_PIXEL * largest * factor + PEAK_BYTES_PER_IMAGE_PIXEL * (
        lh * lw * h.downscale**2 + display)
    if h.patch_layer and (h.patch_layer[0] >> 3) & 0x03:  # blend / feather mode
        peak += PEAK_BYTES_PER_BLEND_PIXEL * display
    npass = len(passes)
    for sub, sub_payload in _region_streams(h):  # region latents: each is one more small decode
        extra = estimate(sub, sub_payload)
        work += extra.work
        decoder_px += extra.decoder_pixels
        npass += extra.passes
    return DecodeCost(work, decoder_px, npass, image_px, symbols, 8.0 * payload_bytes / max(1, symbols),
                      work * SECONDS_PER_WORK, int(peak))


def _region_streams(h: Header) -> list[tuple[Header, int]]:
    """(header, payload bytes) of every region latent (`codec.container.regionlayer`); none when the
    layer does not parse (the decoder refuses it before anything is decoded)."""
    if h.region_layer is None:
        return []
    from codec.container import regionlayer  # imports header lazily too
    from codec.container.header import parse

    try:
        layer = regionlayer.parse(h.region_layer, h.width, h.height, int(h.model_id))
    except BitstreamError:
        return []
    out = []
    for reg in layer.regions:
        sub, payload = parse(reg.stream)
        out.append((sub, len(payload)))
    return out


def check(h: Header, payload_bytes: int, limits: DecodeLimits) -> DecodeCost:
    """The estimate, or `DecodeLimitError` (estimate and limit in the message) when over a limit.

    Order: pixels, work, plausibility (the first limit broken is named).
    """
    cost = estimate(h, payload_bytes)
    size = f"{h.width}x{h.height}"
    pixels = max(h.width * h.height, int(h.coded_width or 0) * int(h.coded_height or 0))
    if limits.max_pixels is not None and pixels > limits.max_pixels:
        raise DecodeLimitError(
            f"image {size} exceeds the caller's limit of {limits.max_pixels} pixels "
            f"(estimated work {cost.work:.1f} units ≈{cost.seconds:.0f} s on 2 cores)",
            work=cost.work, limit=float(limits.max_pixels))
    if limits.max_work is not None and cost.work > limits.max_work:
        raise DecodeLimitError(
            f"stream claiming {size} needs an estimated {cost.work:.1f} work units "
            f"(≈{cost.seconds:.0f} s on 2 cores), over the limit max_work={limits.max_work:g}",
            work=cost.work, limit=limits.max_work)
    bpv = cost.bits_per_value
    if (bpv is not None and bpv < limits.min_bits_per_value and limits.sparse_work is not None
            and cost.work > limits.sparse_work):
        raise DecodeLimitError(
            f"implausible stream: {payload_bytes} payload bytes ({bpv:.4f} bits per latent value, under "
            f"min_bits_per_value={limits.min_bits_per_value:g}) claim {size} = an estimated "
            f"{cost.work:.1f} work units (≈{cost.seconds:.0f} s on 2 cores), over the limit for sparse "
            f"streams sparse_work={limits.sparse_work:g}",
            work=cost.work, limit=limits.sparse_work)
    return cost
