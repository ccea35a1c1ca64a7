"""Region latents (issue 12): a face coded once more as a small latent — format, strict parsing, decode,
cost, and the guard building one."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import codec
from codec.container import cost, regionlayer
from codec.container.header import pack, parse
from codec.container.regionlayer import Region, RegionLayer
from codec.errors import BitstreamError, UnsupportedVersionError
from codec.options import UNLIMITED_DECODE

W, H = 96, 64
BOX = (32, 16, 48, 40)  # x, y, w, h


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    from skimage import data

    return np.asarray(Image.fromarray(data.astronaut()).resize((W, H), Image.LANCZOS))


@pytest.fixture(scope="module")
def base_stream(image) -> bytes:
    return codec.encode(image, max_bytes=300, effort="fast", min_fidelity=0)


@pytest.fixture(scope="module")
def region_stream(image) -> bytes:
    x, y, w, h = BOX
    return codec.encode(np.ascontiguousarray(image[y : y + h, x : x + w]), max_bytes=400, effort="fast",
                        min_fidelity=0)


def _with_layer(base: bytes, body: bytes) -> bytes:
    header, payload = parse(base)
    header.region_layer = body
    return pack(header, payload)


def _layer(stream: bytes, feather: int = 4) -> RegionLayer:
    return RegionLayer((Region(*BOX, feather, stream),))


def test_round_trip_decode_and_info(base_stream, region_stream) -> None:
    body = regionlayer.pack(_layer(region_stream), W, H)
    data = _with_layer(base_stream, body)
    back = regionlayer.parse(parse(data)[0].region_layer, W, H, 1)
    assert back == _layer(region_stream)
    plain = np.asarray(codec.decode(base_stream))
    region = np.asarray(codec.decode(region_stream))
    out = np.asarray(codec.decode(data))
    x, y, w, h = BOX
    # inside the feather the region's own decode, outside the box the base's
    assert np.array_equal(out[y + 4 : y + h - 4, x + 4 : x + w - 4], region[4:-4, 4:-4])
    assert np.array_equal(out[:, :x], plain[:, :x]) and np.array_equal(out[y + h :], plain[y + h :])
    meta = codec.info(data)
    assert meta["region_layer_bytes"] == len(body)
    assert meta["regions"] == [{"box": list(BOX), "bytes": len(region_stream)}]


def test_feather_blends_only_edges_inside_the_image() -> None:
    m = regionlayer.blend_mask(Region(0, 10, 20, 20, 4, b"x"), 40, 40)[..., 0]
    assert m[10, 0] == 1.0  # left edge on the image border: no ramp
    assert m[0, 10] < 0.2 and m[-1, 10] < 0.2 and m[10, -1] < 0.2  # top, bottom, right edges ramp
    assert m[10, 10] == 1.0


def test_cost_counts_the_region_decode(base_stream, region_stream) -> None:
    data = _with_layer(base_stream, regionlayer.pack(_layer(region_stream), W, H))
    with_regions = cost.estimate(*(lambda h, p: (h, len(p)))(*parse(data)))
    plain = cost.estimate(*(lambda h, p: (h, len(p)))(*parse(base_stream)))
    assert with_regions.work > plain.work and with_regions.passes == plain.passes + 1


def _bad_bodies(region_stream: bytes) -> list[tuple[bytes, str]]:
    good = regionlayer.pack(_layer(region_stream), W, H)
    x, y, w, h = BOX
    other = codec.encode(np.zeros((h, w + 8, 3), np.uint8), max_bytes=200, effort="fast", min_fidelity=0)
    header, payload = parse(region_stream)
    header.patch_layer = b"\x01"  # a nested stream with a section
    nested = pack(header, payload)

    def body(*fields: int, stream: bytes = region_stream, feather: int = 4, version: int = 0) -> bytes:
        from codec.container.wire import varint_bytes

        out = bytes([version]) + varint_bytes(1)
        for v in fields:
            out += varint_bytes(v)
        return out + bytes([feather]) + varint_bytes(len(stream)) + stream

    return [
        (good[:-1], "truncated stream"),
        (good + b"\x00", "trailing byte"),
        (b"\x00\x00", "no regions"),
        (bytes([0, 9]) + good[2:], "too many regions"),
        (body(x, y, w, h, version=1), "unknown version"),
        (body(60, y, w, h), "box outside the image"),
        (body(x, y, 8, h), "box side under the minimum"),
        (body(x, y, w, h, feather=40), "feather over a quarter"),
        (body(x, y, w + 8, h), "stream size differs from its box"),
        (body(x, y, w + 8, h, stream=other[:-3]), "nested stream corrupt"),
        (body(x, y, w, h, stream=nested), "nested stream with a section"),
        (body(0, 0, W, H), "box over the area share"),
    ]


def test_strict_parsing_refuses_every_bad_body(region_stream) -> None:
    for body, why in _bad_bodies(region_stream):
        with pytest.raises(BitstreamError):
            regionlayer.parse(body, W, H, 1)
            pytest.fail(why)
    with pytest.raises(UnsupportedVersionError):
        regionlayer.parse(bytes([1]) + regionlayer.pack(_layer(region_stream), W, H)[1:], W, H, 1)
    with pytest.raises(BitstreamError):  # another model's latent
        regionlayer.parse(regionlayer.pack(_layer(region_stream), W, H), W, H, 2)


def test_every_truncation_of_a_file_with_regions_is_a_typed_error(base_stream, region_stream) -> None:
    data = _with_layer(base_stream, regionlayer.pack(_layer(region_stream), W, H))
    for cut in range(len(data) - len(region_stream) - 12, len(data)):
        with pytest.raises(BitstreamError):
            codec.decode(data[:cut])


def test_a_corrupt_layer_in_a_valid_container_fails_before_decoding(base_stream, region_stream) -> None:
    from codec.decoder import decode_rgb

    body = regionlayer.pack(_layer(region_stream), W, H)
    data = _with_layer(base_stream, body[:-5] + b"\xff" * 5)  # container CRC fixed by pack: body is bad
    with pytest.raises(BitstreamError):
        decode_rgb(data, limits=UNLIMITED_DECODE)


def test_pack_refuses_what_parse_would() -> None:
    with pytest.raises(ValueError):
        regionlayer.pack(RegionLayer(()), W, H)
    with pytest.raises(ValueError):
        regionlayer.pack(RegionLayer((Region(90, 0, 16, 16, 2, b"x"),)), W, H)


def test_region_boxes_grow_snap_and_merge() -> None:
    from codec.encoder.regions import boxes
    from codec.metrics.identity import FaceBox

    faces = [FaceBox(100, 100, 160, 160, 1.0, 1), FaceBox(150, 110, 200, 170, 1.0, 1),
             FaceBox(10, 300, 60, 350, 1.0, 1)]
    out = boxes(faces, 400, 400)
    assert len(out) == 2  # the first two overlap once grown: one region
    for x, y, w, h in out:
        assert x % 8 == 0 and y % 8 == 0 and (w % 8 == 0 or x + w == 400) and (h % 8 == 0 or y + h == 400)
    big = out[0]
    assert big[0] <= 100 - 21 and big[0] + big[2] >= 200 + 17


def test_guard_region_candidate_is_a_valid_file(image) -> None:
    """The face guard's region candidate fits the budget and decodes through `codec.decode` to exactly
    what the guard measured."""
    from codec.encoder.faces import OriginalFaces
    from codec.encoder.guard import _FaceGuard, _Guard
    from codec.encoder.session import EncodeSession
    from codec.metrics.fidelity import DEFAULT_MIN_FIDELITY
    from codec.metrics.identity import FaceBox
    from codec.models.registry import get_model

    session = EncodeSession(get_model("taesd"), image, "fast")
    g = _Guard(session, DEFAULT_MIN_FIDELITY, 900)
    fg = _FaceGuard(g, OriginalFaces((FaceBox(40, 20, 72, 52, 1.0, 1),), 0))
    fg.chosen = g.evaluate(codec.encode(image, max_bytes=300, effort="fast", min_fidelity=0))[0]
    cands = list(fg.region_candidates())
    assert len(cands) == 1
    cand = cands[0]
    assert cand.kind == "regions" and len(cand.data) <= 900
    assert np.array_equal(np.asarray(codec.decode(cand.data)), cand.decoded)
    meta = codec.info(cand.data)
    assert meta["guard"] == "regions" and len(meta["regions"]) == 1


def test_flatten_boxes_makes_the_inside_of_a_box_one_value_per_channel() -> None:
    from codec.encoder.regions import MASK_INSET, flatten_boxes

    rng = np.random.default_rng(0)
    z = rng.normal(size=(4, 20, 30)).astype(np.float32)
    out = flatten_boxes(z, [(80, 40, 96, 80)], 1.0, 8)  # cells x 10..22, y 5..15
    inner = out[:, 5 + MASK_INSET : 15 - MASK_INSET, 10 + MASK_INSET : 22 - MASK_INSET]
    assert np.ptp(inner, axis=(1, 2)).max() == 0
    keep = np.ones((20, 30), bool)
    keep[5 + MASK_INSET : 15 - MASK_INSET, 10 + MASK_INSET : 22 - MASK_INSET] = False
    assert np.array_equal(out[:, keep], z[:, keep])
    # at half scale a cell is 16 px: the same box is too small to flatten (nothing inside the inset)…
    assert np.array_equal(flatten_boxes(z, [(80, 40, 96, 80)], 0.5, 8), z)
    half = flatten_boxes(z, [(64, 32, 192, 128)], 0.5, 8)  # … a larger one: cells x 4..16, y 2..10
    inner = half[:, 2 + MASK_INSET : 10 - MASK_INSET, 4 + MASK_INSET : 16 - MASK_INSET]
    assert np.ptp(inner, axis=(1, 2)).max() == 0


def test_quality_mode_protects_a_small_face_with_a_region_latent() -> None:
    """Without a byte budget the face is coded as a 2× region latent (not a patch layer), and what the
    file says about the face is what its decode shows."""
    from skimage import data

    from codec.metrics.identity import compare_faces

    rgb = np.asarray(Image.fromarray(data.astronaut()).resize((256, 256), Image.LANCZOS))
    out = codec.encode(rgb, quality=5, effort="fast")
    meta = codec.info(out)
    assert meta["faces_found"] == 1 and meta["guard"] == "regions" and len(meta["regions"]) == 1
    rep = compare_faces(rgb, np.asarray(codec.decode(out)), probe_small=False)
    assert meta["worst_identity_distance"] == pytest.approx(rep.worst_distance, abs=1e-4)


def test_mutated_region_bodies_only_raise_bitstream_errors(region_stream) -> None:
    """Fuzz: byte flips, truncations and insertions anywhere in a valid body (incl. the nested
    stream) either parse or raise `BitstreamError`; `codec.info` reports an invalid layer, never crashes."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    good = regionlayer.pack(_layer(region_stream), W, H)

    @settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(pos=st.integers(0, len(good) - 1), value=st.integers(0, 255),
           op=st.sampled_from(["flip", "cut", "insert"]))
    def case(pos: int, value: int, op: str) -> None:
        body = {"flip": good[:pos] + bytes([value]) + good[pos + 1 :], "cut": good[:pos],
                "insert": good[:pos] + bytes([value]) + good[pos:]}[op]
        try:
            layer = regionlayer.parse(body, W, H, 1)
        except BitstreamError:
            return
        assert all(r.x + r.w <= W and r.y + r.h <= H for r in layer.regions)

    case()
    # a file whose region body is garbage: info says so
    broken = _with_layer(codec.encode(np.zeros((H, W, 3), np.uint8), max_bytes=300, effort="fast",
                                      min_fidelity=0), good[:-7])
    assert str(codec.info(broken)["regions"]).startswith("invalid")


