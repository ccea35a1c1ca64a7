"""The fidelity guard's patch layer: a few blocks of the image coded with a classical codec.

When the fidelity guard (`codec.encoder.guard`) finds blocks where the latent decoder invented a different
picture (garbled text, a wrong face), it can store those blocks once more, as pixels, in a small
extra section of the bitstream. The decoder decodes the latent as usual and pastes the blocks over it.

Geometry (shared with the block scores of `codec.metrics.fidelity`): the image is covered by
``ceil(H/B) × ceil(W/B)`` windows of ``B × B`` pixels (``B`` = the layer's block size, at most the
image side). Window ``(by, bx)`` starts at ``y0 = min(by·B, H − B)``, ``x0 = min(bx·B, W − B)``: the
last row/column is shifted inwards, so every window is full size and lies inside the image (edge
windows overlap their neighbour). Block index = ``by · ceil(W/B) + bx``.

The chosen blocks are laid out in an atlas of ``cols`` columns, in index order (raster order keeps
horizontal runs of blocks side by side, which codes better), and the atlas is coded as one WebP,
AVIF or JPEG XL image.

Two modes. *Replace* (0): each atlas slot is exactly one window, pasted as is. Windows packed edge to
edge bleed into each other in the classical codec (chroma subsampling, transforms, loop filters: thin
lines of a neighbour's colour along a window's border) and the pasted window ends in a hard edge where
the latent's colours differ. *Blend* (1, since 2026-12-02): each slot holds the window grown by a
``margin`` of the original's own pixels on every side (edge-replicated outside the image); the decoder
blends the slots in with weight 1 on the window and a linear ramp over the margin, normalising where
slots overlap, so the codec's bleed lands in the low-weight outer ring and the window fades into the
latent instead of ending in a step. *Feather* (2, since 2026-12-02): the atlas of replace mode (no
extra pixels: for layers whose bytes cannot afford blend mode's margins), but each window fades in
over its own outer ``feather`` pixels on every side that does not touch another window of the layer
(nor the image border), so the step and the bleed at its edge are mixed away; windows of the layer
that touch keep their shared edges at full weight. Section layout (all integers LEB128 varints unless
noted):

====================  ===========================================================================
``u8`` kind            bits 0–2: atlas codec (1 WebP, 2 AVIF, 3 JPEG XL); bits 3–4: mode (0 =
                       replace, 1 = blend, 2 = feather; the atlas holds original pixels); bits
                       5–7: reserved, 0
``u8`` block size      ``B`` in pixels, 8..128
count                  number of blocks ``n``, 1..number of windows
indices                ``n`` varints: the first block index, then for each next one
                       ``index − previous − 1`` (strictly increasing, all < number of windows)
cols                   atlas columns, 1..n; rows = ceil(n / cols)
margin                 blend mode: the slot margin ``m``, 1..`MAX_MARGIN`; feather mode: the feather
                       ``f``, 1..min(`MAX_MARGIN`, bw/2, bh/2); replace mode: absent
atlas                  the rest: the coded atlas image, exactly ``cols·(bw + 2m) × rows·(bh + 2m)``
                       pixels, where ``bw = min(B, W)``, ``bh = min(B, H)``
====================  ===========================================================================

Replace mode pastes blocks in index order (a later block overwrites the overlap of an earlier one);
blend and feather modes' results do not depend on the order.
`parse` checks every field and the atlas image's own header (size, format) before it decodes a pixel;
anything wrong is a `BitstreamError`. No torch here: the web process may parse these.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from codec.container.images import decode_image
from codec.container.wire import Reader, varint_bytes
from codec.errors import BitstreamError, UnsupportedVersionError

CODECS = {1: "webp", 2: "avif", 3: "jxl"}
CODEC_IDS = {name: cid for cid, name in CODECS.items()}
MODE_REPLACE = 0
MODE_BLEND = 1
MODE_FEATHER = 2
MODES = (MODE_REPLACE, MODE_BLEND, MODE_FEATHER)
MIN_BLOCK, MAX_BLOCK = 8, 128
MAX_MARGIN = 16


@dataclass(frozen=True)
class Grid:
    """The block windows of an image (see the module docstring)."""

    height: int
    width: int
    block: int

    @property
    def rows(self) -> int:
        return -(-self.height // self.block)

    @property
    def cols(self) -> int:
        return -(-self.width // self.block)

    @property
    def count(self) -> int:
        return self.rows * self.cols

    @property
    def bh(self) -> int:
        return min(self.block, self.height)

    @property
    def bw(self) -> int:
        return min(self.block, self.width)

    def origin(self, index: int) -> tuple[int, int]:
        """(y0, x0) of block ``index``."""
        by, bx = divmod(int(index), self.cols)
        return min(by * self.block, self.height - self.bh), min(bx * self.block, self.width - self.bw)

    def origins(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows,) y0 and (cols,) x0 of every window row / column."""
        ys = np.minimum(np.arange(self.rows) * self.block, self.height - self.bh)
        xs = np.minimum(np.arange(self.cols) * self.block, self.width - self.bw)
        return ys, xs

    def rect(self, index: int) -> tuple[int, int, int, int]:
        """(x, y, w, h) of window ``index``."""
        ys, xs = self.origins()
        by, bx = divmod(int(index), self.cols)
        return int(xs[bx]), int(ys[by]), self.bw, self.bh

    def touching(self, indices: Sequence[int], margin: int) -> list[int]:
        """The windows that overlap any of ``indices`` grown by ``margin`` pixels (what a blend-mode
        layer changes), sorted; ``indices`` themselves included."""
        ys, xs = self.origins()
        out: set[int] = set()
        for idx in indices:
            y0, x0 = self.origin(idx)
            rows = np.flatnonzero((ys + self.bh > y0 - margin) & (ys < y0 + self.bh + margin))
            cols = np.flatnonzero((xs + self.bw > x0 - margin) & (xs < x0 + self.bw + margin))
            out.update(int(r) * self.cols + int(c) for r in rows for c in cols)
        return sorted(out)


