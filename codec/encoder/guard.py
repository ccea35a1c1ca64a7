"""The fidelity guard: the policy and search run at the end of `codec.encode` (issue 5).

The metric is `codec.metrics.fidelity` (block scores, the calibrated default floor); the patch layer's
wire format is `codec.container.patchlayer`; decoding goes through `codec.decoder` (the same path as
`codec.decode`). This module decides what to write.

`guard` runs at the end of `codec.encode` (`codec.encoder.encode`), with the original still in hand:

1. decode what was written (exactly like `codec.decode`) and score it; floor met → done, the
   scores go into the header (tags fidelity_min / _mean / _floor_met / _floor).
2. otherwise spend bits where the image needs them: the blocks under the floor are coded once
   more, as pixels, in a small patch layer (`codec.container.patchlayer`: a WebP / JPEG XL / AVIF atlas,
   whichever scores best) stored as an extension section of the bitstream. With a byte budget the
   bytes come from the latent. Tried in order: the best setting of `OTHER_SCALES` other resolution
   scales at the full budget (a different scale often keeps what this one garbles), then the rate
   control re-run for smaller shares of the budget (`BASE_FRACTIONS`), each smaller latent with the
   patch layer that fits the rest. The first latent whose (patched) result meets the floor wins —
   the floor is met with the least damage to the rest of the picture; a smaller latent must also
   gain `MIN_GAIN` on the worst block and keep the mean (`_Guard.worth`). Without a budget
   (``quality``) the layer simply adds bytes.
3. only if no latent candidate meets the floor: AVIF for the whole image at the same budget,
   kept when it meets the floor or is measurably better on the worst block (`AVIF_MARGIN`)
   without losing more than `MAX_MEAN_LOSS` of mean fidelity.
4. else the best latent candidate (the plain file unless a guarded one improves the worst block by
   `MIN_GAIN` while keeping the mean), with ``fidelity_floor_met = false`` in the header.
Every file written is measured (never estimated) and is ≤ max_bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from codec.baselines import FORMATS, encode_at_budget, encode_once
from codec.container import patchlayer
from codec.container.header import PAYLOAD_AVIF, Header, pack, parse
from codec.container.images import decode_image
from codec.container.patchlayer import Grid, PatchLayer
from codec.decoder import decode_rgb
from codec.encoder import ratecontrol
from codec.encoder.session import EncodeSession
from codec.errors import BudgetError, UsageError
from codec.metrics import fidelity
from codec.metrics.fidelity import (
    BLOCK,
    BlockScores,
    FidelityReport,
    block_scores,
    report,
)

PATCH_CODECS = ("webp", "jxl", "avif")
#: shares of the byte budget the latent is re-encoded at, to free bytes for the patch layer
BASE_FRACTIONS = (0.8, 0.6, 0.4)
#: other resolution scales tried at the full budget (best expected first)
OTHER_SCALES = 2
#: images above this many pixels try one other scale and only the smallest share (each is a decode)
LARGE_PIXELS = 4_000_000
#: at most this share of the blocks is patched; beyond it the latent is bad everywhere
MAX_PATCH_SHARE = 0.25
MIN_GAIN = 0.02
#: bytes the fidelity tags add to a file (4 TLVs + the metadata length)
TAG_BYTES = 22
AVIF_MARGIN = 0.05
MAX_MEAN_LOSS = 0.05
#: lowest quality a patch is coded at: below it the classical codec garbles small text itself
#: (measured: WebP q4 turned "fox" into a blob that still scored 0.74), so fewer blocks are patched
MIN_PATCH_QUALITY = 20
#: patch qualities tried without a byte budget (the lowest that meets the floor is kept)
QUALITY_LADDER = (40, 60, 80, 95)
#: without a budget the patch layer may add at most this multiple of the latent's bytes
MAX_UNBUDGETED_GROWTH = 1.0
MIN_UNBUDGETED_LAYER = 2048  # … or this many bytes, whichever is more (small images have tiny latents)


def resolve_floor(min_fidelity: float | None) -> float:
    """``None`` → `DEFAULT_MIN_FIDELITY`; 0 → 0 (guard off); else the value, checked to be in [0, 1]."""
    if min_fidelity is None:
        return fidelity.DEFAULT_MIN_FIDELITY  # read at call time: one place to change (and to patch)
    if isinstance(min_fidelity, bool) or not isinstance(min_fidelity, (int, float)):
        raise UsageError(f"min_fidelity must be a number in [0, 1], got {min_fidelity!r}")
    value = float(min_fidelity)
    if not 0.0 <= value <= 1.0:
        raise UsageError(f"min_fidelity must be in [0, 1], got {min_fidelity!r}")
    return value


@dataclass
class Candidate:
    """One file the guard could write, with the fidelity of what the decoder will show."""

    data: bytes
    report: FidelityReport
    kind: str  # "plain" | "patches" | "avif"
    latent_bytes: int = 0
    note: str = ""


def decode_latent_stream(model: object, data: bytes) -> np.ndarray:
    """Decode a plain latent bitstream exactly like `codec.decode` does, without its patch layer."""
    return decode_rgb(data, model=model, max_pixels=None, patches=False)  # type: ignore[arg-type]


def encode_atlas(atlas: np.ndarray, codec: str, quality: int) -> bytes:
    """Code a patch-layer atlas with the classical codec (settings of `codec.baselines`)."""
    return encode_once(Image.fromarray(atlas, "RGB"), codec, int(quality))


def build_layer(rgb: np.ndarray, grid: Grid, indices: list[int], codec: str, quality: int) -> PatchLayer:
    """A replace-mode patch layer holding the blocks ``indices`` of the original ``rgb``."""
    idx = tuple(sorted(set(int(i) for i in indices)))
    if not idx:
        raise ValueError("a patch layer needs at least one block")
    cols = patchlayer.default_cols(len(idx), grid)
    data = encode_atlas(patchlayer.make_atlas(rgb, grid, idx, cols), codec, quality)
    return PatchLayer(codec=codec, block=grid.block, indices=idx, cols=cols, atlas=data, quality=int(quality))


def with_fidelity(data: bytes, report: FidelityReport, layer: bytes | None = None) -> bytes:
    """Re-pack ``data`` with the fidelity tags (and the patch layer section, if any)."""
    header, payload = parse(data)
    header.fidelity_min = report.min
    header.fidelity_mean = report.mean
    header.fidelity_floor_met = report.floor_met
    header.fidelity_floor = report.floor
    header.patch_layer = layer
    return pack(header, payload)


class _Guard:
    def __init__(self, session: EncodeSession, floor: float, max_bytes: int | None) -> None:
        self.session = session
        self.rgb: np.ndarray = session.rgb
        self.floor = floor
        self.max_bytes = max_bytes
        self.grid = Grid(self.rgb.shape[0], self.rgb.shape[1], BLOCK)

    def fits(self, data: bytes) -> bool:
        return self.max_bytes is None or len(data) <= self.max_bytes

    def report(self, decoded: np.ndarray) -> tuple[BlockScores, FidelityReport]:
        bs = block_scores(self.rgb, decoded)
        return bs, report(bs, self.floor)

    # ------------------------------------------------------------------ candidates of one latent
    def evaluate(self, stream: bytes) -> list[Candidate]:
        base = decode_latent_stream(self.session.model, stream)
        bs, rep = self.report(base)
        out = [Candidate(with_fidelity(stream, rep), rep, "plain", len(stream))]
        if rep.floor_met:
            return out
        order = np.argsort(bs.score, axis=None, kind="stable")
        bad = [int(i) for i in order if bs.score.flat[i] < self.floor]
        bad = bad[: max(1, int(MAX_PATCH_SHARE * self.grid.count))]
        if self.max_bytes is None:
            out += self._patches_unbudgeted(stream, base, bad)
        else:
            out += self._patches_budgeted(stream, base, bad)
        return out

    def _compose(self, stream: bytes, base: np.ndarray, layer: PatchLayer) -> Candidate:
        body = patchlayer.pack(layer)
        _bs, rep = self.report(patchlayer.apply(base, layer))
        return Candidate(with_fidelity(stream, rep, body), rep, "patches", len(stream),
                         f"{len(layer.indices)} blocks, {layer.codec} q{layer.quality}")

    def _patches_unbudgeted(self, stream: bytes, base: np.ndarray, bad: list[int]) -> list[Candidate]:
        out = []
        for codec in PATCH_CODECS[:2]:
            for q in QUALITY_LADDER:
                layer = build_layer(self.rgb, self.grid, bad, codec, q)
                if len(layer.atlas) > max(MAX_UNBUDGETED_GROWTH * len(stream), MIN_UNBUDGETED_LAYER):
                    break
                cand = self._compose(stream, base, layer)
                out.append(cand)
                if cand.report.floor_met:
                    break
        return out

    def _patches_budgeted(self, stream: bytes, base: np.ndarray, bad: list[int]) -> list[Candidate]:
        assert self.max_bytes is not None
        dummy = FidelityReport(0.0, 0.0, np.zeros((1, 1)), self.floor, False, (0, 0, 0, 0), 0, 1)
        plain = with_fidelity(stream, dummy)
        # section framing (count, id, length ≤ 3 bytes) + layer header (≤ 4 + 5 bytes/varint)
        allowance = self.max_bytes - len(plain) - 5 - (4 + 2 * len(bad) + 5)
        out: list[Candidate] = []
        if allowance < 64:
            return out
        for codec in PATCH_CODECS:
            spec = FORMATS[codec]
            k = len(bad)
            tried = 0
            while k >= 1 and tried < 2:
                idx = sorted(bad[:k])
                atlas = patchlayer.make_atlas(self.rgb, self.grid, idx, patchlayer.default_cols(k, self.grid))
                q = _best_quality(lambda q, a=atlas, c=codec: len(encode_atlas(a, c, q)),
                                  max(spec.q_min, MIN_PATCH_QUALITY), spec.q_max, allowance)
                if q is not None:
                    layer = build_layer(self.rgb, self.grid, idx, codec, q)
                    cand = self._compose(stream, base, layer)
                    while not self.fits(cand.data) and q > MIN_PATCH_QUALITY:  # framing estimate was short
                        q -= 1
                        layer = build_layer(self.rgb, self.grid, idx, codec, q)
                        cand = self._compose(stream, base, layer)
                    if self.fits(cand.data):
                        out.append(cand)
                        tried += 1
                        if q >= 50:  # good quality already: fewer blocks would not help
                            break
                k = k // 2 if k > 1 else 0
        return out

    # ------------------------------------------------------------------------------ the search
    def bases(self, data: bytes) -> Iterator[bytes]:
        """The written stream; then the best fitting setting of each other resolution scale at the
        full budget (a different scale often keeps what this one garbles); then smaller latents
        for BASE_FRACTIONS of the budget, which leave bytes for the patch layer."""
        yield data
        if self.max_bytes is None:
            return

        def size_of(st: ratecontrol.Setting) -> int:  # the fast coders (as in encode): final stream ≤ this
            return len(self.session.stream(st, search=True))

        def best(budget: int, scales: Sequence[float] = ratecontrol.SCALES) -> ratecontrol.Setting | None:
            try:
                return ratecontrol.search(size_of, budget, scales=scales)
            except BudgetError:
                return None

        done = {data}
        header = parse(data)[0]
        h, w = self.rgb.shape[:2]
        own = {sc for sc in ratecontrol.SCALES
               if ratecontrol.Setting(sc, 2).coded_size(w, h) == (header.coded_width, header.coded_height)}
        others = [st for sc in ratecontrol.SCALES if sc not in own
                  if (st := best(self.max_bytes - TAG_BYTES, [sc])) is not None]
        rank = {st: i for i, st in enumerate(ratecontrol.ladder())}
        others.sort(key=lambda st: rank.get(st, len(rank)))
        fractions = BASE_FRACTIONS
        if h * w > LARGE_PIXELS:
            others, fractions = others[:1], BASE_FRACTIONS[-1:]
        settings = others[:OTHER_SCALES]
        if len(data) + TAG_BYTES > self.max_bytes:  # the tags do not fit: first a latent just below
            settings.insert(0, best(self.max_bytes - TAG_BYTES, sorted(own) or ratecontrol.SCALES))
        settings += [best(int(self.max_bytes * f)) for f in fractions]
        for st in settings:
            if st is None:
                continue
            stream = self.session.stream(st)
            if stream not in done:
                done.add(stream)
                yield stream

    @staticmethod
    def worth(cand: Candidate, first: Candidate) -> bool:
        """A smaller latent (with or without patches) must buy a real gain on the worst block and keep
        the mean; otherwise a score that merely crosses the floor by noise would cost bytes for nothing."""
        if cand.latent_bytes >= first.latent_bytes:
            return True
        return (cand.report.min >= first.report.min + MIN_GAIN
                and cand.report.mean >= first.report.mean - MAX_MEAN_LOSS)

    def run(self, data: bytes) -> tuple[bytes, list[Candidate]]:
        seen: list[Candidate] = []
        first: Candidate | None = None  # the written stream, plain
        ref: Candidate | None = None  # the first plain candidate that fits (with the tags)
        for stream in self.bases(data):
            cands = self.evaluate(stream)
            if first is None:
                first = cands[0]
            if ref is None and self.fits(cands[0].data):
                ref = cands[0]
            seen += cands
            met = [c for c in cands if c.report.floor_met and self.fits(c.data)
                   and (ref is None or self.worth(c, ref))]
            if met:
                best = max(met, key=lambda c: (c.report.mean, -len(c.data)))
                return best.data, seen
        assert first is not None
        fitting = [c for c in seen if self.fits(c.data)]
        if not fitting:  # not even the tags fit: keep the file as it was (nothing recorded)
            return data, seen
        if ref is None:
            ref = max(fitting, key=lambda c: c.latent_bytes)
        keep = [c for c in fitting if c.report.mean >= ref.report.mean - MAX_MEAN_LOSS]
        best = max(keep, key=lambda c: (c.report.min, c.report.mean))
        if best.report.min < ref.report.min + MIN_GAIN:
            best = ref
        avif = self.avif(self.max_bytes if self.max_bytes is not None else len(first.data))
        if avif is not None:
            seen.append(avif)
            if avif.report.floor_met or (avif.report.min >= best.report.min + AVIF_MARGIN
                                         and avif.report.mean >= ref.report.mean - MAX_MEAN_LOSS):
                return avif.data, seen
        return best.data, seen

    def avif(self, budget: int) -> Candidate | None:
        """The whole image as AVIF inside our container, ≤ ``budget`` bytes (None if impossible)."""
        h, w = self.rgb.shape[:2]
        header = Header(model_id=0, width=w, height=h, payload_kind=PAYLOAD_AVIF, fidelity_min=0.0,
                        fidelity_mean=0.0, fidelity_floor_met=False, fidelity_floor=self.floor)
        overhead = len(pack(header, b"")) + 4  # + payload length varint growth
        if budget - overhead < 64:
            return None
        res = encode_at_budget(self.rgb, "avif", budget - overhead, mode="quality")
        if not res.fits or not res.data:
            return None
        _bs, rep = self.report(decode_image(res.data, "avif", (w, h)))
        header.fidelity_min, header.fidelity_mean = rep.min, rep.mean
        header.fidelity_floor_met = rep.floor_met
        data = pack(header, res.data)
        if not self.fits(data) or len(data) > budget:
            return None
        return Candidate(data, rep, "avif", 0, f"AVIF q{res.quality}")


def _best_quality(size_of: Callable[[int], int], q_min: int, q_max: int, allowance: int) -> int | None:
    """Largest quality in [q_min, q_max] whose size ≤ allowance (size grows with quality), or None."""
    if size_of(q_min) > allowance:
        return None
    lo, hi = q_min, q_max
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if size_of(mid) <= allowance:
            lo = mid
        else:
            hi = mid - 1
    return lo


def guard(session: EncodeSession, data: bytes, *, max_bytes: int | None, min_fidelity: float | None) -> bytes:
    """The fidelity guard (see above): ``data`` as written, or a guarded file (≤ ``max_bytes``)."""
    floor = resolve_floor(min_fidelity)
    if floor <= 0.0:
        return data
    out, _seen = _Guard(session, floor, max_bytes).run(data)
    return out
