"""Fidelity guard (issue 5): block scores, patch layer, bitstream sections, the guard in encode/decode."""

from __future__ import annotations

import dataclasses
import struct
import time
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from codec import container
from codec.container import patchlayer
from codec.encoder import guard
from codec.errors import BitstreamError, UnsupportedVersionError, UsageError
from codec.metrics import fidelity
from codec.quant import QuantParams


def _header(**kw) -> container.Header:
    qp = QuantParams(8, (-1.0,) * 4, (1.0,) * 4)
    base = dict(model_id=1, width=64, height=48, quant=qp)
    base.update(kw)
    return container.Header(**base)


def _recrc(data: bytes) -> bytes:
    body = data[:-4]
    return body + struct.pack("<I", zlib.crc32(body))


# ------------------------------------------------------------------------ bitstream: sections + tags


def test_bitstream_patch_section_and_floor_tag_round_trip() -> None:
    h = _header(fidelity_min=0.5, fidelity_mean=0.75, fidelity_floor_met=False, fidelity_floor=0.4,
                patch_layer=b"\x01\x20layer")
    data = container.pack(h, b"payload")
    parsed, payload = container.parse(data)
    assert payload == b"payload"
    assert parsed.patch_layer == b"\x01\x20layer"
    meta = container.header_to_dict(parsed, len(data))
    assert meta["fidelity_floor_met"] is False
    assert meta["fidelity_floor"] == pytest.approx(0.4)
    assert meta["guard"] == "patches"
    assert meta["patch_layer_bytes"] == 7
    assert meta["guard_bytes"] == 1 + 1 + 1 + 7  # count, id, length, body
    plain = container.parse(container.pack(_header(), b"payload"))[0]
    assert plain.patch_layer is None and plain.patch_seams is None
    seamy = container.pack(_header(patch_layer=b"\x01\x20layer", patch_seams=4.25), b"payload")
    back = container.parse(seamy)[0]
    assert back.patch_seams == pytest.approx(4.25)
    assert container.header_to_dict(back, len(seamy))["patch_seams"] == pytest.approx(4.25)
    assert "guard" not in container.header_to_dict(plain, 10)


def test_bitstream_sections_are_strict() -> None:
    data = container.pack(_header(patch_layer=b"abc"), b"payload")
    cut = data[:-4]
    # the sections are the last 6 bytes before the CRC: count=1, id=1, len=3, "abc"
    assert cut.endswith(b"\x01\x01\x03abc")
    with pytest.raises(BitstreamError):  # truncated section
        container.parse(_recrc(cut[:-1] + struct.pack("<I", 0)))
    with pytest.raises(BitstreamError):  # trailing byte after the sections
        container.parse(_recrc(cut + b"x" + b"\0\0\0\0"))
    with pytest.raises(BitstreamError):  # empty section
        container.parse(_recrc(cut[:-5] + b"\x01\x00" + b"\0\0\0\0"))
    with pytest.raises(BitstreamError):  # count 0
        container.parse(_recrc(cut[:-6] + b"\x00" + b"\0\0\0\0"))
    with pytest.raises(BitstreamError):  # section twice
        container.parse(_recrc(cut[:-6] + b"\x02\x01\x03abc\x01\x03abc" + b"\0\0\0\0"))
    with pytest.raises(UnsupportedVersionError):  # unknown critical section
        container.parse(_recrc(cut[:-5] + b"\x89\x03abc" + b"\0\0\0\0"))
    unknown = container.parse(_recrc(cut[:-5] + b"\x09\x03abc" + b"\0\0\0\0"))[0]  # skipped
    assert unknown.patch_layer is None
    flipped = bytearray(data)
    flipped[-6] ^= 0x40
    with pytest.raises(BitstreamError):  # CRC
        container.parse(bytes(flipped))
    with pytest.raises(ValueError):
        container.pack(_header(payload_kind=container.PAYLOAD_AVIF, patch_layer=b"x"), b"avif")


# ------------------------------------------------------------------------------- block scores


def _photo(h: int = 96, w: int = 128) -> np.ndarray:
    from tests.conftest import synthetic_rgb

    return synthetic_rgb(w, h, seed=3)


