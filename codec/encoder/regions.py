"""Region latents for faces (issue 12): the encoder side of `codec.container.regionlayer`.

A face the chosen latent does not keep is coded once more as a small latent of its own: the face box
grown by `MARGIN` per side (context for the encoder, room for the blend), snapped to the 8-px grid,
coded by the same rate control as a whole image (`EncodeSession` on the crop: its scales include the
up-scales, so a small face gets up to a 2× latent when the bytes allow) and blended over the base
decode with a `FEATHER`-px ramp. Measured on the calibration half of the training faces
(docs/bench/faces/regions.md): at the same bytes a region latent keeps identity better than a WebP or
AVIF patch of the same box, most clearly at small allowances where the classical codecs do not fit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from codec.container import regionlayer
from codec.container.regionlayer import Region, RegionLayer
from codec.container.wire import varint_bytes
from codec.encoder import ratecontrol
from codec.encoder.session import EncodeSession
from codec.errors import BudgetError
from codec.metrics.identity import FaceBox
from codec.models.base import LatentAutoencoder

#: share of the face box's width/height added on each side
MARGIN = 0.35
FEATHER = 8
ALIGN = 8
#: the setting of a region coded without a byte budget (`codec.encode(quality=...)` mode): faces are
#: what the protection is for, so the 2× up-scale (a 44-px face kept its eyes only there, in a probe on
#: the astronaut at quality 5; the ladder's quality-90 setting, scale 1.0 L12,
#: did not) with 16 levels, then 32 when that is not enough (iris colour ΔE 13.7 against a floor of 12.8)
UNBUDGETED_SETTINGS = (ratecontrol.Setting(2.0, 16), ratecontrol.Setting(2.0, 32))


def boxes(faces: Sequence[FaceBox], width: int, height: int) -> list[tuple[int, int, int, int]]:
    """(x, y, w, h) region boxes for ``faces``: grown, snapped to `ALIGN`, overlapping ones merged,
    at most `regionlayer.MAX_REGIONS` (the largest first), none over the layer's area share."""
    out: list[list[int]] = []
    for b in faces:
        mx, my = MARGIN * (b.right - b.left), MARGIN * (b.bottom - b.top)
        x0 = max(0, int(b.left - mx)) // ALIGN * ALIGN
        y0 = max(0, int(b.top - my)) // ALIGN * ALIGN
        x1 = min(width, -(-int(b.right + mx) // ALIGN) * ALIGN)
        y1 = min(height, -(-int(b.bottom + my) // ALIGN) * ALIGN)
        out.append([x0, y0, x1, y1])
    merged = True
    while merged:  # union of overlapping boxes (faces side by side share one region)
        merged = False
        for i in range(len(out)):
            for j in range(i + 1, len(out)):
                a, c = out[i], out[j]
                if a[0] < c[2] and c[0] < a[2] and a[1] < c[3] and c[1] < a[3]:
                    out[i] = [min(a[0], c[0]), min(a[1], c[1]), max(a[2], c[2]), max(a[3], c[3])]
                    del out[j]
                    merged = True
                    break
            if merged:
                break
    res = [(x0, y0, x1 - x0, y1 - y0) for x0, y0, x1, y1 in out]
    res = [r for r in res if min(r[2], r[3]) >= regionlayer.MIN_SIDE
           and r[2] * r[3] <= regionlayer.MAX_AREA_SHARE * width * height]
    res.sort(key=lambda r: -r[2] * r[3])
    return res[: regionlayer.MAX_REGIONS]


def framing_bytes(box: tuple[int, int, int, int], stream_bytes: int) -> int:
    """Bytes a region adds to the layer besides its stream."""
    x, y, w, h = box
    return sum(len(varint_bytes(v)) for v in (x, y, w, h, stream_bytes)) + 1


def code_region(session: EncodeSession, max_bytes: int | None,
                setting: ratecontrol.Setting = UNBUDGETED_SETTINGS[0]) -> bytes | None:
    """The best stream of the session's crop (≤ ``max_bytes``; None when nothing fits), no guard: the
    caller measures the result on the whole image. Without a budget: the stream at ``setting``."""
    if max_bytes is None:
        return session.stream(setting)
    try:
        fitting = ratecontrol.candidates(lambda st: len(session.stream(st, search=True)), max_bytes,
                                         scales=session.search_scales)
    except BudgetError:
        return None
    setting = session.upgrade(session.pick_measured(fitting), max_bytes)
    stream = session.stream(setting)
    return stream if len(stream) <= max_bytes else None


def build(model: LatentAutoencoder, rgb: np.ndarray, faces: Sequence[FaceBox], effort: str,
          allowance: int | None, sessions: dict[tuple[int, int, int, int], EncodeSession] | None = None,
          setting: ratecontrol.Setting = UNBUDGETED_SETTINGS[0]) -> RegionLayer | None:
    """A region layer for ``faces`` within ``allowance`` bytes of section body (None: no region fits).

    The allowance is shared by box area; a region that does not fit its share is left out.
    ``sessions`` caches each crop's `EncodeSession` (its encoder passes) across calls; ``setting`` is
    used without an allowance."""
    sessions = {} if sessions is None else sessions
    height, width = rgb.shape[:2]
    regs = boxes(faces, width, height)
    if not regs:
        return None
    area = sum(w * h for _x, _y, w, h in regs)
    out: list[Region] = []
    for box in regs:
        x, y, w, h = box
        share = None
        if allowance is not None:
            share = int((allowance - 4) * w * h / area) - framing_bytes(box, 4096)
            if share < 64:
                continue
        if box not in sessions:
            sessions[box] = EncodeSession(model, np.ascontiguousarray(rgb[y : y + h, x : x + w]), effort)
        stream = code_region(sessions[box], share, setting)
        if stream is not None:
            out.append(Region(x, y, w, h, min(FEATHER, min(w, h) // 4), stream))
    return RegionLayer(tuple(out)) if out else None


#: latent cells kept at the inner edge of a masked box (the decoder spreads a cell ~2 cells outwards;
#: the blend ramp and the region's own edge must still see the true base there)
MASK_INSET = 2


def flatten_boxes(latent: np.ndarray, boxes_px: Sequence[tuple[int, int, int, int]], scale: float,
                  downscale: int) -> np.ndarray:
    """``latent`` (C, h, w) with the inside of each display box (x, y, w, h; coded at ``scale`` ×
    the display size) set to the mean of its surrounding ring, per channel: a flat area the entropy
    coder spends almost nothing on. `MASK_INSET` cells of each box stay as they are."""
    out = np.array(latent, dtype=np.float32, copy=True)
    _c, lh, lw = out.shape
    cell = downscale / scale  # display pixels per latent cell
    for x, y, w, h in boxes_px:
        x0 = int(np.ceil(x / cell)) + MASK_INSET
        y0 = int(np.ceil(y / cell)) + MASK_INSET
        x1 = min(lw, int((x + w) // cell)) - MASK_INSET
        y1 = min(lh, int((y + h) // cell)) - MASK_INSET
        if x1 <= x0 or y1 <= y0:
            continue
        ring = np.zeros((lh, lw), bool)
        ring[max(0, y0 - 2) : y1 + 2, max(0, x0 - 2) : x1 + 2] = True
        ring[y0:y1, x0:x1] = False
        fill = out[:, ring].mean(axis=1) if ring.any() else out[:, y0:y1, x0:x1].mean(axis=(1, 2))
        out[:, y0:y1, x0:x1] = fill[:, None, None]
    return out


def masked(session: EncodeSession, boxes_px: Sequence[tuple[int, int, int, int]]) -> EncodeSession:
    """A view of ``session`` whose latents have ``boxes_px`` flattened (`flatten_boxes`); shares the
    source's encoder passes."""
    return EncodeSession(session.model, session.rgb, session.effort, search_scales=session.search_scales,
                         source=session, masked=tuple(boxes_px), probe_faces=session.probe_faces)