@dataclass(frozen=True)
class PatchLayer:
    codec: str
    block: int
    indices: tuple[int, ...]
    cols: int
    atlas: bytes
    mode: int = MODE_REPLACE
    quality: int | None = field(default=None, compare=False)  # encoder side only, not stored
    #: blend mode's slot margin in pixels (0 in the other modes)
    margin: int = 0
    #: feather mode's inner fade in pixels (0 in the other modes)
    feather: int = 0

    def slot_size(self, grid: Grid) -> tuple[int, int]:
        """(width, height) of one atlas slot."""
        return grid.bw + 2 * self.margin, grid.bh + 2 * self.margin

    def atlas_size(self, grid: Grid) -> tuple[int, int]:
        """(width, height) of the atlas image."""
        rows = -(-len(self.indices) // self.cols)
        sw, sh = self.slot_size(grid)
        return self.cols * sw, rows * sh


# ------------------------------------------------------------------------------------ layout


def default_cols(n: int, grid: Grid) -> int:
    """Atlas columns: the image's block columns (keeps runs together), at most ``n``."""
    return max(1, min(n, grid.cols))


#: widest atlas `strip_cols` lays out in one row (px; WebP's limit is 16,383)
MAX_STRIP_WIDTH = 4096


def strip_cols(n: int, slot_width: int) -> int:
    """Atlas columns for ``n`` slots of ``slot_width`` px: all in one row while it is at most
    `MAX_STRIP_WIDTH` wide, else as many per row as fit. Why one row: a lossy atlas codec bleeds a
    slot's edge into its atlas neighbours (4:2:0 chroma upsampling, block transforms). In one row, slot
    ``k + 1`` is the next window in index order — the window's right-hand image neighbour or a jump to a
    window whose left edge is free (feathered or margin-faded in blend/feather modes); the slots' tops and
    bottoms touch only the atlas border. With several rows (`default_cols`) the slot above is some other
    window, whose colour showed as thin lines along the windows' horizontal edges (kodim04's eye patch:
    red lines across the skin, docs/bench/faces/eye_shape_blur.md)."""
    return max(1, min(n, MAX_STRIP_WIDTH // max(1, slot_width)))


def make_atlas(rgb: np.ndarray, grid: Grid, indices: Sequence[int], cols: int, margin: int = 0
               ) -> np.ndarray:
    """The blocks of ``rgb`` at ``indices`` laid out ``cols`` per row, each grown by ``margin`` pixels
    of the image (edge-replicated past its border; 0 = replace mode's bare windows). Unused slots of the
    last row repeat its last block (cheap to code)."""
    n = len(indices)
    rows = -(-n // cols)
    m = int(margin)
    sh, sw = grid.bh + 2 * m, grid.bw + 2 * m
    src = np.pad(rgb, ((m, m), (m, m), (0, 0)), mode="edge") if m else rgb
    atlas = np.zeros((rows * sh, cols * sw, 3), dtype=np.uint8)
    for k, idx in enumerate(indices):
        y0, x0 = grid.origin(idx)  # in ``src`` the grown window starts at (y0, x0)
        r, c = divmod(k, cols)
        atlas[r * sh : (r + 1) * sh, c * sw : (c + 1) * sw] = src[y0 : y0 + sh, x0 : x0 + sw]
    if n % cols:
        r = rows - 1
        last = atlas[r * sh : (r + 1) * sh, ((n - 1) % cols) * sw : (n % cols) * sw]
        for c in range(n % cols, cols):
            atlas[r * sh : (r + 1) * sh, c * sw : (c + 1) * sw] = last
    return atlas


def pack(layer: PatchLayer) -> bytes:
    """Serialise a layer (the section body)."""
    if layer.codec not in CODEC_IDS:
        raise ValueError(f"unknown atlas codec {layer.codec!r}")
    if layer.mode not in MODES:
        raise ValueError(f"unknown patch mode {layer.mode}")
    if (layer.mode != MODE_BLEND and layer.margin) or (layer.mode != MODE_FEATHER and layer.feather):
        raise ValueError("a margin only in blend mode, a feather only in feather mode")
    if layer.mode == MODE_BLEND and not 1 <= layer.margin <= MAX_MARGIN:
        raise ValueError(f"blend margin {layer.margin} outside [1, {MAX_MARGIN}]")
    if layer.mode == MODE_FEATHER and not 1 <= layer.feather <= MAX_MARGIN:
        raise ValueError(f"feather {layer.feather} outside [1, {MAX_MARGIN}]")
    if not MIN_BLOCK <= layer.block <= MAX_BLOCK:
        raise ValueError(f"block size {layer.block} outside [{MIN_BLOCK}, {MAX_BLOCK}]")
    idx = list(layer.indices)
    if not idx or any(b <= a for a, b in itertools.pairwise(idx)) or idx[0] < 0:
        raise ValueError("indices must be non-empty, non-negative and strictly increasing")
    if not 1 <= layer.cols <= len(idx):
        raise ValueError(f"cols {layer.cols} outside [1, {len(idx)}]")
    out = bytearray([CODEC_IDS[layer.codec] | (layer.mode << 3), layer.block])
    out += varint_bytes(len(idx)) + varint_bytes(idx[0])
    for a, b in itertools.pairwise(idx):
        out += varint_bytes(b - a - 1)
    out += varint_bytes(layer.cols)
    if layer.mode == MODE_BLEND:
        out += varint_bytes(layer.margin)
    elif layer.mode == MODE_FEATHER:
        out += varint_bytes(layer.feather)
    out += layer.atlas
    return bytes(out)


# ------------------------------------------------------------------------------------ decoding


def parse(data: bytes, width: int, height: int) -> PatchLayer:
    """Parse and check a section body for an image of ``width × height``; `BitstreamError` if bad."""
    data = bytes(data)
    r = Reader(data, len(data))
    kind = r.u8("patch layer kind")
    if kind & 0xE0:
        raise UnsupportedVersionError(f"patch layer: reserved kind bits set (0x{kind:02x})")
    codec_id, mode = kind & 0x07, (kind >> 3) & 0x03
    if codec_id not in CODECS:
        raise UnsupportedVersionError(f"patch layer: unknown atlas codec {codec_id}")
    if mode not in MODES:
        raise UnsupportedVersionError(f"patch layer: unknown mode {mode}")
    block = r.u8("patch layer block size")
    if not MIN_BLOCK <= block <= MAX_BLOCK:
        raise BitstreamError(f"patch layer: block size {block} outside [{MIN_BLOCK}, {MAX_BLOCK}]")
    grid = Grid(int(height), int(width), block)
    n = r.varint("patch layer block count", grid.count)
    if n < 1:
        raise BitstreamError("patch layer: no blocks")
    idx = [r.varint("patch layer block index", grid.count - 1)]
    for _ in range(n - 1):
        nxt = idx[-1] + 1 + r.varint("patch layer block index delta", grid.count)
        if nxt >= grid.count:
            raise BitstreamError(f"patch layer: block index {nxt} outside the {grid.count} blocks")
        idx.append(nxt)
    cols = r.varint("patch layer atlas columns", n)
    if cols < 1:
        raise BitstreamError("patch layer: zero atlas columns")
    margin = feather = 0
    if mode == MODE_BLEND:
        margin = r.varint("patch layer margin", MAX_MARGIN)
        if margin < 1:
            raise BitstreamError("patch layer: blend mode with a zero margin")
    elif mode == MODE_FEATHER:
        feather = r.varint("patch layer feather", MAX_MARGIN)
        if not 1 <= feather <= min(grid.bw, grid.bh) // 2:
            raise BitstreamError(f"patch layer: feather {feather} outside [1, half the window]")
    atlas = bytes(r.data[r.pos :])
    if not atlas:
        raise BitstreamError("patch layer: empty atlas image")
    layer = PatchLayer(codec=CODECS[codec_id], block=block, indices=tuple(idx), cols=cols, atlas=atlas,
                       mode=mode, margin=margin, feather=feather)
    decode_image(atlas, layer.codec, layer.atlas_size(grid), header_only=True)  # fail before any decode
    return layer


def apply(base: np.ndarray, layer: PatchLayer) -> np.ndarray:
    """Paste (replace mode) or blend (blend and feather modes) the layer's blocks over ``base``
    (H, W, 3) uint8; returns a new array."""
    h, w = base.shape[:2]
    grid = Grid(h, w, layer.block)
    atlas = decode_image(layer.atlas, layer.codec, layer.atlas_size(grid))
    if layer.mode in (MODE_BLEND, MODE_FEATHER):
        return _blend(base, grid, layer, atlas)
    out = base.copy()
    for k, idx in enumerate(layer.indices):
        y0, x0 = grid.origin(idx)
        r, c = divmod(k, layer.cols)
        out[y0 : y0 + grid.bh, x0 : x0 + grid.bw] = atlas[
            r * grid.bh : (r + 1) * grid.bh, c * grid.bw : (c + 1) * grid.bw
        ]
    return out


def margin_ramp(size: int, margin: int) -> np.ndarray:
    """(size + 2·margin,) float32 weights of a grown window along one axis: 1 on the window, falling
    linearly over the margin to ``0.5 / margin`` at its outer pixel."""
    d = np.abs(np.arange(size + 2 * margin, dtype=np.float32) - (margin + (size - 1) / 2)) - (size - 1) / 2
    return np.clip(1.0 - (np.maximum(d, 0.0) - 0.5) / margin, 0.0, 1.0).astype(np.float32)


def edge_ramp(length: int, feather: int, start: bool, end: bool) -> np.ndarray:
    """(length,) float32 weights: 1, falling linearly to ``0.5 / feather`` over the outer ``feather``
    pixels at the start and/or the end (feather mode's windows, `regionlayer.blend_mask`'s boxes)."""
    w = np.ones(length, np.float32)
    if feather > 0:
        ramp = (np.arange(feather, dtype=np.float32) + 0.5) / feather
        if start:
            w[:feather] = np.minimum(w[:feather], ramp)
        if end:
            w[-feather:] = np.minimum(w[-feather:], ramp[::-1])
    return w


def feather_ramps(grid: Grid, indices: Sequence[int] | set[int], index: int, feather: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(bh,), (bw,) float32 weights of window ``index`` in feather mode: 1, falling to ``0.5 / feather``
    at an edge over its outer ``feather`` pixels, on each side whose neighbour window is not in
    ``indices`` and that is not on the image border."""
    chosen = indices if isinstance(indices, set) else set(indices)
    by, bx = divmod(int(index), grid.cols)
    wy = edge_ramp(grid.bh, feather, by > 0 and index - grid.cols not in chosen,
                   by < grid.rows - 1 and index + grid.cols not in chosen)
    wx = edge_ramp(grid.bw, feather, bx > 0 and index - 1 not in chosen,
                   bx < grid.cols - 1 and index + 1 not in chosen)
    return wy, wx


def _blend(base: np.ndarray, grid: Grid, layer: PatchLayer, atlas: np.ndarray) -> np.ndarray:
    """Blend and feather modes: every slot weighted by its ramps; where the weights sum to ≥ 1 the
    normalised patch pixels replace the base, below that (margins, feathered edges) they mix with it.
    The float buffers cover only the layer's bounding box (`codec.container.cost` prices them)."""
    h, w = base.shape[:2]
    m = layer.margin
    sw, sh = layer.slot_size(grid)
    if m:
        wy, wx = margin_ramp(grid.bh, m), margin_ramp(grid.bw, m)
    chosen = set(layer.indices)
    origins = [grid.origin(i) for i in layer.indices]
    top, left = max(0, min(y for y, _ in origins) - m), max(0, min(x for _, x in origins) - m)
    bottom = min(h, max(y for y, _ in origins) + grid.bh + m)
    right = min(w, max(x for _, x in origins) + grid.bw + m)
    acc = np.zeros((bottom - top, right - left, 3), np.float32)
    wsum = np.zeros((bottom - top, right - left), np.float32)
    for k, idx in enumerate(layer.indices):
        y0, x0 = grid.origin(idx)
        r, c = divmod(k, layer.cols)
        slot = atlas[r * sh : (r + 1) * sh, c * sw : (c + 1) * sw].astype(np.float32)
        ya, yb = max(0, y0 - m), min(h, y0 + grid.bh + m)  # the grown window, inside the image
        xa, xb = max(0, x0 - m), min(w, x0 + grid.bw + m)
        sy, sx = ya - (y0 - m), xa - (x0 - m)  # its offset in the slot
        if layer.mode == MODE_FEATHER:
            wy, wx = feather_ramps(grid, chosen, idx, layer.feather)
        wt = wy[sy : sy + yb - ya, None] * wx[None, sx : sx + xb - xa]
        acc[ya - top : yb - top, xa - left : xb - left] += wt[:, :, None] * slot[sy : sy + yb - ya,
                                                                                  sx : sx + xb - xa]
        wsum[ya - top : yb - top, xa - left : xb - left] += wt
    alpha = np.minimum(wsum, 1.0)[:, :, None]
    acc /= np.maximum(wsum, 1e-6)[:, :, None]
    box = base[top:bottom, left:right].astype(np.float32)
    box += alpha * (acc - box)
    out = base.copy()
    out[top:bottom, left:right] = np.clip(np.rint(box), 0, 255).astype(np.uint8)
    return out