@pytest.mark.parametrize("shape", [(333, 250), (97, 401), (64, 64)])
def test_block_scores_in_strips_equal_the_whole_image(shape, monkeypatch) -> None:
    """Large images are scored strip by strip (memory); the scores must not depend on the strips —
    odd sizes put the last window row off the 32 / 8 px grids and the strip edges inside the blur."""
    h, w = shape
    rgb = _photo(h, w)
    rng = np.random.default_rng(1)
    dec = np.clip(rgb + rng.normal(0, 20, rgb.shape), 0, 255).astype(np.uint8)
    dec[h // 3 : h // 2, : w // 2] = 40  # a damaged band across a strip edge
    whole = fidelity.block_scores(rgb, dec)
    monkeypatch.setattr(fidelity, "STRIP_PIXELS", 40 * w)  # strips of 40 rows → 32 (one window row)
    strips = fidelity.block_scores(rgb, dec)
    for part in ("score", "ssim", "delta_e", "fine", "coarse"):
        assert np.allclose(getattr(strips, part), getattr(whole, part), rtol=0, atol=1e-9), part
    assert whole.score.min() < 0.5  # (the band is seen)


@pytest.mark.parametrize("shape", [(333, 250), (97, 401), (300, 520)])
def test_rescore_after_patches_equals_a_full_score(shape) -> None:
    """The guard scores patch candidates by re-scoring only the windows near the patched ones; that must
    equal a full `block_scores` of the patched image (corner, border and interior patches, odd sizes
    whose last window row/column is shifted inwards)."""
    h, w = shape
    rgb = _photo(h, w)
    rng = np.random.default_rng(2)
    dec = np.clip(rgb + rng.normal(0, 25, rgb.shape), 0, 255).astype(np.uint8)
    dec[h // 2 : h // 2 + 40, w // 3 : w // 3 + 50] = 30  # damage the patches repair
    base = fidelity.block_scores(rgb, dec)
    grid = base.grid
    for picks in ([0], [grid.count - 1], [grid.cols * (grid.rows // 2) + grid.cols // 3, grid.cols - 1],
                  list(rng.choice(grid.count, 4, replace=False))):
        patched = dec.copy()
        for i in picks:
            y, x = grid.origin(i)
            patched[y : y + grid.bh, x : x + grid.bw] = rgb[y : y + grid.bh, x : x + grid.bw]
        full = fidelity.block_scores(rgb, patched)
        fast = fidelity.rescore(rgb, patched, base, picks)
        assert not np.array_equal(full.score, base.score)  # (the patches changed something)
        for part in ("score", "ssim", "delta_e", "fine", "coarse"):
            assert np.allclose(getattr(fast, part), getattr(full, part), rtol=0, atol=1e-9), (picks, part)
    assert fidelity.rescore(rgb, dec, base, []) is base
    with pytest.raises(ValueError):
        fidelity.rescore(rgb, dec, base, [grid.count])
    with pytest.raises(ValueError):
        fidelity.rescore(rgb[:-1], dec[:-1], base, [0])


def test_block_scores_identical_and_damage_sanity() -> None:
    rgb = _photo()
    bs = fidelity.block_scores(rgb, rgb)
    assert bs.score.shape == (3, 4) and np.allclose(bs.score, 1.0)
    rng = np.random.default_rng(0)
    scores = []
    for sigma in (4, 16, 48):
        noisy = np.clip(rgb + rng.normal(0, sigma, rgb.shape), 0, 255).astype(np.uint8)
        scores.append(fidelity.block_scores(rgb, noisy).score.mean())
    assert 1.0 > scores[0] > scores[1] > scores[2]  # more damage, lower score
    # damage one block: that block drops, blocks away from it are untouched
    bad = rgb.copy()
    bad[32:64, 64:96] = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    s = fidelity.block_scores(rgb, bad).score
    assert np.unravel_index(np.argmin(s), s.shape) == (1, 2) and s[1, 2] < 0.3
    # (the coarse scale sees ~48 px around a window: a neighbour of the damage moves by a hair)
    assert s[0, 0] == pytest.approx(1.0, abs=0.01) and s[2, 0] == pytest.approx(1.0, abs=0.01)
    # a pure colour shift (same structure) is caught by the colour term
    shifted = rgb.copy()
    shifted[:32, :32, 0] = np.clip(shifted[:32, :32, 0].astype(int) + 70, 0, 255)
    cs = fidelity.block_scores(rgb, shifted)
    assert cs.delta_e[0, 0] > 15 and cs.score[0, 0] < 0.7 and cs.score[2, 3] == pytest.approx(1.0)


def test_text_garbling_scores_low_and_report_fields() -> None:
    from codec.tools.bench.synthetic import text_case

    text = text_case(256, 128)
    blurred = np.asarray(Image.fromarray(text).resize((64, 32)).resize((256, 128), Image.Resampling.BICUBIC))
    rep = fidelity.measure(text, blurred, floor=0.4)
    assert rep.min < 0.3 and not rep.floor_met and rep.below > 0 and rep.blocks == 32
    x, y, w, h = rep.worst_block
    assert (w, h) == (32, 32) and 0 <= x <= 224 and 0 <= y <= 96
    assert fidelity.measure(text, text).floor_met


def test_scores_stay_finite_on_exact_matches_next_to_huge_errors() -> None:
    # regression: integral-image window sums of an all-zero ΔE region came out a hair below zero
    # next to huge errors, sqrt gave NaN, and the encode of a line-art page failed on the NaN tag
    from codec.tools.bench.synthetic import line_art_case

    a = line_art_case(384, 256)
    rng = np.random.default_rng(7)
    for _ in range(5):
        b = a.copy()
        y, x = rng.integers(0, 200), rng.integers(0, 300)
        b[y : y + 56, x : x + 84] = 255 - b[y : y + 56, x : x + 84]
        bs = fidelity.block_scores(a, b)
        assert np.isfinite(bs.score).all() and np.isfinite(bs.delta_e).all()
        assert bs.score.max() == pytest.approx(1.0) and bs.score.min() < 0.5


def test_block_grid_handles_odd_and_tiny_sizes() -> None:
    for h, w in ((50, 70), (7, 9), (33, 97)):
        rgb = _photo(h, w)
        s = fidelity.block_scores(rgb, rgb).score
        assert s.shape == (-(-h // 32), -(-w // 32)) and np.allclose(s, 1.0)


def test_scoring_is_fast_enough() -> None:
    rgb = _photo(512, 768)
    dec = np.clip(rgb.astype(int) + 9, 0, 255).astype(np.uint8)
    fidelity.block_scores(rgb, dec)
    t0 = time.perf_counter()
    fidelity.block_scores(rgb, dec)
    assert time.perf_counter() - t0 < 1.5  # ~0.1 s on an idle core; generous for a shared CI machine


def _head_scene(h: int = 128, w: int = 192) -> tuple[np.ndarray, np.ndarray]:
    """A person's head as the generative decoder loses it: smooth dark hair + skin blobs (little fine
    structure) on a shaded background. Returns (photo, the same photo with the head gone)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    back = np.stack([120 + 30 * yy / h, 130 + 20 * xx / w, 110 + 0 * xx], -1)
    hair = np.exp(-(((xx - 96) / 20) ** 2 + ((yy - 56) / 22) ** 2))[..., None]
    skin = np.exp(-(((xx - 96) / 14) ** 2 + ((yy - 66) / 16) ** 2))[..., None]
    head = back * (1 - hair) + np.array([40, 30, 25]) * hair
    head = head * (1 - skin) + np.array([215, 170, 140]) * skin
    grain = rng.normal(0, 4, (h, w, 1))
    return (np.clip(head + grain, 0, 255).astype(np.uint8), np.clip(back + grain, 0, 255).astype(np.uint8))


def test_coarse_scale_catches_a_vanished_head_the_fine_scale_forgives() -> None:
    rgb, gone = _head_scene()
    floor = fidelity.DEFAULT_MIN_FIDELITY
    bs = fidelity.block_scores(rgb, gone)
    head = (slice(0, 3), slice(2, 4))  # the 32×32 windows the head covers
    # the fine 32×32 score alone forgives it (the "worst blocks 0.47–0.84, floor met") …
    assert bs.fine.min() > floor + 0.2
    # … the coarse scale does not, and the block score is the worse of the two
    assert fidelity.coarse_term(bs.coarse)[head].min() < floor
    assert bs.score[head].min() < floor
    assert np.array_equal(bs.score, np.minimum(bs.fine, fidelity.coarse_term(bs.coarse)))
    assert bs.score[:, 0].min() > 0.8  # far from the head nothing changed
    rep = fidelity.measure(rgb, gone)
    assert not rep.floor_met and rep.worst_block[0] in (64, 96)
    # a dark flat rectangle where the head was: caught as well
    dark = rgb.copy()
    dark[24:104, 64:128] = 25
    assert fidelity.measure(rgb, dark).min < floor


def test_invented_fine_grain_is_not_a_structural_failure() -> None:
    rgb, _gone = _head_scene()
    rng = np.random.default_rng(1)
    for sigma in (6, 10):
        grainy = np.clip(rgb + rng.normal(0, sigma, rgb.shape[:2])[..., None], 0, 255).astype(np.uint8)
        bs = fidelity.block_scores(rgb, grainy)
        assert fidelity.coarse_term(bs.coarse).min() > 0.9  # grain averages out at the coarse scale
        assert bs.score.min() > 0.6 and fidelity.measure(rgb, grainy).floor_met


def test_guard_patch_layer_restores_the_vanished_head() -> None:
    """The guard's block list (score < floor) holds the head's windows of the patch-layer grid, and the
    patch layer the guard builds from them brings the decode back over the floor."""
    rgb, gone = _head_scene()
    floor = fidelity.DEFAULT_MIN_FIDELITY
    bs = fidelity.block_scores(rgb, gone)
    bad = [int(i) for i in np.flatnonzero(bs.score.ravel() < floor)]
    cols = {i % bs.grid.cols for i in bad}
    assert bad and cols <= {1, 2, 3, 4} and {2, 3} <= cols
    layer = guard.build_layer(rgb, bs.grid, bad, "webp", 80)
    layer = patchlayer.parse(patchlayer.pack(layer), rgb.shape[1], rgb.shape[0])
    fixed = patchlayer.apply(gone, layer)
    rep = fidelity.measure(rgb, fixed)
    assert rep.floor_met and rep.min > fidelity.measure(rgb, gone).min + 0.3


def test_resolve_floor() -> None:
    assert guard.resolve_floor(None) == fidelity.DEFAULT_MIN_FIDELITY
    assert guard.resolve_floor(0) == 0.0
    for bad in (1.5, -0.1, "x", True):
        with pytest.raises(UsageError):
            guard.resolve_floor(bad)


# -------------------------------------------------------------------------------- patch layer


@pytest.mark.parametrize(("margin", "feather"), [(0, 0), (4, 0), (0, 4)])
def test_patch_layer_round_trip_edges_and_overlap(margin: int, feather: int) -> None:
    rgb = _photo(70, 100)  # edge windows shifted inwards: rows at 0, 32, 38; cols at 0, 32, 64, 68
    grid = patchlayer.Grid(70, 100, 32)
    assert grid.origin(3) == (0, 68) and grid.origin(11) == (38, 68)
    base = np.zeros_like(rgb)
    for codec_name in ("webp", "jxl", "avif"):
        layer = guard.build_layer(rgb, grid, [11, 0, 5], codec_name, 90, margin=margin, feather=feather)
        assert layer.mode == (patchlayer.MODE_BLEND if margin else patchlayer.MODE_FEATHER if feather
                              else patchlayer.MODE_REPLACE)
        assert layer.atlas_size(grid) == (3 * (32 + 2 * margin), 32 + 2 * margin)
        body = patchlayer.pack(layer)
        parsed = patchlayer.parse(body, 100, 70)
        assert parsed == layer and parsed.indices == (0, 5, 11) and (parsed.margin, parsed.feather) == (
            margin, feather)
        out = patchlayer.apply(base, parsed)
        for idx in parsed.indices:
            y0, x0 = grid.origin(idx)
            f = feather  # feathered edges mix with the (black) base: compare the inside
            err = np.abs(out[y0 + f : y0 + 32 - f, x0 + f : x0 + 32 - f].astype(int)
                         - rgb[y0 + f : y0 + 32 - f, x0 + f : x0 + 32 - f]).mean()
            assert err < 8, (codec_name, idx, err)
        assert not out[0 : 32 - margin, 32 + margin : 64 - margin].any()  # block 1 was not patched
    tiny = _photo(12, 20)
    layer = guard.build_layer(tiny, patchlayer.Grid(12, 20, 32), [0], "webp", 95, margin, feather)
    assert patchlayer.apply(np.zeros_like(tiny), patchlayer.parse(patchlayer.pack(layer), 20, 12)).any()


def test_patch_layer_blend_mode_fades_over_the_margin() -> None:
    """Blend mode: the window is the patch, the margin a linear ramp into the base, overlapping slots
    are averaged (not pasted in order), and the atlas holds the window grown by the original's pixels."""
    rgb = np.full((64, 96, 3), 200, np.uint8)
    grid = patchlayer.Grid(64, 96, 32)
    layer = guard.build_layer(rgb, grid, [0], "webp", 100, margin=4)
    out = patchlayer.apply(np.zeros_like(rgb), patchlayer.parse(patchlayer.pack(layer), 96, 64))
    assert np.abs(out[:32, :32].astype(int) - 200).max() <= 2
    row = out[10, 32:38, 0].astype(int)  # 4 margin pixels then untouched base
    assert np.allclose(row[:4], 200 * np.array([0.875, 0.625, 0.375, 0.125]), atol=3) and not row[4:].any()
    assert not out[36:, :].any() and not out[:, 36:].any()
    ramp = patchlayer.margin_ramp(32, 4)
    assert ramp.shape == (40,) and ramp[4:36].min() == 1.0 and ramp[0] == ramp[-1] == 0.125
    # the slot of an inner window holds its real neighbourhood, the image border is edge-replicated
    photo = _photo(64, 96)
    atlas = patchlayer.make_atlas(photo, grid, [1], 1, margin=4)
    assert atlas.shape == (40, 40, 3)
    assert np.array_equal(atlas[4:, :], photo[0:36, 28:68]) and np.array_equal(atlas[0], photo[0, 28:68])
    # grown windows: what a blend layer changes
    assert grid.touching([0], 4) == [0, 1, 3, 4] and grid.touching([0], 0) == [0]


def test_patch_layer_feather_mode_fades_only_free_edges() -> None:
    """Feather mode: replace mode's atlas (no extra pixels), each window fading in over its outer pixels
    on the sides that touch neither another window of the layer nor the image border."""
    grid = patchlayer.Grid(96, 128, 32)  # 3 × 4 windows
    wy, wx = patchlayer.feather_ramps(grid, [5, 6], 5, 4)  # window (1, 1); (1, 2) is in the layer
    ramp = np.array([0.125, 0.375, 0.625, 0.875], np.float32)
    assert np.allclose(wy[:4], ramp) and np.allclose(wy[-4:], ramp[::-1]) and wy[4:-4].min() == 1.0
    assert np.allclose(wx[:4], ramp) and wx[4:].min() == 1.0  # the right side touches window 6
    wy, wx = patchlayer.feather_ramps(grid, [0], 0, 4)  # top-left corner: image border on two sides
    assert wy[:28].min() == wx[:28].min() == 1.0 and np.allclose(wy[-4:], ramp[::-1])
    rgb = np.full((96, 128, 3), 200, np.uint8)
    layer = guard.build_layer(rgb, grid, [5, 6], "webp", 100, margin=0, feather=4)
    assert layer.mode == patchlayer.MODE_FEATHER and layer.atlas_size(grid) == (64, 32)
    out = patchlayer.apply(np.zeros_like(rgb), patchlayer.parse(patchlayer.pack(layer), 128, 96))
    assert np.abs(out[40:56, 36:92].astype(int) - 200).max() <= 2  # inside, across the shared edge
    assert np.allclose(out[48, 32:36, 0], 200 * ramp, atol=3) and not out[:32].any() and not out[:, :32].any()
    tiny = guard.build_layer(_photo(12, 20), patchlayer.Grid(12, 20, 32), [0], "webp", 90, 0, 6)
    body = patchlayer.pack(tiny)  # kind, block, n, index, cols, feather: feather ≤ half the 12-px window
    assert patchlayer.parse(body, 20, 12).feather == 6
    with pytest.raises(BitstreamError):
        patchlayer.parse(body[:5] + bytes([7]) + body[6:], 20, 12)


def test_patch_atlas_is_one_row_so_no_other_window_bleeds_into_a_slot_edge() -> None:
    """`patchlayer.strip_cols`: the encoder lays a layer's slots out in one row (up to
    `MAX_STRIP_WIDTH`), so a slot's top and bottom touch only the atlas border. Stacked in rows, the slot
    above is some other window, whose colour the lossy atlas (4:2:0 WebP) bleeds in as a line along the
    windows' horizontal edges — kodim04's eye patch showed red lines across the skin."""
    rgb = np.full((128, 256, 3), (200, 170, 150), np.uint8)  # skin
    rgb[:64, 192:] = (220, 20, 30)  # a red object: windows 6, 7, 14, 15
    grid = patchlayer.Grid(128, 256, 32)
    idx = [2, 3, 6, 7, 10, 11, 14, 15]
    layer = guard.build_layer(rgb, grid, idx, "webp", 60, margin=0)
    assert layer.mode == patchlayer.MODE_FEATHER and layer.cols == len(idx)
    assert layer.atlas_size(grid) == (32 * len(idx), 32)
    blend = guard.build_layer(rgb, grid, idx, "webp", 60)
    assert blend.cols == len(idx) and blend.atlas_size(grid) == (40 * len(idx), 40)
    assert patchlayer.strip_cols(1000, 32) == patchlayer.MAX_STRIP_WIDTH // 32
    assert patchlayer.strip_cols(3, 10**6) == 1
    stacked = dataclasses.replace(layer, cols=3, atlas=guard.encode_atlas(
        patchlayer.make_atlas(rgb, grid, idx, 3), "webp", 60))  # slot 11 sits under slot 6 (red)

    def edge_error(lay: patchlayer.PatchLayer) -> float:
        """Colour error where window 11's top meets window 3 (rows 31 | 32, both skin, both in the layer)."""
        out = patchlayer.apply(np.zeros_like(rgb), patchlayer.parse(patchlayer.pack(lay), 256, 128))
        return float(np.abs(out[30:34, 100:124].astype(int) - rgb[30:34, 100:124]).max())

    assert edge_error(layer) <= 6 < edge_error(stacked)


def test_patch_quality_prefers_blend_mode_unless_it_would_be_blocky() -> None:
    """`guard._affordable`: blend mode (`PATCH_MARGIN`) when its best quality within the bytes is at least
    `MIN_PATCH_QUALITY`, else replace mode (its atlas is smaller, so the same bytes buy a higher quality)."""
    rgb = _photo(96, 128)
    grid = patchlayer.Grid(96, 128, 32)
    idx = [1, 5, 6]
    q_min = guard.MIN_PATCH_QUALITY

    def size(margin: int, q: int) -> int:
        return len(guard.encode_atlas(guard.layer_atlas(rgb, grid, idx, margin), "webp", q))

    assert guard.PATCH_MARGIN > 0 and size(guard.PATCH_MARGIN, q_min) > size(0, q_min)
    q, m = guard._affordable(rgb, grid, idx, "webp", 0, 100, 10**6)
    assert (q, m) == (100, guard.PATCH_MARGIN)
    between = (size(guard.PATCH_MARGIN, q_min) + size(0, q_min)) // 2  # blend only below q_min
    q, m = guard._affordable(rgb, grid, idx, "webp", 0, 100, between)
    assert m == 0 and q is not None and q >= q_min and size(0, q) <= between
    assert guard._affordable(rgb, grid, idx, "webp", 0, 100, 10) == (None, 0)


@pytest.mark.parametrize(("margin", "feather"), [(0, 0), (4, 0), (0, 4)])
def test_patch_layer_parse_rejects_corruption(margin: int, feather: int) -> None:
    rgb = _photo(64, 96)
    grid = patchlayer.Grid(64, 96, 32)
    body = patchlayer.pack(guard.build_layer(rgb, grid, [1, 4], "webp", 50, margin=margin, feather=feather))
    h = 7 if margin or feather else 6  # kind, block, n, first index, delta, cols (, margin or feather)
    bad_bodies = [
        b"",
        body[:3],
        bytes([0x07]) + body[1:],  # unknown atlas codec
        bytes([0x21]) + body[1:],  # reserved bits
        bytes([0x19]) + body[1:],  # unknown mode
        body[:1] + bytes([4]) + body[2:],  # block size below the minimum
        body[:2] + bytes([7]) + body[3:],  # more blocks than the image has
        body[:3] + bytes([6]) + body[4:],  # first index out of range
        body[:h],  # no atlas
        body[:-20],  # truncated atlas
        body[:h] + b"RIFX" + body[h + 4 :],  # not a WebP atlas
        body[:h] + bytes(len(body) - h),  # zeros instead of the atlas
        bytes([body[0] ^ (0x18 if feather else 0x08)]) + body[1:],  # another mode: field missing / extra
    ]
    if margin or feather:
        bad_bodies += [body[:6] + bytes([0]) + body[7:],  # no margin / feather
                       body[:6] + bytes([patchlayer.MAX_MARGIN + 1]) + body[7:]]  # too large
    if margin:
        bad_bodies.append(body[:6] + bytes([3]) + body[7:])  # the margin of another atlas size
    for bad in bad_bodies:
        with pytest.raises(BitstreamError):
            patchlayer.apply(np.zeros_like(rgb), patchlayer.parse(bad, 96, 64))
    # an atlas of the wrong size (coded for another image size)
    with pytest.raises(BitstreamError):
        patchlayer.apply(np.zeros((64, 64, 3), np.uint8), patchlayer.parse(body, 64, 64))


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200))
def test_patch_layer_parser_never_crashes(data: bytes) -> None:
    try:
        layer = patchlayer.parse(data, 96, 64)
        patchlayer.apply(np.zeros((64, 96, 3), np.uint8), layer)
    except BitstreamError:
        pass


# ------------------------------------------------------------------ the guard in encode/decode
# Small images and effort "fast" keep these to a few seconds each (real TAESD weights).

@pytest.fixture(scope="module")
def text_rgb() -> np.ndarray:
    """A photo-like picture with a 12 px text label and a strip of small text (garbled by the latent)."""
    from codec.tools.bench.synthetic import text_case
    from tests.conftest import synthetic_rgb

    rgb = synthetic_rgb(192, 128, seed=3).copy()
    rgb[48:80, 64:128] = text_case(64, 32)
    rgb[96:128, :96] = text_case(96, 32)
    return rgb


@pytest.fixture(scope="module")
def guarded_text(text_rgb) -> dict:
    """The same budget without and with the guard; the floor puts the 4 worst blocks below it."""
    import codec

    max_bytes = int(0.3 * 192 * 128 / 8)
    plain = codec.encode(text_rgb, max_bytes=max_bytes, effort="fast", min_fidelity=0)
    scores = np.sort(fidelity.measure(text_rgb, np.asarray(codec.decode(plain))).map, axis=None)
    floor = float(scores[3]) + 1e-3
    before = fidelity.measure(text_rgb, np.asarray(codec.decode(plain)), floor)
    guarded = codec.encode(text_rgb, max_bytes=max_bytes, effort="fast", min_fidelity=floor)
    return {"max_bytes": max_bytes, "plain": plain, "guarded": guarded, "floor": floor, "before": before}


@pytest.fixture(scope="module")
def patched_text(text_rgb) -> dict:
    """Without a budget (quality 40): the guard adds a patch layer for the 3 worst blocks."""
    import codec

    plain = codec.encode(text_rgb, quality=40, effort="fast", min_fidelity=0)
    scores = np.sort(fidelity.measure(text_rgb, np.asarray(codec.decode(plain))).map, axis=None)
    floor = float(scores[2]) + 1e-3
    guarded = codec.encode(text_rgb, quality=40, effort="fast", min_fidelity=floor)
    return {"plain": plain, "guarded": guarded, "floor": floor, "worst_before": float(scores[0])}


def test_guard_improves_worst_block_on_text_within_budget(text_rgb, guarded_text) -> None:
    import codec

    plain, guarded, max_bytes = guarded_text["plain"], guarded_text["guarded"], guarded_text["max_bytes"]
    floor, before = guarded_text["floor"], guarded_text["before"]
    assert len(plain) <= max_bytes and len(guarded) <= max_bytes
    assert "fidelity_min" not in codec.info(plain)  # min_fidelity=0: guard off, nothing recorded
    assert before.below == 4
    meta = codec.info(guarded)
    after = fidelity.measure(text_rgb, np.asarray(codec.decode(guarded)), floor)
    keys = ("fidelity_min", "fidelity_mean", "fidelity_floor_met", "fidelity_floor", "guard", "guard_bytes")
    assert all(key in meta for key in keys)
    # the header tells what the decoder shows
    assert meta["fidelity_min"] == pytest.approx(after.min, abs=1e-4)
    assert meta["fidelity_mean"] == pytest.approx(after.mean, abs=1e-4)
    assert meta["fidelity_floor_met"] is after.floor_met
    assert meta["fidelity_floor"] == pytest.approx(floor)
    if after.floor_met:  # it had to act: the file without the guard was below the floor
        assert meta["guard"] in ("patches", "avif") and meta["guard_bytes"] > 0
        assert after.min >= before.min + guard.MIN_GAIN
    else:  # it could not: the best file within the budget, and the header says so
        assert meta["fidelity_floor_met"] is False


def test_guard_without_budget_adds_a_patch_layer(text_rgb, patched_text) -> None:
    import codec

    plain, guarded, floor = patched_text["plain"], patched_text["guarded"], patched_text["floor"]
    meta = codec.info(guarded)
    assert meta["guard"] == "patches" and len(guarded) > len(plain)
    assert meta["patch_layer_bytes"] < meta["guard_bytes"] <= meta["patch_layer_bytes"] + 5
    growth = max(guard.MAX_UNBUDGETED_GROWTH * len(plain), guard.MIN_UNBUDGETED_LAYER)
    assert len(guarded) <= len(plain) + growth + 64
    after = fidelity.measure(text_rgb, np.asarray(codec.decode(guarded)), floor)
    assert after.min > patched_text["worst_before"] + guard.MIN_GAIN
    # the file says how visible its patched windows are: the seam score of this very decode
    layer = patchlayer.parse(container.parse(guarded)[0].patch_layer, text_rgb.shape[1], text_rgb.shape[0])
    decoded = np.asarray(codec.decode(guarded).convert("RGB"))
    assert meta["patch_seams"] == pytest.approx(guard.layer_seams(text_rgb, decoded, layer), abs=1e-4)
    assert meta["patch_seams"] >= 0.0
    assert meta["fidelity_min"] == pytest.approx(after.min, abs=1e-4)


def test_guard_default_floor_records_fidelity_and_plain_decode_matches() -> None:
    import codec
    from codec.models.registry import get_model

    rgb = _photo(64, 96)
    data = codec.encode(rgb, quality=80, effort="fast")  # min_fidelity None: the default floor
    meta = codec.info(data)
    assert meta["fidelity_floor"] == pytest.approx(fidelity.DEFAULT_MIN_FIDELITY)
    assert 0.0 <= meta["fidelity_min"] <= meta["fidelity_mean"] <= 1.0
    plain = codec.encode(rgb, quality=80, effort="fast", min_fidelity=0)
    ours = guard.decode_latent_stream(get_model("taesd"), plain)
    assert np.array_equal(ours, np.asarray(codec.decode(plain)))  # the guard sees what decode shows
    with pytest.raises(UsageError):
        codec.encode(rgb, quality=80, effort="fast", min_fidelity=2.0)
    from codec.tools.bench.synthetic import line_art_case

    art = line_art_case(128, 96)  # white paper: exact matches next to wrong strokes (the NaN case)
    meta = codec.info(codec.encode(art, bpp=0.3, effort="fast"))
    assert np.isfinite(meta["fidelity_min"]) and np.isfinite(meta["fidelity_mean"])


def test_corrupted_patch_section_raises(patched_text) -> None:
    import codec

    header, payload = container.parse(patched_text["guarded"])
    body = header.patch_layer
    assert body is not None
    for bad in (body[:6] + bytes(len(body) - 6), body[: len(body) // 2], b"\x01" + body[1:2] + b"\x7f"):
        header.patch_layer = bad
        with pytest.raises(BitstreamError):
            codec.decode(container.pack(header, payload))
    flipped = bytearray(patched_text["guarded"])
    flipped[-8] ^= 0x10  # inside the section: the CRC catches it
    with pytest.raises(BitstreamError):
        codec.decode(bytes(flipped))


def test_avif_fallback_payload_decodes_and_is_strict(text_rgb) -> None:
    import io
    from types import SimpleNamespace

    import codec

    session = SimpleNamespace(model=SimpleNamespace(model_id=1), rgb=text_rgb, effort="max")
    cand = guard._Guard(session, 0.5, 3000).avif(3000)
    assert cand is not None and cand.kind == "avif" and len(cand.data) <= 3000
    meta = codec.info(cand.data)
    assert meta["payload_kind"] == "avif" and meta["guard"] == "avif"
    assert meta["effort"] == "max"  # the search's effort is recorded, not the header's default "fast"
    assert meta["guard_bytes"] == len(cand.data)
    img = np.asarray(codec.decode(cand.data))
    assert img.shape == text_rgb.shape
    assert meta["fidelity_min"] == pytest.approx(fidelity.measure(text_rgb, img).min, abs=1e-4)
    header, payload = container.parse(cand.data)
    other = io.BytesIO()
    Image.fromarray(text_rgb[:64]).save(other, "AVIF", quality=30)
    for bad in (payload[: len(payload) // 2], b"\0" * 40, other.getvalue()):
        with pytest.raises(BitstreamError):
            codec.decode(container.pack(header, bad))


def test_bench_never_takes_a_patched_file_for_the_plain_one(patched_text) -> None:
    """Only the guard's tags may be stripped before comparing with the plain file; a patch layer changes
    the picture, so the bench must measure the file without the guard separately."""
    from codec.tools.bench.fidelity_bench import _strip_tags

    plain, guarded = patched_text["plain"], patched_text["guarded"]
    assert container.parse(guarded)[0].patch_layer is not None
    assert _strip_tags(guarded) != plain
    header, payload = container.parse(guarded)
    header.patch_layer = None
    assert _strip_tags(container.pack(header, payload)) == plain  # tags only: the same latent


def test_bench_section_compares_with_and_without_guard(tmp_path, monkeypatch, text_rgb, guarded_text) -> None:
    from codec.imageio import load_image
    from codec.metrics import ms_ssim
    from codec.tools.bench import fidelity_bench, synthetic
    from codec.tools.bench.fidelity_hook import BenchContext, fidelity_section

    monkeypatch.setattr(fidelity_bench, "SYNTHETIC_SIZE", (96, 64))
    monkeypatch.setattr(synthetic, "CASES", {k: synthetic.CASES[k] for k in ("text", "faces")})
    monkeypatch.setattr(fidelity, "DEFAULT_MIN_FIDELITY", guarded_text["floor"])  # the fixture's floor
    img = tmp_path / "images" / "text.png"
    img.parent.mkdir()
    Image.fromarray(text_rgb).save(img)
    bpp = guarded_text["max_bytes"] * 8 / (192 * 128)
    stream = tmp_path / "out" / "streams" / "latent" / f"text@{bpp:.4f}.lat"
    stream.parent.mkdir(parents=True)
    stream.write_bytes(guarded_text["guarded"])
    rows = [{"image": "text.png", "codec": "latent", "target_bpp": bpp, "fits": True,
             "max_bytes": guarded_text["max_bytes"]}]
    def metrics(a: np.ndarray, b: np.ndarray) -> dict:
        return {"ms_ssim": ms_ssim(a, b), "lpips": None}

    ctx = BenchContext(images=[img], bpps=[bpp], effort="fast", device=None, out_dir=tmp_path / "out",
                       rows=rows, load=load_image, metrics=metrics, log=lambda msg: None)
    text = fidelity_section(ctx)
    assert "| images with a block below the floor | 1 / 1 |" in text
    assert "| text.png |" in text and "synthetic" in text.lower()
    assert "| text |" in text and "| faces |" in text
    assert (tmp_path / "out" / "fidelity" / f"worst_blocks_{bpp:.2f}bpp.png").is_file()
    assert len(list((tmp_path / "out" / "fidelity" / "synthetic").glob("*.png"))) == 2
    again = fidelity_section(ctx)  # cached: same numbers, no re-encode
    assert again == text
