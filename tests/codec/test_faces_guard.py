"""Identity-checked encoding (issue 12): face/target tags, face protection, monotone quality, target mode."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import codec
from codec import container
from codec.container.header import TAG_FACES_FOUND, TAG_PROTECTION_BYTES, TAG_WORST_IDENTITY_DISTANCE
from codec.errors import BitstreamError, UsageError
from codec.quant import QuantParams

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).resolve().parent / "corpus"


def _header(**kw) -> container.Header:
    qp = QuantParams(8, (-1.0,) * 4, (1.0,) * 4)
    base = dict(model_id=1, width=64, height=48, quant=qp)
    base.update(kw)
    return container.Header(**base)


def _with_metadata(meta: bytes) -> bytes:
    """A valid latent stream whose metadata section is exactly ``meta`` (CRC fixed up)."""
    out = bytearray(b"\x89LAT")
    qp = QuantParams(8, (-1.0,) * 4, (1.0,) * 4)
    plain = container.pack(_header(quant=qp), b"")
    # plain: magic(4) version model flags coder/effort (4) width height (2) chans levels (2) ranges (16)
    head = bytearray(plain[:28])
    head[6] |= 0x08  # metadata flag
    out = head + bytes([len(meta)]) + meta + plain[28:-4]
    return bytes(out) + struct.pack("<I", zlib.crc32(bytes(out)))


# ------------------------------------------------------------------------------ tags: round trip + strict


def test_face_and_target_tags_round_trip_and_info_keys() -> None:
    h = _header(faces_found=2, faces_too_small=1, worst_identity_distance=0.31, worst_landmark_shift=0.02,
                faces_kept=True, text_cer=0.25, target="faithful", target_met=False, protection_bytes=70000,
                worst_small_face_detail=0.75, text_numbers_kept=False, text_words_kept=True)
    data = container.pack(h, b"\x00")
    back, _ = container.parse(data)
    assert (back.faces_found, back.faces_too_small, back.faces_kept) == (2, 1, True)
    assert back.protection_bytes == 70000 and back.target == "faithful" and back.target_met is False
    assert back.worst_identity_distance == pytest.approx(0.31) and back.text_cer == pytest.approx(0.25)
    assert back.worst_small_face_detail == pytest.approx(0.75) and back.text_numbers_kept is False
    assert back.text_words_kept is True
    meta = codec.info(data)
    for key in ("faces_found", "faces_too_small", "worst_identity_distance", "worst_landmark_shift",
                "faces_kept", "text_cer", "target", "target_met", "protection_bytes",
                "worst_small_face_detail", "text_numbers_kept", "text_words_kept"):
        assert key in meta, key
    assert meta["text_checked"] is True
    no_text = codec.info(container.pack(_header(faces_found=0), b"\x00"))
    assert no_text["faces_found"] == 0 and no_text["text_checked"] is False and "faces_kept" not in no_text


def test_old_files_parse_as_before() -> None:
    """A header without the new tags packs to the same bytes, and the corpus' valid files still parse."""
    plain = _header(fidelity_min=0.5, fidelity_mean=0.7, fidelity_floor_met=True, fidelity_floor=0.15)
    data = container.pack(plain, b"\x00")
    assert container.pack(container.parse(data)[0], b"\x00") == data
    assert "faces_found" not in codec.info(data) and "text_checked" not in codec.info(data)
    for name in ("ok_tiny_ctx.bin", "ok_unknown_noncritical_tag.bin"):
        meta = codec.info((CORPUS / name).read_bytes())
        assert "faces_found" not in meta and "target" not in meta


@pytest.mark.parametrize("meta, why", [
    (bytes([TAG_FACES_FOUND, 0]) + b"\x03\x01\x01", "empty uint"),
    (bytes([TAG_FACES_FOUND, 1, 0x80]) + b"\x03\x01\x01", "truncated varint"),
    (bytes([TAG_FACES_FOUND, 2, 0x01, 0x00]), "bytes after the varint"),
    (bytes([TAG_PROTECTION_BYTES, 5, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]), "absurd value > 2^32"),
    (bytes([TAG_PROTECTION_BYTES, 2, 0x80, 0x00]), "non-canonical varint"),
    (bytes([TAG_WORST_IDENTITY_DISTANCE, 3, 0, 0, 0]), "f32 of 3 bytes"),
    (bytes([TAG_WORST_IDENTITY_DISTANCE, 4]) + struct.pack("<f", float("nan")), "NaN"),
    (bytes([TAG_FACES_FOUND, 1, 1, TAG_FACES_FOUND, 1, 2]), "duplicate"),
    (bytes([TAG_FACES_FOUND, 9, 1]), "length past the section"),
])
def test_new_tags_are_strict(meta: bytes, why: str) -> None:
    with pytest.raises(BitstreamError):
        container.parse(_with_metadata(meta))


