"""Face feature appearance (codec.metrics.face_features) and its floors in the face check
(codec.encoder.faces), on skimage's astronaut (Eileen Collins, NASA, public domain)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from codec.encoder import faces as face_check
from codec.metrics import face_features as ff
from codec.metrics import identity as idm


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[0:256, 96:352])


@pytest.fixture(scope="module")
def face(astronaut: np.ndarray) -> tuple[idm.FaceBox, np.ndarray]:
    (box,) = idm.detect_faces(astronaut)
    return box, idm.face_landmarks(astronaut, box)


@pytest.fixture(scope="module")
def astronaut_big(astronaut: np.ndarray) -> np.ndarray:
    """The crop at 2× (512×512): eyes ≈ 34 px, over `ff.SHAPE_MIN_EYE_PX` (eye_shape is measured)."""
    return np.asarray(Image.fromarray(astronaut).resize((512, 512), Image.Resampling.LANCZOS))


@pytest.fixture(scope="module")
def face_big(astronaut_big: np.ndarray) -> tuple[idm.FaceBox, np.ndarray]:
    (box,) = idm.detect_faces(astronaut_big)
    return box, idm.face_landmarks(astronaut_big, box)


def _verdict(original: np.ndarray, decoded: np.ndarray, box: idm.FaceBox) -> face_check.FaceVerdict:
    return face_check.check(original, decoded, face_check.OriginalFaces((box,), 0))


def test_lab_round_trip_and_reference_colours() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (8, 8, 3)).astype(np.uint8)
    assert np.abs(ff.lab_to_srgb(ff.srgb_to_lab(rgb)) - rgb).max() < 0.01
    white = ff.srgb_to_lab(np.array([[255, 255, 255]], np.uint8))[0]
    assert white == pytest.approx([100.0, 0.0, 0.0], abs=0.05)


def test_regions_follow_the_landmarks(face: tuple[idm.FaceBox, np.ndarray]) -> None:
    box, lm = face
    reg = ff.feature_regions(lm)
    for iris, (a, b) in zip(reg.irises, ((0, 1), (2, 3)), strict=True):
        assert (iris.cx, iris.cy) == pytest.approx(tuple((lm[a] + lm[b]) / 2))
    # The mouth lies below the nose base, inside the face box.
    assert lm[4][1] < reg.mouth.cy < box.bottom
    assert box.left < reg.mouth.cx < box.right


def test_same_image_has_zero_feature_deltas(astronaut_big: np.ndarray) -> None:
    (f,) = idm.compare_faces(astronaut_big, astronaut_big.copy(), probe_small=False).measured
    assert f.features is not None
    for key in ff.FEATURE_KEYS:
        assert getattr(f.features, key) == pytest.approx(0.0, abs=1e-9), key
    rep = idm.compare_faces(astronaut_big, astronaut_big.copy(), probe_small=False)
    assert set(rep.to_dict()["worst_features"]) == set(ff.FEATURE_KEYS)


def test_mild_jpeg_passes_the_floors(astronaut: np.ndarray, face: tuple[idm.FaceBox, np.ndarray]) -> None:
    buf = io.BytesIO()
    Image.fromarray(astronaut).save(buf, "JPEG", quality=60)
    jpeg = np.asarray(Image.open(buf).convert("RGB"))
    v = _verdict(astronaut, jpeg, face[0])
    assert v.worst_eye_delta_e is not None and 0 < v.worst_eye_delta_e < face_check.EYE_DELTA_E_FLOOR
    assert v.features_kept and v.kept


@pytest.mark.parametrize("failure", ["iris_recolour", "eyes_black", "mouth_smeared"])
def test_synthetic_failures_are_over_the_floors(astronaut: np.ndarray, face: tuple[idm.FaceBox, np.ndarray],
                                                failure: str) -> None:
    box, lm = face
    make = {"iris_recolour": ff.recolour_irises, "eyes_black": ff.fill_eyes_black,
            "mouth_smeared": ff.smear_mouth}[failure]
    bad = make(astronaut, lm)
    v = _verdict(astronaut, bad, box)
    assert not v.features_kept and not v.kept and v.badness > 0
    if failure == "iris_recolour":
        # the blind spot this metric exists for: identity and landmarks still pass, the colour does not
        assert v.worst_distance is not None and v.worst_distance <= face_check.IDENTITY_FLOOR
        assert v.worst_eye_delta_e is not None and v.worst_eye_delta_e > face_check.EYE_DELTA_E_FLOOR
    elif failure == "eyes_black":
        assert v.worst_eye_dark is not None and v.worst_eye_dark > face_check.EYE_DARK_FLOOR
    else:
        assert v.worst_mouth_structure is not None
        assert v.worst_mouth_structure > face_check.MOUTH_STRUCTURE_FLOOR


def _paint_irises(img: np.ndarray, lm: np.ndarray, ab: tuple[float, float]) -> np.ndarray:
    """The located iris discs (grown by half) given the mean a*b* ``ab``, each pixel's lightness and
    a third of its a*b* texture around the disc's mean kept: a grey-ish iris of a chosen colour."""
    reg = ff.feature_regions(lm)
    lab = ff.srgb_to_lab(img)
    out = np.asarray(img, np.float64).copy()
    for iris, ew in zip(reg.irises, reg.eye_width, strict=True):
        found = ff.locate_iris(lab, iris, ew)
        disc = ff.Region(found.cx, found.cy, 1.5 * found.ax, 1.5 * found.ay)  # covers the measured disc
        x0, y0, x1, y1 = disc.bounds(*img.shape[:2])
        m = disc.mask(x0, y0, x1, y1)
        sub = lab[y0:y1, x0:x1].copy()
        mean = (sub[..., 1:] * m[..., None]).sum((0, 1)) / m.sum()
        sub[..., 1:] = 0.3 * (sub[..., 1:] - mean) + np.asarray(ab)
        new = ff.lab_to_srgb(sub)
        out[y0:y1, x0:x1] = out[y0:y1, x0:x1] * (1 - m[..., None]) + new * m[..., None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def test_low_chroma_iris_turned_brown_fails(astronaut: np.ndarray,
                                            face: tuple[idm.FaceBox, np.ndarray]) -> None:
    """Blue-grey irises (painted C* ≈ 5; ≈ 3 measured on these 17-px eyes) decoded brown-grey: the disc's
    ΔE stays under its floor and identity is unchanged, but the iris pixels' hue turns (≈ 130° here) →
    rejected; the same image passes."""
    box, lm = face
    blue_grey = _paint_irises(astronaut, lm, (-2.0, -5.0))
    brown_grey = _paint_irises(astronaut, lm, (2.5, 4.5))
    same = _verdict(blue_grey, blue_grey.copy(), box)
    assert same.kept and same.worst_eye_hue == pytest.approx(0.0, abs=1e-6)
    v = _verdict(blue_grey, brown_grey, box)
    assert v.worst_distance is not None and v.worst_distance <= face_check.IDENTITY_FLOOR
    assert v.worst_eye_delta_e is not None and v.worst_eye_delta_e < face_check.EYE_DELTA_E_FLOOR
    assert v.worst_eye_hue is not None and v.worst_eye_hue > face_check.EYE_HUE_FLOOR
    assert not v.features_kept and not v.kept


@pytest.mark.parametrize("failure", ["iris_reshaped", "gaze_turned"])
def test_redrawn_irises_fail_eye_shape_where_identity_is_blind(astronaut_big: np.ndarray,
                                                                face_big: tuple[idm.FaceBox, np.ndarray],
                                                                failure: str) -> None:
    astronaut = astronaut_big
    box, lm = face_big
    make = {"iris_reshaped": ff.reshape_irises, "gaze_turned": ff.turn_gaze}[failure]
    bad = make(astronaut, lm)
    assert np.abs(bad.astype(int) - astronaut).max() > 40  # drawn at full contrast, nothing softened
    v = _verdict(astronaut, bad, box)
    assert v.worst_distance is not None and v.worst_distance <= face_check.IDENTITY_FLOOR
    assert v.worst_eye_shape is not None and v.worst_eye_shape > face_check.EYE_SHAPE_FLOOR
    assert not v.kept and v.only_eyes_failed


def test_eye_shape_forgives_a_blur_that_eye_structure_does_not(
        astronaut: np.ndarray, astronaut_big: np.ndarray, face: tuple[idm.FaceBox, np.ndarray],
        face_big: tuple[idm.FaceBox, np.ndarray]) -> None:
    from PIL import ImageFilter

    # small eyes (17 px) are not measured: a codec's blur there is not told apart from a redrawn iris
    assert ff.compare_features(astronaut, ff.reshape_irises(astronaut, face[1]), face[1]).eye_shape is None
    astronaut = astronaut_big
    _box, lm = face_big
    soft = np.asarray(Image.fromarray(astronaut).filter(ImageFilter.GaussianBlur(1.5)))
    blurred = ff.compare_features(astronaut, soft, lm)
    reshaped = ff.compare_features(astronaut, ff.reshape_irises(astronaut, lm), lm)
    assert blurred.eye_shape is not None and reshaped.eye_shape is not None
    assert blurred.eye_shape < face_check.EYE_SHAPE_FLOOR < reshaped.eye_shape
    # the unblurred structure number ranks them the other way round: the blind spot eye_shape closes
    assert blurred.eye_structure is not None and reshaped.eye_structure is not None
    assert blurred.eye_structure / blurred.eye_shape > reshaped.eye_structure / reshaped.eye_shape


def test_eye_blocks_cover_the_eyes_not_the_face(astronaut: np.ndarray,
                                                face: tuple[idm.FaceBox, np.ndarray]) -> None:
    from codec.container.patchlayer import Grid

    box, lm = face
    from codec.metrics.fidelity import BLOCK

    grid = Grid(astronaut.shape[0], astronaut.shape[1], BLOCK)
    faces = face_check.OriginalFaces((box,), 0)
    eyes = face_check.eye_blocks(astronaut, faces, grid)
    whole = face_check.face_blocks(faces, grid)
    assert eyes and set(eyes) <= set(whole) and len(eyes) < len(whole) / 2
    ys, xs = grid.origins()
    for eye in ff.feature_regions(lm).eyes:
        r = next(i for i, y in enumerate(ys) if y <= eye.cy < y + grid.bh)
        c = next(j for j, x in enumerate(xs) if x <= eye.cx < x + grid.bw)
        assert r * len(xs) + c in eyes
