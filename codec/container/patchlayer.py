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
AVIF or JPEG XL image. Section layout (all integers LEB128 varints unless noted):

====================  ===========================================================================
``u8`` kind            bits 0–2: atlas codec (1 WebP, 2 AVIF, 3 JPEG XL); bits 3–4: mode (0 =
                       replace: the atlas holds original pixels); bits 5–7: reserved, must be 0
``u8`` block size      ``B`` in pixels, 8..128
count                  number of blocks ``n``, 1..number of windows
indices                ``n`` varints: the first block index, then for each next one
                       ``index − previous − 1`` (strictly increasing, all < number of windows)
cols                   atlas columns, 1..n; rows = ceil(n / cols)
atlas                  the rest: the coded atlas image, exactly ``cols·bw × rows·bh`` pixels, where
                       ``bw = min(B, W)``, ``bh = min(B, H)``
====================  ===========================================================================

Blocks are pasted in index order (a later block overwrites the overlap of an earlier one).
`parse` checks every field and the atlas image's own header (size, format) before it decodes a pixel;
anything wrong is a `BitstreamError`. No torch here: the web process may parse these.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from codec.container.images import decode_image
from codec.container.wire import Reader, varint_bytes
from codec.errors import BitstreamError, UnsupportedVersionError

CODECS = {1: "webp", 2: "avif", 3: "jxl"}
CODEC_IDS = {name: cid for cid, name in CODECS.items()}
MODE_REPLACE = 0
MIN_BLOCK, MAX_BLOCK = 8, 128


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


@dataclass(frozen=True)
class PatchLayer:
    codec: str
    block: int
    indices: tuple[int, ...]
    cols: int
    atlas: bytes
    mode: int = MODE_REPLACE
    quality: int | None = field(default=None, compare=False)  # encoder side only, not stored

    def atlas_size(self, grid: Grid) -> tuple[int, int]:
        """(width, height) of the atlas image."""
        rows = -(-len(self.indices) // self.cols)
        return self.cols * grid.bw, rows * grid.bh


# ------------------------------------------------------------------------------------ layout


def default_cols(n: int, grid: Grid) -> int:
    """Atlas columns: the image's block columns (keeps runs together), at most ``n``."""
    return max(1, min(n, grid.cols))


def make_atlas(rgb: np.ndarray, grid: Grid, indices: list[int] | tuple[int, ...], cols: int) -> np.ndarray:
    """The blocks of ``rgb`` at ``indices`` laid out ``cols`` per row (unused slots: edge copies)."""
    n = len(indices)
    rows = -(-n // cols)
    atlas = np.zeros((rows * grid.bh, cols * grid.bw, 3), dtype=np.uint8)
    for k, idx in enumerate(indices):
        y0, x0 = grid.origin(idx)
        r, c = divmod(k, cols)
        atlas[r * grid.bh : (r + 1) * grid.bh, c * grid.bw : (c + 1) * grid.bw] = rgb[
            y0 : y0 + grid.bh, x0 : x0 + grid.bw
        ]
    if n % cols:  # fill the empty slots of the last row with its last block (cheap to code)
        r = rows - 1
        last = atlas[r * grid.bh : (r + 1) * grid.bh, ((n - 1) % cols) * grid.bw : (n % cols) * grid.bw]
        for c in range(n % cols, cols):
            atlas[r * grid.bh : (r + 1) * grid.bh, c * grid.bw : (c + 1) * grid.bw] = last
    return atlas


def pack(layer: PatchLayer) -> bytes:
    """Serialise a layer (the section body)."""
    if layer.codec not in CODEC_IDS:
        raise ValueError(f"unknown atlas codec {layer.codec!r}")
    if layer.mode != MODE_REPLACE:
        raise ValueError(f"unknown patch mode {layer.mode}")
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
    if mode != MODE_REPLACE:
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
    atlas = bytes(r.data[r.pos :])
    if not atlas:
        raise BitstreamError("patch layer: empty atlas image")
    layer = PatchLayer(codec=CODECS[codec_id], block=block, indices=tuple(idx), cols=cols, atlas=atlas,
                       mode=mode)
    decode_image(atlas, layer.codec, layer.atlas_size(grid), header_only=True)  # fail before any decode
    return layer


def apply(base: np.ndarray, layer: PatchLayer) -> np.ndarray:
    """Paste the layer's blocks over ``base`` (H, W, 3) uint8; returns a new array."""
    h, w = base.shape[:2]
    grid = Grid(h, w, layer.block)
    atlas = decode_image(layer.atlas, layer.codec, layer.atlas_size(grid))
    out = base.copy()
    for k, idx in enumerate(layer.indices):
        y0, x0 = grid.origin(idx)
        r, c = divmod(k, layer.cols)
        out[y0 : y0 + grid.bh, x0 : x0 + grid.bw] = atlas[
            r * grid.bh : (r + 1) * grid.bh, c * grid.bw : (c + 1) * grid.bw
        ]
    return out