def test_valid_uint_tag_via_raw_bytes_and_pack_refuses_bad_values() -> None:
    h, _ = container.parse(_with_metadata(bytes([TAG_FACES_FOUND, 1, 3])))
    assert h.faces_found == 3
    for bad in (-1, 2**32, 1.5, True):
        with pytest.raises(ValueError):
            container.pack(_header(faces_found=bad), b"\x00")


# ------------------------------------------------------------------------------------- the encoder


def _astronaut(side: int) -> np.ndarray:
    from skimage import data

    return np.asarray(Image.fromarray(data.astronaut()).resize((side, side), Image.LANCZOS))


@pytest.fixture(scope="module")
def face_rgb() -> np.ndarray:
    """skimage's astronaut, 224×224: one 44-px face (found at upsample 1)."""
    return _astronaut(224)


@pytest.fixture(scope="module")
def face_small_budget(face_rgb) -> bytes:
    return codec.encode(face_rgb, max_bytes=420, effort="fast")


def test_faces_below_the_detector_minimum_are_counted_not_dropped() -> None:
    from codec.encoder import faces

    found = faces.detect(_astronaut(160))  # the face is ~33 px: below the 40-px minimum
    assert found is not None and found.boxes == () and found.too_small == 1


def test_face_photo_at_small_budget_reports_its_face_honestly(face_rgb, face_small_budget) -> None:
    from codec.encoder.faces import IDENTITY_FLOOR, LANDMARK_FLOOR
    from codec.metrics.identity import compare_faces

    data = face_small_budget
    meta = codec.info(data)
    assert len(data) <= 420
    assert meta["faces_found"] == 1 and meta["text_checked"] is False
    decoded = np.asarray(codec.decode(data))
    rep = compare_faces(face_rgb, decoded, probe_small=False)
    # what the file says is what the decode shows (measured, not estimated)
    assert meta["worst_identity_distance"] == pytest.approx(rep.worst_distance, abs=1e-4)
    kept = (rep.all_detected and rep.worst_distance <= IDENTITY_FLOOR
            and rep.worst_landmark_shift <= LANDMARK_FLOOR)
    assert meta["faces_kept"] is kept  # the face is kept, or the file says it is not
    assert meta["protection_bytes"] >= 0


def test_guard_off_writes_no_face_tags(face_rgb) -> None:
    meta = codec.info(codec.encode(face_rgb, max_bytes=600, effort="fast", min_fidelity=0))
    assert "faces_found" not in meta and "fidelity_min" not in meta


@pytest.fixture(scope="module")
def smooth_rgb(kodak_image) -> np.ndarray:
    """A 64×96 crop of kodim03's smooth background: the block floor holds at small budgets."""
    return np.asarray(Image.open(kodak_image(3)).convert("RGB"))[0:64, 0:96].copy()


def test_target_faithful_finds_a_smaller_file_under_the_cap(smooth_rgb) -> None:
    cap = 900
    capped = codec.encode(smooth_rgb, max_bytes=cap, effort="fast")
    data = codec.encode(smooth_rgb, max_bytes=cap, effort="fast", target="faithful")
    meta = codec.info(data)
    assert meta["target"] == "faithful" and meta["target_met"] is True and meta["fidelity_floor_met"]
    assert len(data) < len(capped) <= cap  # the smallest faithful file, not the cap


def test_target_faithful_says_when_the_cap_is_too_small(face_rgb) -> None:
    data = codec.encode(face_rgb, max_bytes=250, effort="fast", target="faithful")
    meta = codec.info(data)
    assert len(data) <= 250 and meta["target"] == "faithful"
    assert meta["target_met"] is False  # 250 bytes cannot keep a 224-px face photo: said, never silent


def test_base_bytes_never_shrinks_below_the_nominal_file(smooth_rgb) -> None:
    """With ``base_bytes`` the search only goes up: a file that meets the target at the nominal budget
    is that file, not the smallest faithful one (which loses quality the floors do not see)."""
    smallest = codec.encode(smooth_rgb, max_bytes=900, effort="fast", target="faithful")
    data = codec.encode(smooth_rgb, max_bytes=900, base_bytes=600, effort="fast", target="faithful")
    meta = codec.info(data)
    assert meta["target_met"] is True
    assert len(smallest) < len(data) <= 600


def test_base_bytes_grows_the_file_when_the_target_needs_it(face_rgb) -> None:
    data = codec.encode(face_rgb, max_bytes=2000, base_bytes=250, effort="fast", target="faithful")
    meta = codec.info(data)
    assert 250 < len(data) <= 2000  # 250 bytes cannot keep the face (above): more bytes were spent
    assert meta["target"] == "faithful" and isinstance(meta["target_met"], bool)