def test_large_photos_protect_faces_without_region_latents(monkeypatch) -> None:
    """Above `guard.LARGE_PIXELS` no region latent is tried (a base latent of its own is a full encoder
    pass and decode of the photo); the face is protected by the patch layers instead, and the file still
    says what its decode shows."""
    from skimage import data

    from codec.encoder import guard

    rgb = np.asarray(Image.fromarray(data.astronaut()).resize((256, 256), Image.LANCZOS))
    monkeypatch.setattr(guard, "LARGE_PIXELS", 256 * 256 - 1)
    out = codec.encode(rgb, quality=5, effort="fast")
    meta = codec.info(out)
    assert meta["faces_found"] == 1 and "regions" not in meta and "regions" not in meta["guard"]


def test_quality_of_large_photos_is_measured_on_a_shrunk_view(monkeypatch) -> None:
    """`EncodeSession.quality_of` above `QUALITY_MAX_PIXELS`: MS-SSIM − LPIPS of both images shrunk to
    the cap (the original's copy made once per session); at or under it, the full-size pair."""
    from codec.encoder import session as session_mod
    from codec.imageio import resize_rgb
    from codec.metrics import lpips, ms_ssim
    from codec.models.registry import get_model

    rng = np.random.default_rng(5)
    rgb = np.asarray(Image.fromarray(rng.integers(0, 255, (96, 128, 3), np.uint8)).resize((256, 192)))
    decoded = np.clip(rgb.astype(np.int16) + rng.integers(-20, 20, rgb.shape), 0, 255).astype(np.uint8)
    sess = session_mod.EncodeSession(get_model("taesd"), rgb, "fast")
    full = ms_ssim(rgb, decoded) - lpips(rgb, decoded)
    assert sess.quality_of(decoded) == pytest.approx(full, abs=1e-6)
    monkeypatch.setattr(session_mod, "QUALITY_MAX_PIXELS", 128 * 96)
    small = resize_rgb(rgb, 128, 96), resize_rgb(decoded, 128, 96)
    expected = ms_ssim(*small) - lpips(*small)
    assert sess.quality_of(decoded) == pytest.approx(expected, abs=1e-6)
    assert sess._memo["quality_size"] == (128, 96) and abs(expected - full) > 1e-4


