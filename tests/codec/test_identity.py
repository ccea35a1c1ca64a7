"""Face identity metric (codec.metrics.identity) on real dlib models and freely licensed faces.

Faces: skimage's astronaut (Eileen Collins, NASA, public domain) and matplotlib's sample photo of
Grace Hopper (US Navy, public domain) — two different people that ship inside registry packages.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageFilter

from codec.errors import InputImageError, SetupError
from codec.metrics import identity as idm


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[0:256, 96:352])  # 256×256 around her face


@pytest.fixture(scope="module")
def hopper() -> np.ndarray:
    import matplotlib.cbook as cbook

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        img = Image.open(f).convert("RGB")
    return np.asarray(img.resize((256, 300), Image.Resampling.LANCZOS))


def test_import_does_not_load_dlib() -> None:
    code = "import sys, codec.metrics.identity; assert 'dlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_same_image_is_distance_zero(astronaut: np.ndarray) -> None:
    rep = idm.compare_faces(astronaut, astronaut.copy())
    assert len(rep.measured) == 1
    face = rep.measured[0]
    assert face.box.size >= 64
    assert face.identity_distance == pytest.approx(0.0, abs=1e-6)
    assert face.landmark_shift == pytest.approx(0.0, abs=1e-6)
    assert face.detected_in_decoded is True and face.same_person is True
    assert 20 < face.inter_ocular_px < 80
    assert rep.all_detected and rep.worst_distance == pytest.approx(0.0, abs=1e-6)


def test_different_person_is_far(astronaut: np.ndarray, hopper: np.ndarray) -> None:
    (a,) = idm.detect_faces(astronaut)
    (h,) = idm.detect_faces(hopper)
    assert idm.embedding_distance(astronaut, a, hopper, h) > 0.6
    # A mirrored, shifted copy of the same person stays well inside dlib's threshold.
    mirrored = np.ascontiguousarray(astronaut[6:, ::-1])
    (m,) = idm.detect_faces(mirrored)
    assert idm.embedding_distance(astronaut, a, mirrored, m) < 0.4


@pytest.mark.parametrize("damage", ["blur", "blocks"])
def test_destroyed_face_is_flagged(astronaut: np.ndarray, damage: str) -> None:
    img = Image.fromarray(astronaut)
    if damage == "blur":
        bad = np.asarray(img.filter(ImageFilter.GaussianBlur(8)))
    else:
        small = img.resize((16, 16), Image.Resampling.BOX)
        bad = np.asarray(small.resize((256, 256), Image.Resampling.NEAREST))
    (face,) = idm.compare_faces(astronaut, bad, probe_small=False).measured
    assert face.identity_distance > 0.6 or not face.detected_in_decoded
    assert not face.detected_in_decoded


def test_mild_blur_keeps_identity(astronaut: np.ndarray) -> None:
    soft = np.asarray(Image.fromarray(astronaut).filter(ImageFilter.GaussianBlur(1)))
    (face,) = idm.compare_faces(astronaut, soft, probe_small=False).measured
    assert 0.0 < face.identity_distance < 0.45
    assert face.landmark_shift < 0.05 and face.detected_in_decoded


def test_tiny_faces_are_reported_not_skipped() -> None:
    from skimage import data

    tiny = np.asarray(Image.fromarray(data.astronaut()).resize((96, 96), Image.Resampling.LANCZOS))
    rep = idm.compare_faces(tiny, tiny)
    assert rep.measured == ()
    assert len(rep.too_small) >= 1
    small = rep.too_small[0]
    assert small.box.size < rep.min_face_px == 40
    assert small.identity_distance is None and small.detected_in_decoded is None
    assert rep.to_dict()["faces"][0]["status"] == "too_small"


def test_bad_input_is_typed(astronaut: np.ndarray) -> None:
    with pytest.raises(InputImageError):
        idm.compare_faces(astronaut.astype(np.float32), astronaut)
    with pytest.raises(InputImageError):
        idm.compare_faces(astronaut, astronaut[:128])


def test_missing_models_raise_setup_error(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(idm.ENV_VAR, str(tmp_path))
    idm.load_face_models.cache_clear()
    try:
        with pytest.raises(idm.FaceModelUnavailableError) as info:
            idm.load_face_models()
        assert isinstance(info.value, SetupError)
        assert idm.LANDMARKS_FILE in str(info.value)
    finally:
        monkeypatch.delenv(idm.ENV_VAR)
        idm.load_face_models.cache_clear()
    assert idm.load_face_models() is idm.load_face_models()  # cached once per process
