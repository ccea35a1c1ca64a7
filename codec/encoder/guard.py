"""The fidelity guard: the policy and search run at the end of `codec.encode` (issue 5).

The metric is `codec.metrics.fidelity` (block scores, the calibrated default floor); the patch layer's
wire format is `codec.container.patchlayer`; decoding goes through `codec.decoder` (the same path as
`codec.decode`). This module decides what to write.

`guard` runs at the end of `codec.encode` (`codec.encoder.encode`), with the original still in hand:

1. decode what was written (exactly like `codec.decode`) and score it; floor met → done, the
   scores go into the header (tags fidelity_min / _mean / _floor_met / _floor). Every block of the
   patch-layer grid is scored at two scales (`codec.metrics.fidelity.block_scores`): the 32×32 SSIM ×
   colour score, and a coarse structural score (8× downsampled luma, pooled over the same window) that
   catches a head or object turned into a flat area or vanished into the background (issue 12), which
   the 32×32 score forgives; the block score is the worse of the two, so the blocks of such a region
   are the ones under the floor and the ones the patch layer below re-codes.
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

Faces (issue 12): after the block guard, `_FaceGuard` checks every face of the original on the chosen
file's decode (`codec.encoder.faces`) and, when one is not kept, tries region latents
(`codec.encoder.regions`), patch layers over the face boxes and whole-image AVIF, under the same two
conditions for the rest of the photo (`_FaceGuard.acceptable`). When none keeps every face within them,
a fixed budget takes the face-keeping file that costs the rest of the photo least (up to
`FACE_FALLBACK_MAX_LOSS`), else the least bad file (`_FaceGuard.fallback`) with the "faces changed" flag.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from codec.baselines import FORMATS, encode_at_budget, encode_once
from codec.container import patchlayer, regionlayer
from codec.container.header import PAYLOAD_AVIF, Header, pack, parse, section_bytes
from codec.container.images import decode_image
from codec.container.patchlayer import Grid, PatchLayer
from codec.container.regionlayer import RegionLayer
from codec.decoder import decode_rgb
from codec.encoder import faces as face_check
from codec.encoder import ratecontrol, regions
from codec.encoder import text as text_check
from codec.encoder.faces import FaceVerdict
from codec.encoder.session import EncodeSession
from codec.errors import BudgetError, UsageError
from codec.metrics import fidelity
from codec.metrics.fidelity import (
    BLOCK,
    BlockScores,
    FidelityReport,
    block_scores,
    report,
    rescore,
)
from codec.metrics.identity import SAME_PERSON_THRESHOLD
from codec.metrics.seams import SEAM_FLOOR, seam_score
from codec.options import effort_code

PATCH_CODECS = ("webp", "jxl", "avif")
#: decodes whose block scores the guard keeps for `_Guard.patched_report` (each a full-size image)
BASES_REMEMBERED = 2
#: shares of the byte budget the latent is re-encoded at, to free bytes for the patch layer
BASE_FRACTIONS = (0.8, 0.6, 0.4)
#: other resolution scales tried at the full budget (best expected first)
OTHER_SCALES = 2
#: images above this many pixels try one other scale and only the smallest share (each is a decode), and
#: no region latents for faces (`_FaceGuard.region_candidates`)
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
#: monotone quality in bytes (issue 12): an alternative the guard builds from a SMALLER latent (another
#: scale, a share of the budget, AVIF) may not lose more than this of whole-image quality (MS-SSIM −
#: LPIPS, measured against the original) to the plain stream the rate control chose. Measured case it
#: stops: an engraving at 0.15 bpp, half-resolution latent + 7.7 KB of patches, LPIPS 0.508 → 0.731
#: and MS-SSIM 0.667 → 0.611 (quality −0.28) against the plain file. 0.02 ≈ the quality step of one
#: rung of the ladder at 0.10 bpp.
MAX_QUALITY_LOSS = 0.02
#: shares of the byte budget for the latent under a face-protection patch layer (1.0 = the chosen latent)
FACE_FRACTIONS = (1.0, 0.8, 0.65, 0.5)
#: patch qualities tried for faces without a byte budget (the lowest that keeps the faces is kept)
FACE_QUALITY_LADDER = (50, 70, 90)
#: fewest section bytes worth trying region latents in (a region stream's header alone is ~40 B)
MIN_REGION_ALLOWANCE = 160
#: whole-image quality (MS-SSIM − LPIPS) a face-protected file may lose to the unprotected one (or, in an
#: upward target search, to the nominal file: `_FaceGuard.acceptable`). Measured on the calibration
#: training faces at 0.10 bpp (docs/bench/faces/regions.md): without a limit a 130-px face kept by a
#: region latent took half the file and cost 0.15 (LPIPS 0.196 → 0.309), where the target search keeps
#: the face at 1.3× the bytes with no loss at all; 0.05 ≈ 2.5 rungs of the ladder
FACE_MAX_QUALITY_LOSS = 0.05
#: at a fixed budget (no target search that could grow it instead), when no protection keeps every face
#: within `FACE_MAX_QUALITY_LOSS`, a file that keeps them all may cost the rest of the photo up to this
#: much (`_FaceGuard.protect`). Measured on the calibration training faces at 0.05/0.10/0.15 bpp
#: (docs/bench/faces/fallback.md): the region latents that kept a face cost 0.055–0.17; looked at whole
#: at 1:1, every one up to 0.136 was the better photo of a person (the face the same, the background
#: softer) than the unprotected file with the face changed. Not for a face whose only failure is its
#: eyes (`FaceVerdict.only_eyes_failed`: identity, landmarks and mouth kept): there the limit stays
#: `FACE_MAX_QUALITY_LOSS` — with the eye-shape floor of 2026-12-02 late, held-out training face
#: 14085 at 0.10 bpp took a blocky eye patch on a smaller latent for 0.12 of quality, a worse photo than
#: its flagged, slightly redrawn eyes (docs/bench/faces/eye_shape_blur.md)
FACE_FALLBACK_MAX_LOSS = 0.15
#: try region latents before patch layers (the bench's switch to measure both ways)
REGION_LATENTS = True
#: region latents may take at most this share of the byte budget; their budget grows by this factor
MAX_REGION_SHARE = 0.6
REGION_GROWTH = 1.4


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
    kind: str  # "plain" | "patches" | "avif" | "none" (nothing fits: the file as it was)
    latent_bytes: int = 0
    note: str = ""
    #: what the decoder will show (kept so the face check reuses the guard's decode)
    decoded: np.ndarray | None = None
    #: the plain latent stream under the candidate (b"" for AVIF)
    stream: bytes = b""
    layer: PatchLayer | None = None
    protection_bytes: int = 0
    #: `codec.metrics.seams.seam_score` of a patch layer's windows (measured once, `_Guard.seams`)
    seams: float | None = None


def decode_latent_stream(model: object, data: bytes) -> np.ndarray:
    """Decode a plain latent bitstream exactly like `codec.decode` does, without its patch layer."""
    return decode_rgb(data, model=model, max_pixels=None, patches=False)  # type: ignore[arg-type]


def encode_atlas(atlas: np.ndarray, codec: str, quality: int) -> bytes:
    """Code a patch-layer atlas with the classical codec (settings of `codec.baselines`)."""
    return encode_once(Image.fromarray(atlas, "RGB"), codec, int(quality))


#: bytes of the ``patch_seams`` tag a patch-layer file carries (tag id, length, f32)
SEAMS_TAG_BYTES = 7


#: blend-mode margin of the patch layer's slots, pixels (`codec.container.patchlayer`: the window grown
#: by this much of the original and faded into the latent; 0 = replace mode's hard-edged windows)
PATCH_MARGIN = 4
#: feather mode's inner fade, pixels: the layers that cannot afford blend mode's margin (0 = replace mode)
PATCH_FEATHER = 4


def layer_atlas(rgb: np.ndarray, grid: Grid, indices: Sequence[int], margin: int | None = None
                ) -> np.ndarray:
    """The uncoded atlas `build_layer` codes (same layout and margin)."""
    m = PATCH_MARGIN if margin is None else int(margin)
    return patchlayer.make_atlas(rgb, grid, indices, atlas_cols(len(indices), grid, m), m)


def atlas_cols(n: int, grid: Grid, margin: int) -> int:
    """The atlas layout of a layer of ``n`` windows (`patchlayer.strip_cols`: one row)."""
    return patchlayer.strip_cols(n, grid.bw + 2 * int(margin))


def build_layer(rgb: np.ndarray, grid: Grid, indices: list[int], codec: str, quality: int,
                margin: int | None = None, feather: int | None = None) -> PatchLayer:
    """A patch layer holding the blocks ``indices`` of the original ``rgb``: blend mode with
    ``margin`` (default `PATCH_MARGIN`); when that is 0, feather mode with ``feather`` (default
    `PATCH_FEATHER`, at most half a window), or replace mode when that is 0 too."""
    idx = tuple(sorted(set(int(i) for i in indices)))
    if not idx:
        raise ValueError("a patch layer needs at least one block")
    m = PATCH_MARGIN if margin is None else int(margin)
    f = 0 if m else min(PATCH_FEATHER if feather is None else int(feather), min(grid.bw, grid.bh) // 2)
    cols = atlas_cols(len(idx), grid, m)
    data = encode_atlas(layer_atlas(rgb, grid, idx, m), codec, quality)
    mode = patchlayer.MODE_BLEND if m else patchlayer.MODE_FEATHER if f else patchlayer.MODE_REPLACE
    return PatchLayer(codec=codec, block=grid.block, indices=idx, cols=cols, atlas=data, mode=mode,
                      quality=int(quality), margin=m, feather=f)


def with_fidelity(data: bytes, report: FidelityReport, layer: bytes | None = None,
                  regions: bytes | None = None, seams: float | None = None) -> bytes:
    """Re-pack ``data`` with the fidelity tags (and the patch / region layer sections, if any; a patch
    layer with its ``seams`` score, so that the file says how visible its windows are)."""
    header, payload = parse(data)
    header.fidelity_min = report.min
    header.fidelity_mean = report.mean
    header.fidelity_floor_met = report.floor_met
    header.fidelity_floor = report.floor
    header.patch_layer = layer
    header.patch_seams = seams if layer is not None else None
    header.region_layer = regions
    return pack(header, payload)


def layer_seams(original: np.ndarray, decoded: np.ndarray, layer: PatchLayer) -> float:
    """`codec.metrics.seams.seam_score` of ``layer``'s windows in ``decoded`` (rounded as the f32 tag
    stores it, so the candidate and its file agree)."""
    grid = Grid(original.shape[0], original.shape[1], layer.block)
    score = seam_score(original, decoded, [grid.rect(i) for i in layer.indices])
    return float(np.float32(max(0.0, score)))


class _Guard:
    def __init__(self, session: EncodeSession, floor: float, max_bytes: int | None) -> None:
        self.session = session
        self.rgb: np.ndarray = session.rgb
        self.floor = floor
        self.max_bytes = max_bytes
        self.grid = Grid(self.rgb.shape[0], self.rgb.shape[1], BLOCK)
        self._quality: dict[bytes, float] = {}
        #: block scores of the bases patch layers go on (keyed by id; the array is kept alive with them)
        self._base_scores: dict[int, tuple[np.ndarray, BlockScores]] = {}

    def tagged_size(self, stream: bytes) -> int:
        """Bytes of ``stream`` once the fidelity tags are added (what a layer's allowance starts from)."""
        dummy = FidelityReport(0.0, 0.0, np.zeros((1, 1)), self.floor, False, (0, 0, 0, 0), 0, 1)
        return len(with_fidelity(stream, dummy))

    def fits(self, data: bytes) -> bool:
        return self.max_bytes is None or len(data) <= self.max_bytes

    def seams(self, cand: Candidate) -> float:
        """The seam score of a patch-layer candidate's windows (0 for other kinds)."""
        if cand.kind != "patches" or cand.layer is None or cand.decoded is None:
            return 0.0
        if cand.seams is None:
            cand.seams = layer_seams(self.rgb, cand.decoded, cand.layer)
        return cand.seams

    def report(self, decoded: np.ndarray) -> tuple[BlockScores, FidelityReport]:
        bs = block_scores(self.rgb, decoded)
        return bs, report(bs, self.floor)

    def remember_base(self, base: np.ndarray, bs: BlockScores) -> None:
        """Keep the scores of a decode that patch layers go on (the last `BASES_REMEMBERED` only)."""
        self._base_scores[id(base)] = (base, bs)
        while len(self._base_scores) > BASES_REMEMBERED:
            self._base_scores.pop(next(iter(self._base_scores)))

    def patched_report(self, base: np.ndarray, decoded: np.ndarray, indices: Sequence[int]) -> FidelityReport:
        """The report of ``base`` with the windows ``indices`` replaced (a patch layer): only the
        windows near them are scored again (`rescore`; a full score of a 12 MP photo is 2.5 s)."""
        known = self._base_scores.get(id(base))
        if known is None or known[0] is not base:
            bs, _rep = self.report(base)
            self.remember_base(base, bs)
        else:
            bs = known[1]
        return report(rescore(self.rgb, decoded, bs, list(indices)), self.floor)

    # ------------------------------------------------------------------ candidates of one latent
    def evaluate(self, stream: bytes) -> list[Candidate]:
        base = decode_latent_stream(self.session.model, stream)
        bs, rep = self.report(base)
        self.remember_base(base, bs)
        out = [Candidate(with_fidelity(stream, rep), rep, "plain", len(stream), decoded=base, stream=stream)]
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
        decoded = patchlayer.apply(base, layer)
        assert layer.block == self.grid.block, "the patch grid is the score grid"
        changed = self.grid.touching(layer.indices, layer.margin) if layer.margin else layer.indices
        rep = self.patched_report(base, decoded, changed)
        # seams=0.0 only reserves the tag's bytes: `guard_result` writes the chosen layer's score (a seam
        # score of a 12 MP photo's scattered windows is ~2 s: not for every candidate)
        return Candidate(with_fidelity(stream, rep, body, seams=0.0), rep, "patches", len(stream),
                         f"{len(layer.indices)} blocks, {layer.codec} q{layer.quality}",
                         decoded=decoded, stream=stream, layer=layer)

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
        # section framing (count, id, length ≤ 3 bytes) + layer header (≤ 4 + 5 bytes/varint)
        allowance = self.max_bytes - self.tagged_size(stream) - 5 - (4 + 2 * len(bad) + 6) - SEAMS_TAG_BYTES
        out: list[Candidate] = []
        if allowance < 64:
            return out
        for codec in PATCH_CODECS:
            spec = FORMATS[codec]
            k = len(bad)
            tried = 0
            while k >= 1 and tried < 2:
                idx = sorted(bad[:k])
                q, margin = _affordable(self.rgb, self.grid, idx, codec, max(spec.q_min, MIN_PATCH_QUALITY),
                                        spec.q_max, allowance)
                if q is not None:
                    layer = build_layer(self.rgb, self.grid, idx, codec, q, margin)
                    cand = self._compose(stream, base, layer)
                    while not self.fits(cand.data) and q > MIN_PATCH_QUALITY:  # framing estimate was short
                        q -= 1
                        layer = build_layer(self.rgb, self.grid, idx, codec, q, margin)
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

    def quality(self, cand: Candidate) -> float:
        """Whole-image quality of what the decoder shows (MS-SSIM − LPIPS; measured once per file)."""
        key = cand.data
        if key not in self._quality:
            assert cand.decoded is not None
            self._quality[key] = self.session.quality_of(cand.decoded)
        return self._quality[key]

    def keeps_quality(self, cand: Candidate, ref: Candidate) -> bool:
        """Monotone quality: a file built on a smaller latent (or AVIF) than ``ref`` must not lose more
        than `MAX_QUALITY_LOSS` of whole-image quality to it."""
        if cand.kind != "avif" and cand.latent_bytes >= ref.latent_bytes:
            return True
        return self.quality(cand) >= self.quality(ref) - MAX_QUALITY_LOSS

    def worth(self, cand: Candidate, first: Candidate) -> bool:
        """A smaller latent (with or without patches) must buy a real gain on the worst block and keep
        the mean; otherwise a score that merely crosses the floor by noise would cost bytes for nothing.
        And it must not lose whole-image quality (`keeps_quality`)."""
        if cand.latent_bytes >= first.latent_bytes:
            return True
        return (cand.report.min >= first.report.min + MIN_GAIN
                and cand.report.mean >= first.report.mean - MAX_MEAN_LOSS
                and self.keeps_quality(cand, first))

    def run(self, data: bytes) -> tuple[Candidate, list[Candidate]]:
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
                return best, seen
        assert first is not None
        fitting = [c for c in seen if self.fits(c.data)]
        if not fitting:  # not even the tags fit: keep the file as it was (nothing recorded)
            return Candidate(data, first.report, "none", first.latent_bytes), seen
        if ref is None:
            ref = max(fitting, key=lambda c: c.latent_bytes)
        keep = [c for c in fitting if c.report.mean >= ref.report.mean - MAX_MEAN_LOSS]
        best = max(keep, key=lambda c: (c.report.min, c.report.mean))
        if best.report.min < ref.report.min + MIN_GAIN or not self.keeps_quality(best, ref):
            best = ref
        avif = self.avif(self.max_bytes if self.max_bytes is not None else len(first.data))
        if avif is not None:
            seen.append(avif)
            if (avif.report.floor_met or (avif.report.min >= best.report.min + AVIF_MARGIN
                                          and avif.report.mean >= ref.report.mean - MAX_MEAN_LOSS)) \
                    and self.keeps_quality(avif, ref):
                return avif, seen
        return best, seen

    def avif(self, budget: int) -> Candidate | None:
        """The whole image as AVIF inside our container, ≤ ``budget`` bytes (None if impossible)."""
        h, w = self.rgb.shape[:2]
        header = Header(model_id=0, width=w, height=h, payload_kind=PAYLOAD_AVIF, fidelity_min=0.0,
                        fidelity_mean=0.0, fidelity_floor_met=False, fidelity_floor=self.floor,
                        effort=effort_code(self.session.effort))  # the search's effort, not "fast"
        overhead = len(pack(header, b"")) + 4  # + payload length varint growth
        if budget - overhead < 64:
            return None
        res = encode_at_budget(self.rgb, "avif", budget - overhead, mode="quality")
        if not res.fits or not res.data:
            return None
        decoded = decode_image(res.data, "avif", (w, h))
        _bs, rep = self.report(decoded)
        header.fidelity_min, header.fidelity_mean = rep.min, rep.mean
        header.fidelity_floor_met = rep.floor_met
        data = pack(header, res.data)
        if not self.fits(data) or len(data) > budget:
            return None
        return Candidate(data, rep, "avif", 0, f"AVIF q{res.quality}", decoded=decoded)


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


def _affordable(rgb: np.ndarray, grid: Grid, idx: Sequence[int], codec: str, q_min: int, q_max: int,
                allowance: int) -> tuple[int | None, int]:
    """(quality, margin) of the best patch layer of ``idx`` within ``allowance`` bytes: blend mode
    (`PATCH_MARGIN`) when it affords at least `MIN_PATCH_QUALITY`, else margin 0 (feather mode, no
    extra pixels) and its quality — the margin's pixels may not push a layer into blocky qualities or
    a smaller latent (training faces: docs/bench/faces/patch_margin.md)."""
    margins = (PATCH_MARGIN, 0) if PATCH_MARGIN else (0,)
    for m in margins:
        atlas = layer_atlas(rgb, grid, idx, m)
        q = _best_quality(lambda q, a=atlas: len(encode_atlas(a, codec, q)), q_min, q_max, allowance)
        if (q is not None and q >= MIN_PATCH_QUALITY) or m == margins[-1]:
            return q, m
    raise AssertionError("unreachable")


# ------------------------------------------------------------------------ faces (issue 12)


def _better(g: _Guard, a: tuple[Candidate, FaceVerdict], b: tuple[Candidate, FaceVerdict] | None
            ) -> tuple[Candidate, FaceVerdict]:
    """The one of two kept files with the higher whole-image quality (``a`` when ``b`` is None or ties)."""
    return a if b is None or g.quality(b[0]) <= g.quality(a[0]) else b


@dataclass
class GuardResult:
    """What the guard wrote and why: the file, its block fidelity, and the faces' verdict (None when
    the face check did not run: guard off, or no face models installed)."""

    data: bytes
    report: FidelityReport | None
    faces: FaceVerdict | None = None
    protection_bytes: int = 0
    #: whole-image quality (MS-SSIM − LPIPS) of the file before face protection (None: not measured,
    #: i.e. the faces needed no protection); a target search's reference (`_FaceGuard.acceptable`)
    plain_quality: float | None = None
    #: what the decoder shows for ``data`` when the guard measured it (the tags do not change it)
    decoded: np.ndarray | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def faithful(self) -> bool:
        """Block floor met, every face kept and checked text legible (what ``target="faithful"`` asks for)."""
        block_ok = self.report is not None and self.report.floor_met
        return block_ok and (self.faces is None or self.faces.ok)


def face_tag_bytes(found: int, target: str | None = None, text: bool = False, small: int = 0) -> int:
    """Upper bound of the bytes the face/target tags add to a file (reserved from the budget)."""
    h = Header(model_id=0, width=1, height=1, payload_kind=PAYLOAD_AVIF)
    base = len(pack(h, b"x"))
    h.faces_found, h.faces_too_small, h.protection_bytes = found, small, 2**32 - 1
    if found:
        h.worst_identity_distance = h.worst_landmark_shift = 1.0
    if found or small:
        h.faces_kept = False
    if small:
        h.worst_small_face_detail = 1.0
    if target is not None:
        h.target, h.target_met = target, False
    if text:
        h.text_cer, h.text_numbers_kept, h.text_words_kept = 1.0, False, False
    return len(pack(h, b"x")) - base


def with_tags(data: bytes, **tags: object) -> bytes:
    """Re-pack ``data`` with metadata ``tags`` set (header attributes)."""
    header, payload = parse(data)
    for name, value in tags.items():
        setattr(header, name, value)
    return pack(header, payload)


def verdict_of(original: np.ndarray, decoded: np.ndarray, faces: face_check.OriginalFaces,
               text: list | None) -> FaceVerdict:
    """The faces (and, when given, the text lines) of ``original`` judged in ``decoded``."""
    v = face_check.check(original, decoded, faces)
    if text:
        rep = text_check.check(original, decoded, text)
        if rep is not None:
            v = dataclasses.replace(v, text_cer=rep.worst_cer, text_numbers_kept=rep.numbers_kept,
                                    text_words_kept=rep.words_kept)
    return v


class _FaceGuard:
    """Face protection after the block guard (`protect`): decode → identity check → if a face fails,
    spend bytes on the face boxes: region latents (the faces as small latents of their own over a
    flattened base), then a patch layer over the chosen latent and over smaller latents of the same
    budget, AVIF for the whole image last; the first file that keeps every face and is `acceptable`
    for the rest of the photo wins."""

    def __init__(self, g: _Guard, faces: face_check.OriginalFaces, text: list | None = None,
                 quality_ref: float | None = None, fixed_budget: bool = True,
                 eyes_quick: bool = False) -> None:
        self.g, self.faces, self.text = g, faces, text
        #: a try of a target search that is not its last resort (not the cap): when only the eyes fail and
        #: no eye patch keeps them at this budget, give up at once — the search grows the budget — instead
        #: of the region latents, face-box layers and whole-image AVIF (kodim04 at "Standard": 134 s
        #: per budget tried, each ending unprotected or over the quality loss)
        self.eyes_quick = eyes_quick
        #: no target search around this guard: the `FACE_FALLBACK_MAX_LOSS` tier applies
        self.fixed_budget = fixed_budget
        #: whole-image quality of the nominal file a target search started from (see `acceptable`)
        self.quality_ref = quality_ref
        #: whole-image quality of the unprotected file (measured when protection runs)
        self.plain_quality: float | None = None
        blocks = set(face_check.face_blocks(faces, g.grid))
        if text:
            blocks |= set(text_check.text_blocks(text, g.grid))
        self.blocks = sorted(blocks)
        #: the crops' encode sessions (`codec.encoder.regions`), reused across the latents tried
        self._region_sessions: dict[tuple[int, int, int, int], EncodeSession] = {}

    def verdict(self, cand: Candidate) -> FaceVerdict:
        assert cand.decoded is not None
        return verdict_of(self.g.rgb, cand.decoded, self.faces, self.text)

    def latents(self, chosen: Candidate) -> Iterator[bytes]:
        """Latent streams to put the face layer on: the chosen one, then smaller shares of the budget."""
        done: set[bytes] = set()
        if chosen.stream:
            done.add(chosen.stream)
            yield chosen.stream
        if self.g.max_bytes is None:
            return

        def size_of(st: ratecontrol.Setting) -> int:
            return len(self.g.session.stream(st, search=True))

        for f in FACE_FRACTIONS[1:]:
            try:
                st = ratecontrol.search(size_of, int(self.g.max_bytes * f))
            except BudgetError:
                continue
            stream = self.g.session.stream(st)
            if stream not in done:
                done.add(stream)
                yield stream

    def layers(self, stream: bytes, base: np.ndarray, extra: Sequence[int],
               blocks: Sequence[int] | None = None) -> Iterator[Candidate]:
        """Face layers on ``stream``: with a budget, per codec the best quality that fits (the one
        scoring best on the face blocks first); without, the quality ladder. ``blocks``: the windows to
        patch instead of the faces' (the eyes' only: `eye_candidates`)."""
        g = self.g
        idx = sorted(set(self.blocks if blocks is None else blocks) | set(extra))
        if not idx:
            return
        if g.max_bytes is None:
            for q in FACE_QUALITY_LADDER:
                yield g._compose(stream, base, build_layer(g.rgb, g.grid, idx, "webp", q))
            return
        allowance = g.max_bytes - g.tagged_size(stream) - 5 - (4 + 2 * len(idx) + 6) - SEAMS_TAG_BYTES
        if allowance < 64:
            return
        found: list[Candidate] = []
        for codec in PATCH_CODECS:
            spec = FORMATS[codec]
            q, margin = _affordable(g.rgb, g.grid, idx, codec, spec.q_min, spec.q_max, allowance)
            while q is not None:
                cand = g._compose(stream, base, build_layer(g.rgb, g.grid, idx, codec, q, margin))
                if g.fits(cand.data):
                    found.append(cand)
                    break
                q = q - 1 if q > spec.q_min else None
        sel = np.zeros(g.grid.count, bool)
        sel[self.blocks] = True

        def face_score(c: Candidate) -> float:  # the candidate's own block scores, on the face blocks
            return float(np.asarray(c.report.map).ravel()[sel].mean())

        yield from sorted(found, key=face_score, reverse=True)

    def region_layer(self) -> RegionLayer | None:
        """The smallest region layer (`codec.encoder.regions`) that keeps every face over the chosen
        file's decode: region budgets grow by `REGION_GROWTH` from `MIN_REGION_ALLOWANCE` (or 10 % of
        the budget) up to `MAX_REGION_SHARE` of it; the largest tried when none keeps them all (without a
        budget: `regions.UNBUDGETED_SETTINGS` in turn). Each try codes the face crops (their encoder
        passes cached) and decodes only them."""
        g = self.g
        chosen = self.chosen
        assert chosen.decoded is not None

        def decode(sub: bytes) -> np.ndarray:
            return decode_latent_stream(g.session.model, sub)

        def attempt(allowance: int | None,
                    setting: ratecontrol.Setting = regions.UNBUDGETED_SETTINGS[0]) -> RegionLayer | None:
            return regions.build(g.session.model, g.rgb, self.faces.boxes, g.session.effort, allowance,
                                 self._region_sessions, setting)

        # region latents cover the measured faces only (a latent would redraw a small face again), so
        # they are judged on those; the small faces are left to the patch layers after them
        big_faces = dataclasses.replace(self.faces, small=())

        def kept(layer: RegionLayer) -> bool:
            decoded = regionlayer.apply(chosen.decoded, layer, decode)  # type: ignore[arg-type]
            return face_check.check(g.rgb, decoded, big_faces).kept

        best = None
        if g.max_bytes is None:  # no budget: the settings in turn until the faces are kept
            for setting in regions.UNBUDGETED_SETTINGS:
                best = attempt(None, setting)
                if best is not None and kept(best):
                    break
            return best
        budget = max(MIN_REGION_ALLOWANCE, int(0.1 * g.max_bytes))
        while budget <= MAX_REGION_SHARE * g.max_bytes:
            layer = attempt(budget)
            if layer is not None:
                best = layer
                if kept(layer):
                    break
            budget = int(budget * REGION_GROWTH)
        return best

    def region_candidates(self) -> Iterator[Candidate]:
        """The faces as region latents (`region_layer`; fewer bytes for the same identity than a
        classical patch, docs/bench/faces/regions.md) over a base latent in the rest of the budget,
        coded with the region boxes flattened (bits spent there would be painted over). Not for text."""
        g = self.g
        height, width = g.rgb.shape[:2]
        if not REGION_LATENTS or self.text or not regions.boxes(self.faces.boxes, width, height):
            return
        if height * width > LARGE_PIXELS:
            # a base latent of its own is a full encoder pass, rate search and decode of the photo: 56 s
            # of a 12 MP photo's 239 s encode (2026-12-01, one face needing protection), where a patch
            # layer over the chosen file kept the face for 9.6 KB of a 225 KB budget
            return
        layer = self.region_layer()
        if layer is None:
            return
        body = regionlayer.pack(layer, width, height)
        base_session = regions.masked(g.session, [(r.x, r.y, r.w, r.h) for r in layer.regions])
        if g.max_bytes is None:
            st = ratecontrol.Setting(*self.chosen_setting())
        else:
            ref = self.chosen.stream or self.chosen.data
            overhead = g.tagged_size(ref) - len(ref) + len(body) + 5  # tags, section framing, body
            try:
                st = ratecontrol.search(lambda s: len(base_session.stream(s, search=True)),
                                        g.max_bytes - overhead)
            except BudgetError:
                return
        stream = base_session.stream(st)
        base = decode_latent_stream(g.session.model, stream)
        decoded = regionlayer.apply(base, layer, lambda sub: decode_latent_stream(g.session.model, sub))
        _bs, rep = g.report(decoded)
        cand = Candidate(with_fidelity(stream, rep, regions=body), rep, "regions", len(stream),
                         f"{len(layer.regions)} region latents", decoded=decoded, stream=stream)
        if g.fits(cand.data):
            yield cand

    def chosen_setting(self) -> tuple[float, int]:
        """(scale, levels) of the chosen file's latent (for the unbudgeted region base)."""
        h = parse(self.chosen.stream or self.chosen.data)[0]
        assert h.quant is not None
        return h.coded_width / h.width, h.quant.levels  # type: ignore[operator]

    def candidates(self, stream: bytes, base: np.ndarray, extra: Sequence[int]) -> Iterator[Candidate]:
        """Patch-layer files on ``stream`` (up to two, best expected first)."""
        yield from itertools.islice(self.layers(stream, base, extra), 2)

    def acceptable(self, cand: Candidate, chosen: Candidate, max_loss: float = FACE_MAX_QUALITY_LOSS) -> bool:
        """Protecting faces may not break the rest of the photo: the block guard's verdict holds (the
        floor met, or a worst block no worse than the chosen file's — a face fix that wipes out another
        block is no fix), and whole-image quality (MS-SSIM − LPIPS) drops by at most
        `FACE_MAX_QUALITY_LOSS` below the unprotected file at these bytes — a face kept by starving the
        rest at the same bytes is a worse photo. In a target search that grows the budget from a
        nominal one (``quality_ref``: that nominal file's quality) the reference is the lower of the two:
        the extra bytes may go to the faces as long as the photo stays as good as the nominal one.
        ``max_loss``: the limit (`FACE_FALLBACK_MAX_LOSS` for the fixed-budget fallback)."""
        if not (cand.report.floor_met or cand.report.min >= chosen.report.min):
            return False
        ref = self.g.quality(chosen)
        if self.quality_ref is not None:
            ref = min(ref, self.quality_ref)
        return self.g.quality(cand) >= ref - max_loss

    def eye_candidates(self, chosen: Candidate) -> Iterator[Candidate]:
        """Patch layers on the windows of the eyes only (`face_check.eye_blocks`), over the chosen latent
        and then over smaller ones (`latents`: more bytes for the patch): when every face is kept but for
        its eyes (an iris redrawn, `FaceVerdict.only_eyes_failed`), a few windows of classical pixels keep
        them for far fewer bytes than the whole face box or the whole-image AVIF (kodim04 at 0.15 bpp:
        docs/bench/faces/eyes_kodim04_standard.md)."""
        if chosen.stream is None or chosen.decoded is None or chosen.kind not in ("plain", "patches"):
            return
        idx = face_check.eye_blocks(self.g.rgb, self.faces, self.g.grid)
        if not idx:
            return
        for stream in self.latents(chosen):
            base, extra = self.base_of(stream, chosen)
            yield from itertools.islice(self.layers(stream, base, extra, blocks=idx), 2)

    def eyes_kept(self, chosen: Candidate, tried: list[tuple[Candidate, FaceVerdict]]
                  ) -> tuple[Candidate, FaceVerdict] | None:
        """The eye-patch file that keeps the eyes (and the rest of the photo, `acceptable`), or None.
        Latent by latent (`eye_candidates`); once one keeps them, the next latent is tried too and the
        better of the two wins — the chosen latent is not always the best base (a 0.5-scale latent
        under a training face's eye patch lost 0.05 MS-SSIM against the 0.8-budget one). Stops at the
        first latent whose patch keeps the eyes but loses too much (smaller latents lose more)."""
        found: tuple[Candidate, FaceVerdict] | None = None
        for _stream, cands in itertools.groupby(self.eye_candidates(chosen), key=lambda c: c.stream):
            here, starved = None, False
            for cand in cands:
                if cand.layer is not None and (cand.layer.quality or 0) < MIN_PATCH_QUALITY:
                    continue  # blocks across the eyes (kodim04: AVIF q15 at the chosen latent's bytes)
                v = self.tried(cand, tried)
                if v.ok and not self.seamy(cand):
                    if self.acceptable(cand, chosen):
                        here = (cand, v)
                        break
                    starved = True
            if found is not None:
                return _better(self.g, found, here)
            if here is None and starved:
                return None
            found = here
        return found

    def base_of(self, stream: bytes, chosen: Candidate) -> tuple[np.ndarray, Sequence[int]]:
        """The decode of latent ``stream`` (the chosen file's own when it is that plain file) and the
        windows a layer over it must keep (the chosen file's block-guard patches, over its own stream)."""
        if stream == chosen.stream and chosen.decoded is not None and chosen.kind == "plain":
            base = chosen.decoded
        else:
            base = decode_latent_stream(self.g.session.model, stream)
        extra = chosen.layer.indices if (chosen.layer is not None and stream == chosen.stream) else ()
        return base, extra

    def tried(self, cand: Candidate, tried: list[tuple[Candidate, FaceVerdict]]) -> FaceVerdict:
        """The verdict of a protection candidate, its protection bytes set, recorded in ``tried``."""
        v = self.verdict(cand)
        cand.protection_bytes = len(section_bytes(parse(cand.data)[0]))
        tried.append((cand, v))
        return v

    def protect(self, chosen: Candidate) -> tuple[Candidate, FaceVerdict]:
        first = self.verdict(chosen)
        if first.ok or not self.blocks or chosen.decoded is None:
            return chosen, first
        self.plain_quality = self.g.quality(chosen)
        tried: list[tuple[Candidate, FaceVerdict]] = [(chosen, first)]
        self.chosen = chosen
        if first.only_eyes_failed:
            kept = self.eyes_kept(chosen, tried)
            if kept is not None:
                return kept
            if self.eyes_quick:
                return chosen, first
        for cand in self.region_candidates():
            v = self.tried(cand, tried)
            if v.ok and self.acceptable(cand, chosen):
                return cand, v
        found: tuple[Candidate, FaceVerdict] | None = None
        for stream in self.latents(chosen):
            base, extra = self.base_of(stream, chosen)
            here: tuple[Candidate, FaceVerdict] | None = None
            for cand in self.candidates(stream, base, extra):
                v = self.tried(cand, tried)
                if v.ok and self.acceptable(cand, chosen) and not self.seamy(cand):
                    here = (cand, v)
                    break
            if found is not None:  # the latent after the first that kept the faces: the better of the two
                return _better(self.g, found, here)
            found = here
        if found is not None:
            return found
        avif = self.g.avif(self.g.max_bytes if self.g.max_bytes is not None else 2 * len(chosen.data))
        if avif is not None:
            v = self.verdict(avif)
            avif.protection_bytes = len(avif.data)
            tried.append((avif, v))
            if v.ok and self.acceptable(avif, chosen):
                return avif, v
        return self.fallback(chosen, first, tried)

    def seamy(self, cand: Candidate) -> bool:
        """A patch layer whose squares show across the face (over `codec.metrics.seams.SEAM_FLOOR`, set
        by eye on the calibration training faces): it does not keep the face."""
        return self.g.seams(cand) > SEAM_FLOOR

    def fallback(self, chosen: Candidate, first: FaceVerdict,
                 tried: list[tuple[Candidate, FaceVerdict]]) -> tuple[Candidate, FaceVerdict]:
        """Nothing keeps every face within `FACE_MAX_QUALITY_LOSS`. At a fixed budget: the file that keeps
        them all with the least loss, up to `FACE_FALLBACK_MAX_LOSS` (`FACE_MAX_QUALITY_LOSS` when only the
        eyes failed). Else the least bad, when it is
        clearly less bad than the chosen file and keeps the block verdict.

        A garbled patch layer (coded below `MIN_PATCH_QUALITY`, or over `SEAM_FLOOR`: its blocks show
        as seams across the face) is neither — the astronaut at 0.10 bpp got WebP q0 blocks for no
        identity gain; on held-out training faces AVIF q11 / WebP q5 layers "kept" two faces (0.45 →
        0.31 / 0.28) with visible seams (docs/bench/faces/fallback.md) — except where the unprotected
        face is no longer the same person (dlib's 0.6) and the layer's is: seams on the right face beat
        a mask (kodim18 at 0.05 bpp: 0.72 unprotected, a WebP q7 layer 0.36)."""
        gone = first.worst_distance is not None and first.worst_distance > SAME_PERSON_THRESHOLD

        def garbled(c: Candidate, v: FaceVerdict) -> bool:
            low = c.layer is not None and (c.layer.quality or 0) < MIN_PATCH_QUALITY
            if not (c.kind == "patches" and (low or self.seamy(c))):
                return False
            return not (gone and v.worst_distance is not None and v.worst_distance <= SAME_PERSON_THRESHOLD)

        if self.fixed_budget:
            limit = FACE_MAX_QUALITY_LOSS if first.only_eyes_failed else FACE_FALLBACK_MAX_LOSS
            kept = [(c, v) for c, v in tried if v.ok and not garbled(c, v)
                    and self.acceptable(c, chosen, limit)]
            if kept:
                return max(kept, key=lambda t: self.g.quality(t[0]))

        # a face the detector no longer finds is the worse failure (the first target): a file that
        # keeps every face detected beats one that does not, whatever the rest of the badness says
        # (kodim15 at 0.05 bpp: a region latent, detected, eyes redrawn vs the plain file, face lost)
        best, bv = min(((c, v) for c, v in tried if self.acceptable(c, chosen) and not garbled(c, v)),
                       key=lambda t: (not t[1].all_detected, t[1].badness))
        if (bv.all_detected and not first.all_detected) or bv.badness < first.badness - 0.1:
            return best, bv
        return chosen, first


def guard_result(session: EncodeSession, data: bytes, *, max_bytes: int | None, min_fidelity: float | None,
                 check_faces: bool = True, target: str | None = None,
                 check_text: bool = False, quality_ref: float | None = None,
                 eyes_quick: bool = False) -> GuardResult:
    """The fidelity guard (see above) plus the identity check (`_FaceGuard`): the file to write
    (≤ ``max_bytes``, with the fidelity, face and ``target`` tags) and why. ``min_fidelity=0`` turns
    both off (the file as written). ``quality_ref``: see `_FaceGuard.acceptable`. ``eyes_quick``: see
    `_FaceGuard.eyes_quick`."""
    floor = resolve_floor(min_fidelity)
    if floor <= 0.0:
        return GuardResult(data, None)
    faces = session.faces() if check_faces else None
    text = text_check.session_regions(session) if check_text else None
    if text is not None and faces is None:
        faces = face_check.OriginalFaces((), None)
    reserve = 0
    if faces is not None or target is not None:
        reserve = face_tag_bytes(len(faces.boxes) if faces is not None else 0, target, bool(text),
                                 len(faces.small) if faces is not None else 0)
    budget = None if max_bytes is None else max_bytes - reserve
    g = _Guard(session, floor, budget)
    chosen, _seen = g.run(data)
    if chosen.kind == "none":  # not even the tags fit
        return GuardResult(data, None)
    verdict: FaceVerdict | None = None
    plain_quality: float | None = None
    if faces is not None:
        if chosen.decoded is None:
            chosen.decoded = decode_rgb(chosen.data, model=session.model, max_pixels=None)
        face_guard = _FaceGuard(g, faces, text, quality_ref, fixed_budget=target is None,
                                eyes_quick=eyes_quick)
        chosen, verdict = face_guard.protect(chosen)
        plain_quality = face_guard.plain_quality
    if chosen.kind == "patches":  # the file says how visible its patched windows are
        chosen.data = with_tags(chosen.data, patch_seams=g.seams(chosen))
    result = GuardResult(chosen.data, chosen.report, verdict, chosen.protection_bytes, plain_quality,
                         chosen.decoded)
    return tagged(result, target, max_bytes)


def tagged(result: GuardResult, target: str | None, max_bytes: int | None) -> GuardResult:
    """``result`` with its verdict written into the file's tags (faces, text, target)."""
    tags: dict[str, object] = {}
    verdict = result.faces
    if verdict is not None:
        tags.update(faces_found=verdict.found, faces_too_small=verdict.too_small,
                    worst_identity_distance=verdict.worst_distance, worst_landmark_shift=verdict.worst_shift,
                    faces_kept=verdict.kept if verdict.checked else None,
                    worst_small_face_detail=verdict.worst_small_detail,
                    protection_bytes=result.protection_bytes, text_cer=verdict.text_cer,
                    text_numbers_kept=verdict.text_numbers_kept, text_words_kept=verdict.text_words_kept)
    if target is not None:
        tags.update(target=target, target_met=result.faithful)
    if tags:
        result.data = with_tags(result.data, **tags)
    if max_bytes is not None and len(result.data) > max_bytes:  # the reserve is an upper bound
        raise BudgetError(f"internal error: {len(result.data)} bytes > budget {max_bytes}")
    return result


def guard(session: EncodeSession, data: bytes, *, max_bytes: int | None, min_fidelity: float | None) -> bytes:
    """The fidelity guard (see above): ``data`` as written, or a guarded file (≤ ``max_bytes``)."""
    return guard_result(session, data, max_bytes=max_bytes, min_fidelity=min_fidelity).data