def test_face_fallback_keeps_the_face_at_a_fixed_budget_and_never_picks_garbled_patches() -> None:
    """`_FaceGuard.fallback` (nothing keeps the face within `FACE_MAX_QUALITY_LOSS`): at a fixed budget the
    face-keeping file that loses least (≤ `FACE_FALLBACK_MAX_LOSS`; not when only the eyes failed) wins; in
    a target search (which grows the budget instead) it does not; a patch layer coded below
    `MIN_PATCH_QUALITY` that leaves the face changed is never the least bad file. Qualities are measured
    (MS-SSIM − LPIPS of blurred decodes)."""
    from PIL import ImageFilter
    from skimage import data

    from codec.container.patchlayer import PatchLayer
    from codec.encoder import guard
    from codec.encoder.faces import FaceVerdict, OriginalFaces
    from codec.encoder.session import EncodeSession
    from codec.metrics.fidelity import DEFAULT_MIN_FIDELITY, FidelityReport
    from codec.metrics.identity import FaceBox
    from codec.models.registry import get_model

    rgb = np.asarray(Image.fromarray(data.astronaut()).resize((128, 128), Image.LANCZOS))
    g = guard._Guard(EncodeSession(get_model("taesd"), rgb, "fast"), DEFAULT_MIN_FIDELITY, 2000)
    rep = FidelityReport(0.5, 0.8, np.ones((4, 4)), 0.15, True, (0, 0, 32, 32), 0, 16)

    def cand(sigma: float, kind: str, tag: bytes, layer: PatchLayer | None = None) -> guard.Candidate:
        dec = np.asarray(Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(float(sigma))))
        return guard.Candidate(tag, rep, kind, decoded=dec, layer=layer)

    def verdict(distance: float) -> FaceVerdict:
        return FaceVerdict(1, 0, distance, 0.01, True)

    plain = cand(0.6, "plain", b"plain")
    ref = g.quality(plain)
    # a blur whose loss lands between the two limits (measured, not assumed)
    sigma = next(s for s in np.arange(0.64, 1.2, 0.02)
                 if guard.FACE_MAX_QUALITY_LOSS < ref - g.quality(cand(s, "regions", b"r%f" % s))
                 < guard.FACE_FALLBACK_MAX_LOSS)
    region = cand(sigma, "regions", b"r%f" % sigma)
    garbled = cand(0.6, "patches", b"patches",
                   PatchLayer("webp", 32, (0,), 1, b"", quality=guard.MIN_PATCH_QUALITY - 1))
    first = verdict(0.60)
    tried = [(plain, first), (region, verdict(0.20)), (garbled, verdict(0.40))]
    faces = OriginalFaces((FaceBox(40, 20, 72, 52, 1.0, 1),), 0)

    fixed = guard._FaceGuard(g, faces, fixed_budget=True)
    assert fixed.fallback(plain, first, tried)[0] is region
    # a face kept but for its eyes (an iris redrawn) is not worth that loss: the flagged file stays
    eyes = FaceVerdict(1, 0, 0.20, 0.01, True, worst_eye_shape=2 * guard.face_check.EYE_SHAPE_FLOOR)
    assert eyes.only_eyes_failed
    assert fixed.fallback(plain, eyes, [(plain, eyes), (region, verdict(0.20))])[0] is plain
    # a garbled layer that "keeps" the face (seams across it) is not taken, even at a smaller loss
    seams = cand(0.6, "patches", b"patches-kept",
                 PatchLayer("webp", 32, (0,), 1, b"", quality=guard.MIN_PATCH_QUALITY - 1))
    assert fixed.fallback(plain, first, [*tried, (seams, verdict(0.25))])[0] is region
    searched = guard._FaceGuard(g, faces, fixed_budget=False)
    # the target search's guard: the region costs too much, and the garbled patches are not "less bad"
    assert searched.fallback(plain, first, tried)[0] is plain
    # the same garbled layer coded at the lowest acceptable quality would have been the least bad file
    ok_layer = cand(0.6, "patches", b"patches-ok",
                    PatchLayer("webp", 32, (0,), 1, b"", quality=guard.MIN_PATCH_QUALITY))
    assert searched.fallback(plain, first, [*tried, (ok_layer, verdict(0.40))])[0] is ok_layer
    # … but where the unprotected face is another person (> 0.6) and the garbled layer's is not, seams
    # on the right face beat a mask
    gone = verdict(0.72)
    assert searched.fallback(plain, gone, [(plain, gone), (garbled, verdict(0.36))])[0] is garbled