def test_target_usage_errors(face_rgb) -> None:
    with pytest.raises(UsageError):
        codec.encode(face_rgb, max_bytes=500, base_bytes=300, effort="fast")  # base without a target
    with pytest.raises(UsageError):
        codec.encode(face_rgb, max_bytes=500, base_bytes=600, target="faithful", effort="fast")
    with pytest.raises(UsageError):
        codec.encode(face_rgb, target="faithful", effort="fast")  # no cap
    with pytest.raises(UsageError):
        codec.encode(face_rgb, max_bytes=500, target="pretty", effort="fast")
    with pytest.raises(UsageError):
        codec.encode(face_rgb, max_bytes=500, target="faithful", min_fidelity=0, effort="fast")


def test_quality_is_monotone_in_bytes_on_a_small_image(kodak_image) -> None:
    from codec.metrics import lpips, ms_ssim

    rgb = np.asarray(Image.open(kodak_image(23)).convert("RGB"))[96:192, 288:416]
    scores = []
    for budget in (200, 300, 450):
        out = np.asarray(codec.decode(codec.encode(rgb, max_bytes=budget, effort="fast")))
        scores.append(ms_ssim(rgb, out) - lpips(rgb, out))
    assert scores[1] >= scores[0] and scores[2] >= scores[1], scores