def test_a_face_patch_layer_with_visible_seams_does_not_keep_the_face() -> None:
    """`SEAM_FLOOR`: a patch layer coded at a quality above `MIN_PATCH_QUALITY` whose windows step
    against the decode around them (squares across the face) is not taken, in the main path or the
    fallback — unless the unprotected face is another person and the layer's is not."""
    from skimage import data

    from codec.container.patchlayer import PatchLayer
    from codec.encoder import guard
    from codec.encoder.faces import FaceVerdict, OriginalFaces
    from codec.encoder.session import EncodeSession
    from codec.metrics.fidelity import DEFAULT_MIN_FIDELITY, FidelityReport
    from codec.metrics.identity import FaceBox
    from codec.models.registry import get_model

    rgb = np.asarray(Image.fromarray(data.astronaut()).resize((128, 128), Image.LANCZOS))
    g = guard._Guard(EncodeSession(get_model("taesd"), rgb, "fast"), DEFAULT_MIN_FIDELITY, 2000)
    rep = FidelityReport(0.5, 0.8, np.ones((4, 4)), 0.15, True, (0, 0, 32, 32), 0, 16)
    windows = (5, 6, 9, 10)  # the 2×2 windows in the middle of the 4×4 grid
    stepped = rgb.astype(np.int16).copy()
    for i in windows:
        x, y, w, h = g.grid.rect(i)
        stepped[y:y + h, x:x + w] += 24 if (i % 2) else -24  # squares off the picture around them
    stepped = np.clip(stepped, 0, 255).astype(np.uint8)
    layer = PatchLayer("avif", 32, windows, 2, b"", quality=60)
    seamy = guard.Candidate(b"seamy", rep, "patches", decoded=stepped, layer=layer)
    clean = guard.Candidate(b"clean", rep, "patches", decoded=rgb.copy(), layer=layer)
    plain = guard.Candidate(b"plain", rep, "plain", decoded=rgb.copy())
    assert g.seams(seamy) > guard.SEAM_FLOOR
    assert g.seams(clean) < 1.0 and g.seams(plain) == 0.0

    faces = OriginalFaces((FaceBox(40, 20, 72, 52, 1.0, 1),), 0)
    fg = guard._FaceGuard(g, faces, fixed_budget=True)
    assert fg.seamy(seamy) and not fg.seamy(clean)

    def verdict(distance: float) -> FaceVerdict:
        return FaceVerdict(1, 0, distance, 0.01, True)

    first = verdict(0.45)
    # the only face-keeping file has seams: the unprotected file stays (and says the face changed)
    assert fg.fallback(plain, first, [(plain, first), (seamy, verdict(0.2))])[0] is plain
    # the face gone (another person) without it: the seams on the right face are the lesser harm
    gone = verdict(0.72)
    assert fg.fallback(plain, gone, [(plain, gone), (seamy, verdict(0.3))])[0] is seamy