def test_cli_target_faithful(tmp_path, smooth_rgb) -> None:
    src, dst = tmp_path / "in.png", tmp_path / "out.lat"
    Image.fromarray(smooth_rgb).save(src)
    run = subprocess.run([sys.executable, "-m", "codec", "encode", str(src), str(dst), "--effort", "fast",
                          "--target", "faithful", "--max-bytes", "500"], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    meta = json.loads(subprocess.run([sys.executable, "-m", "codec", "info", str(dst)], cwd=ROOT,
                                     capture_output=True, text=True, timeout=60).stdout)
    assert dst.stat().st_size <= 500 and meta["target"] == "faithful" and "target_met" in meta


def test_check_text_measures_the_cer_of_the_written_file() -> None:
    """Opt-in text check: the file carries the CER of its own decode on the original's text lines."""
    from PIL import ImageDraw, ImageFont

    from codec.encoder.text import TEXT_CER_FLOOR
    from codec.metrics.legibility import compare_text

    img = Image.new("RGB", (192, 64), (235, 230, 220))
    ImageDraw.Draw(img).text((8, 14), "EXIT 42", fill=(20, 20, 30), font=ImageFont.load_default(size=30))
    rgb = np.asarray(img)
    data = codec.encode(rgb, max_bytes=700, effort="fast", check_text=True)
    meta = codec.info(data)
    assert len(data) <= 700 and meta["text_checked"] is True
    rep = compare_text(rgb, np.asarray(codec.decode(data)))
    assert meta["text_cer"] == pytest.approx(rep.cer, abs=1e-6)
    assert meta["text_cer"] <= TEXT_CER_FLOOR or meta["protection_bytes"] == 0  # protected, or flagged as is


def test_small_faces_are_checked_for_invented_detail_and_the_file_says_so() -> None:
    """A 33-px face (below the identity check) at a tiny budget: the file reports the worst
    invented-detail ratio of the written file's decode, and faces_kept follows the floor."""
    from codec.container.patchlayer import Grid
    from codec.encoder import faces
    from codec.metrics.invented_detail import detail_error

    rgb = _astronaut(160)
    found = faces.detect(rgb)
    assert found is not None and len(found.small) == 1 and found.too_small == 1
    box = found.small[0]
    assert faces.face_blocks(found, Grid(160, 160, 32))  # the small face's blocks are protected too
    data = codec.encode(rgb, max_bytes=500, effort="fast")
    meta = codec.info(data)
    assert len(data) <= 500 and meta["faces_too_small"] == 1
    decoded = np.asarray(codec.decode(data))
    r = detail_error(rgb, decoded, (box.left, box.top, box.right, box.bottom))
    assert meta["worst_small_face_detail"] == pytest.approx(r, abs=1e-4)  # measured on this very file
    assert meta["faces_kept"] is (r <= faces.SMALL_DETAIL_FLOOR)


def _small_face_in_a_wide_photo() -> np.ndarray:
    """768×384 (0.29 MP: above the encoder's own probe limit) with the astronaut shrunk to a 22-px face,
    found only at upsample 2."""
    from skimage import data

    small = np.asarray(Image.fromarray(data.astronaut()).resize((123, 123), Image.Resampling.LANCZOS))
    ramp = np.linspace(60, 200, 768)[None, :, None]
    canvas = np.repeat(ramp, 384, axis=0).repeat(3, axis=2).astype(np.uint8)
    canvas[150:273, 300:423] = small
    return canvas


def test_forced_probe_and_second_look_find_faces_the_default_detection_skips() -> None:
    """Over 0.25 MP the encoder does not probe below 40 px (too slow for the critical path); the
    gallery's second look (`audit_small_faces`) and ``probe_faces=True`` do, and judge the face by the
    invented-detail ratio of a decode."""
    from codec.encoder import faces

    rgb = _small_face_in_a_wide_photo()
    assert faces.probes(768 * 384) is False and faces.probes(768 * 384, True) is True
    assert faces.probes(4000 * 3000, True) is True and faces.smallest_probed_px(4000 * 3000) == 40
    assert faces.probes(5000 * 4000, True) is False  # 20 MP: even the forced probe is too slow
    default = faces.detect(rgb)
    assert default is not None and default.too_small is None and default.boxes == ()
    forced = faces.detect(rgb, probe=True)
    assert forced is not None and forced.too_small == 1 and len(forced.small) == 1

    same = codec.audit_small_faces(rgb, rgb)
    assert same is not None and same.probed and same.found == 1 and same.smallest_px == 20
    assert same.worst_detail == pytest.approx(0.0, abs=1e-6) and not same.redrawn
    box = forced.small[0]
    drawn = rgb.copy()  # features that are not there: strong texture painted over the face
    rng = np.random.default_rng(0)
    patch = drawn[box.top : box.bottom, box.left : box.right]
    drawn[box.top : box.bottom, box.left : box.right] = np.clip(
        patch.astype(int) + rng.integers(-90, 90, patch.shape), 0, 255).astype(np.uint8)
    bad = codec.audit_small_faces(rgb, drawn)
    assert bad is not None and bad.redrawn and bad.worst_detail > faces.SMALL_DETAIL_FLOOR


def test_probe_faces_makes_the_encoder_check_the_small_face() -> None:
    rgb = _small_face_in_a_wide_photo()
    plain = codec.info(codec.encode(rgb, max_bytes=1200, effort="fast"))
    probed = codec.info(codec.encode(rgb, max_bytes=1200, effort="fast", probe_faces=True))
    assert plain["faces_found"] == 0 and "faces_too_small" not in plain
    assert probed["faces_too_small"] == 1 and "worst_small_face_detail" in probed


def test_identity_minimum_is_40_px_whatever_the_detection_level() -> None:
    """Above 2 MP the detector runs without upsampling and reports its finest faces as ~74-px boxes (under
    its nominal 80): they are identity-checked all the same; only faces under 40 px are small faces."""
    from skimage import data

    from codec.encoder import faces

    face = np.asarray(Image.fromarray(data.astronaut()).resize((440, 440), Image.Resampling.LANCZOS))
    canvas = np.full((1100, 2000, 3), 128, np.uint8)
    canvas[300:740, 800:1240] = face
    found = faces.detect(canvas)
    assert found is not None and len(found.boxes) == 1 and found.small == () and found.too_small is None
    assert 40 <= found.boxes[0].size < 80


def test_eye_patch_brings_redrawn_eyes_back() -> None:
    """When only the eyes fail (an iris redrawn, `FaceVerdict.only_eyes_failed`) the face guard first tries
    a patch layer on the eyes' windows alone: it covers the eyes (not the face box), fits the budget and
    brings the eyes' shape back toward the original's."""
    from skimage import data

    from codec.encoder import faces as face_check
    from codec.encoder import guard, ratecontrol
    from codec.encoder.session import EncodeSession
    from codec.models import get_model

    crop = Image.fromarray(np.ascontiguousarray(data.astronaut()[0:256, 96:352]))
    rgb = np.asarray(crop.resize((512, 512), Image.LANCZOS))  # eyes ≈ 34 px: over SHAPE_MIN_EYE_PX
    session = EncodeSession(get_model("taesd"), rgb, "fast")
    faces = session.faces()
    assert faces is not None and len(faces.boxes) == 1
    budget = 4000
    setting = ratecontrol.search(lambda st: len(session.stream(st, search=True)), 3000)
    g = guard._Guard(session, guard.resolve_floor(None), budget)
    chosen = g.evaluate(session.stream(setting))[0]
    fg = guard._FaceGuard(g, faces)
    plain = fg.verdict(chosen)
    assert plain.worst_eye_shape is not None
    eyes = set(face_check.eye_blocks(rgb, faces, g.grid))
    assert eyes and len(eyes) < len(fg.blocks) / 3
    cands = list(fg.eye_candidates(chosen))
    assert cands
    for c in cands:
        assert c.kind == "patches" and c.layer is not None and set(c.layer.indices) == eyes
        assert g.fits(c.data)
    best = min(fg.verdict(c).worst_eye_shape for c in cands)
    assert best < 0.7 * plain.worst_eye_shape
