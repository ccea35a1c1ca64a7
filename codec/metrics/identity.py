"""Face identity metric: does a decoded image still show the same people as the original?

For every face dlib's HOG detector finds in the *original* image we measure, on the decode:

* ``identity_distance`` — Euclidean distance of dlib's 128-D face-recognition embeddings
  (ResNet ``dlib_face_recognition_resnet_model_v1``), both computed at the *original's* box and
  landmarks' alignment chip. dlib's own "same person" threshold is 0.6; a faithful decode is far
  below it (JPEG-quality copies of a face are typically < 0.1).
* ``landmark_shift`` — mean displacement of the 5 landmarks (eye corners + nose base, 5-point
  shape predictor run at the original's box on both images) divided by the inter-ocular distance
  (distance of the two eye centres in the original). ``landmark_shift_max`` is the worst point.
* ``detected_in_decoded`` — whether the same detector (same upsampling, same threshold) still finds a
  face in the decode overlapping the original box (IoU ≥ `MATCH_IOU`).
* ``features`` — the eyes' and mouth's appearance at the original's landmarks (colour ΔE, structure,
  dark blobs: `codec.metrics.face_features`), what the embedding is nearly blind to (blue eyes decoded
  brown, eyes filled black, teeth smudged).

Faces smaller than the detector's minimum at the requested upsampling (dlib's HOG window is 80 px, so
``80 / 2**upsample`` px) are *not* silently dropped: a probe pass one upsampling level finer finds them
and they are reported with ``status="too_small"`` and no metrics (the embedding network's 150-px chip
is upscaled from a handful of pixels there, so its distance says nothing). When the probe pass would be
too large (``probe_max_pixels``) the report says ``probe_skipped=True``.

Models: the 5-point landmark model and the recognition ResNet from the PyPI package
``face-recognition-models`` (the files sit inside the package), dlib itself from ``dlib-bin``. We
never load the 68-point model (its training data, iBUG 300-W, is licensed for non-commercial use
only); see ``codec/metrics/IDENTITY.md``. ``$CODEC_FACE_MODELS_DIR`` overrides the folder.
Everything is imported lazily: importing this module does not import dlib; `load_face_models` loads the
models once per process. All functions take RGB ``uint8`` ``HxWx3`` numpy arrays.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from codec.errors import InputImageError, ModelNotFoundError
from codec.metrics.face_features import FEATURE_KEYS, FeatureScores, compare_features

ENV_VAR = "CODEC_FACE_MODELS_DIR"
MODELS_PACKAGE = "face_recognition_models"
LANDMARKS_FILE = "shape_predictor_5_face_landmarks.dat"
RECOGNITION_FILE = "dlib_face_recognition_resnet_model_v1.dat"
INSTALL_HINT = "pip install dlib-bin==20.0.1.post1 face-recognition-models==0.3.0 (see requirements.txt)"

#: dlib's HOG frontal detector scans an 80×80 window; upsampling the image by 2 halves the minimum face.
HOG_WINDOW_PX = 80
#: Detector score a face of the ORIGINAL needs (dlib's HOG scores are ~0 at the boundary; 0.3 drops the
#: weak false positives such as the mission patch on skimage's astronaut, score 0.12).
DETECT_THRESHOLD = 0.3
#: In the DECODE any positive detector response near the original box counts as "still detected".
DECODE_THRESHOLD = 0.0
#: dlib's usual "same person" threshold for the ResNet embeddings.
SAME_PERSON_THRESHOLD = 0.6
#: A face in the decode counts as "the same detection" when its box overlaps the original's by this IoU.
MATCH_IOU = 0.3
#: Landmark indices of dlib's 5-point model: 0,1 one eye's corners, 2,3 the other eye's, 4 the nose base.
EYE_A = (0, 1)
EYE_B = (2, 3)

Status = Literal["measured", "too_small"]


class FaceModelUnavailableError(ModelNotFoundError):
    """dlib or the face model files are missing (a setup problem: install them, keep the input)."""


@dataclass(frozen=True)
class FaceBox:
    """A detection in pixel coordinates (``right``/``bottom`` exclusive) with the detector's score."""

    left: int
    top: int
    right: int
    bottom: int
    score: float = 0.0
    #: Upsampling level the detection was found at (0 = original size).
    upsample: int = 0

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def size(self) -> int:
        """The box side in pixels (dlib's boxes are square up to rounding): min(width, height)."""
        return min(self.width, self.height)

    def iou(self, other: FaceBox) -> float:
        ix = max(0, min(self.right, other.right) - max(self.left, other.left))
        iy = max(0, min(self.bottom, other.bottom) - max(self.top, other.top))
        inter = ix * iy
        union = self.width * self.height + other.width * other.height - inter
        return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class FaceIdentity:
    """Identity metrics of one face of the original (all ``None`` when ``status == "too_small"``)."""

    box: FaceBox
    status: Status
    identity_distance: float | None = None
    landmark_shift: float | None = None
    landmark_shift_max: float | None = None
    inter_ocular_px: float | None = None
    detected_in_decoded: bool | None = None
    decoded_box: FaceBox | None = None
    #: eye / mouth appearance numbers (`codec.metrics.face_features`; None when not measured)
    features: FeatureScores | None = None

    @property
    def same_person(self) -> bool | None:
        """dlib's 0.6 rule on the identity distance (None for unmeasured faces)."""
        if self.identity_distance is None:
            return None
        return self.identity_distance < SAME_PERSON_THRESHOLD


@dataclass(frozen=True)
class IdentityReport:
    """All faces of one original↔decoded pair; ``min_face_px`` is the detector minimum that applied."""

    faces: tuple[FaceIdentity, ...]
    upsample: int
    min_face_px: int
    probe_skipped: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def measured(self) -> tuple[FaceIdentity, ...]:
        return tuple(f for f in self.faces if f.status == "measured")

    @property
    def too_small(self) -> tuple[FaceIdentity, ...]:
        return tuple(f for f in self.faces if f.status == "too_small")

    @property
    def worst_distance(self) -> float | None:
        values = [f.identity_distance for f in self.measured if f.identity_distance is not None]
        return max(values) if values else None

    @property
    def worst_landmark_shift(self) -> float | None:
        values = [f.landmark_shift for f in self.measured if f.landmark_shift is not None]
        return max(values) if values else None

    def worst_feature(self, key: str) -> float | None:
        """Worst (largest) value of one `FeatureScores` field over the measured faces."""
        values = [getattr(f.features, key) for f in self.measured if f.features is not None]
        values = [v for v in values if v is not None]
        return max(values) if values else None

    @property
    def worst_features(self) -> dict[str, float | None]:
        return {k: self.worst_feature(k) for k in FEATURE_KEYS}

    @property
    def all_detected(self) -> bool:
        """True when every measured face is still found in the decode (vacuously True with none)."""
        return all(bool(f.detected_in_decoded) for f in self.measured)

    def to_dict(self) -> dict[str, Any]:
        return {
            "upsample": self.upsample,
            "min_face_px": self.min_face_px,
            "probe_skipped": self.probe_skipped,
            "faces": [asdict(f) for f in self.faces],
            "worst_distance": self.worst_distance,
            "worst_landmark_shift": self.worst_landmark_shift,
            "all_detected": self.all_detected,
            "worst_features": self.worst_features,
            **self.extra,
        }


@dataclass(frozen=True)
class FaceModels:
    """The dlib objects, loaded once per process by `load_face_models`."""

    detector: Any
    landmarks: Any
    recognition: Any
    model_dir: Path
    lock: threading.Lock = field(default_factory=threading.Lock, compare=False)


def min_face_px(upsample: int) -> int:
    """Smallest face side (px) the HOG detector can find at this upsampling level."""
    return max(1, HOG_WINDOW_PX >> upsample) if upsample >= 0 else HOG_WINDOW_PX


def model_dir() -> Path:
    """Folder holding the dlib model files: ``$CODEC_FACE_MODELS_DIR`` or the installed package's."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    # Locate the package without importing it: its __init__ needs pkg_resources, gone from setuptools ≥ 81.
    spec = importlib.util.find_spec(MODELS_PACKAGE)
    if spec is None or spec.origin is None:
        raise FaceModelUnavailableError(
            f"the face model package {MODELS_PACKAGE!r} is not installed: {INSTALL_HINT}, "
            f"or set {ENV_VAR} to a folder holding {LANDMARKS_FILE} and {RECOGNITION_FILE}"
        )
    return Path(spec.origin).parent / "models"


@lru_cache(maxsize=1)
def load_face_models() -> FaceModels:
    """dlib's HOG detector, the 5-point landmark model and the recognition ResNet (cached per process).

    Raises `FaceModelUnavailableError` (a `codec.errors.SetupError`) when dlib or a file is missing.
    """
    try:
        import dlib
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise FaceModelUnavailableError(f"dlib is not importable ({exc}): {INSTALL_HINT}") from exc
    folder = model_dir()
    paths = {name: folder / name for name in (LANDMARKS_FILE, RECOGNITION_FILE)}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise FaceModelUnavailableError(
            f"face model file(s) missing: {', '.join(missing)} (upstream: the PyPI package "
            f"face-recognition-models, which copies davisking/dlib-models; {INSTALL_HINT})"
        )
    try:
        landmarks = dlib.shape_predictor(str(paths[LANDMARKS_FILE]))
        recognition = dlib.face_recognition_model_v1(str(paths[RECOGNITION_FILE]))
    except RuntimeError as exc:
        raise FaceModelUnavailableError(f"cannot load the dlib models from {folder}: {exc}") from exc
    return FaceModels(dlib.get_frontal_face_detector(), landmarks, recognition, folder)


def _check_rgb(rgb: np.ndarray, what: str = "image") -> np.ndarray:
    arr = np.asarray(rgb)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3 or 0 in arr.shape:
        raise InputImageError(f"{what} must be an HxWx3 uint8 RGB array, got {arr.dtype} {arr.shape}")
    return np.ascontiguousarray(arr)


def _detect(models: FaceModels, rgb: np.ndarray, upsample: int, threshold: float) -> list[FaceBox]:
    h, w = rgb.shape[:2]
    with models.lock:  # dlib objects are not documented as thread-safe
        rects, scores, _ = models.detector.run(rgb, upsample, threshold)
    boxes = []
    for r, s in zip(rects, scores, strict=True):
        left, top = max(0, r.left()), max(0, r.top())
        right, bottom = min(w, r.right() + 1), min(h, r.bottom() + 1)
        if right > left and bottom > top:
            boxes.append(FaceBox(left, top, right, bottom, float(s), upsample))
    return boxes


def detect_faces(rgb: np.ndarray, *, upsample: int = 1, threshold: float = DETECT_THRESHOLD) -> list[FaceBox]:
    """Faces found by dlib's HOG detector (score ≥ ``threshold``) after upsampling ``upsample`` times.

    Finds faces down to `min_face_px` (upsample) px: 80 at 0, 40 at 1, 20 at 2. Each upsampling level
    costs about 4× the time of the previous one.
    """
    return _detect(load_face_models(), _check_rgb(rgb), upsample, threshold)


def _rect(box: FaceBox) -> Any:
    import dlib

    return dlib.rectangle(box.left, box.top, box.right - 1, box.bottom - 1)


def face_landmarks(rgb: np.ndarray, box: FaceBox) -> np.ndarray:
    """The 5 landmarks (float ``(5, 2)`` x, y) the 5-point model places inside ``box``."""
    models = load_face_models()
    with models.lock:
        shape = models.landmarks(_check_rgb(rgb), _rect(box))
    return np.array([(shape.part(i).x, shape.part(i).y) for i in range(shape.num_parts)], dtype=np.float64)


def face_embedding(rgb: np.ndarray, box: FaceBox) -> np.ndarray:
    """dlib's 128-D embedding of the face in ``box`` (aligned with the 5-point landmarks, no jitter)."""
    models = load_face_models()
    arr = _check_rgb(rgb)
    with models.lock:
        shape = models.landmarks(arr, _rect(box))
        return np.array(models.recognition.compute_face_descriptor(arr, shape, 0), dtype=np.float64)


def _measure(models: FaceModels, original: np.ndarray, decoded: np.ndarray, box: FaceBox,
             decoded_faces: list[FaceBox]) -> FaceIdentity:
    rect = _rect(box)
    with models.lock:
        shape_o = models.landmarks(original, rect)
        shape_d = models.landmarks(decoded, rect)
        emb_o = np.array(models.recognition.compute_face_descriptor(original, shape_o, 0))
        # The decode is embedded at the ORIGINAL's alignment: a codec that moves the eyes is penalised
        # by the landmark shift below, and the distance compares the same pixels of both images.
        emb_d = np.array(models.recognition.compute_face_descriptor(decoded, shape_o, 0))
    pts_o = np.array([(shape_o.part(i).x, shape_o.part(i).y) for i in range(shape_o.num_parts)], float)
    pts_d = np.array([(shape_d.part(i).x, shape_d.part(i).y) for i in range(shape_d.num_parts)], float)
    eye_a = pts_o[list(EYE_A)].mean(axis=0)
    eye_b = pts_o[list(EYE_B)].mean(axis=0)
    iod = float(np.linalg.norm(eye_a - eye_b))
    shifts = np.linalg.norm(pts_d - pts_o, axis=1) / max(iod, 1.0)
    best = max(decoded_faces, key=box.iou, default=None)
    matched = best if best is not None and box.iou(best) >= MATCH_IOU else None
    return FaceIdentity(
        box=box,
        status="measured",
        identity_distance=float(np.linalg.norm(emb_o - emb_d)),
        landmark_shift=float(shifts.mean()),
        landmark_shift_max=float(shifts.max()),
        inter_ocular_px=iod,
        detected_in_decoded=matched is not None,
        decoded_box=matched,
        features=compare_features(original, decoded, pts_o) if pts_o.shape == (5, 2) else None,
    )


def compare_faces(
    original: np.ndarray,
    decoded: np.ndarray,
    *,
    upsample: int = 1,
    faces: list[FaceBox] | None = None,
    probe_small: bool = True,
    probe_max_pixels: int = 16_000_000,
    threshold: float = DETECT_THRESHOLD,
) -> IdentityReport:
    """Identity metrics for every face of ``original`` in ``decoded`` (same size, RGB uint8).

    ``faces`` skips detection on the original (e.g. boxes cached by the encoder); otherwise the HOG
    detector runs at ``upsample`` with ``threshold``; in the decode any detection with a positive score
    (`DECODE_THRESHOLD`) overlapping the box counts as still detected. With ``probe_small`` a second pass
    at ``upsample + 1`` finds faces below the detector's minimum; they are reported with
    ``status="too_small"`` (no metrics), unless the upsampled image would exceed ``probe_max_pixels``
    (then ``probe_skipped=True``).
    """
    original = _check_rgb(original, "original")
    decoded = _check_rgb(decoded, "decoded")
    if original.shape != decoded.shape:
        raise InputImageError(f"original {original.shape} and decoded {decoded.shape} differ in size")
    models = load_face_models()
    found = _detect(models, original, upsample, threshold) if faces is None else list(faces)
    small: list[FaceBox] = []
    probe_skipped = False
    if probe_small:
        h, w = original.shape[:2]
        if h * w * 4 ** (upsample + 1) > probe_max_pixels:
            probe_skipped = True
        else:
            for box in _detect(models, original, upsample + 1, threshold):
                if all(box.iou(b) < MATCH_IOU for b in found):
                    # A probe face of full size that the coarser pass missed is measured, not dropped.
                    (small if box.size < min_face_px(upsample) else found).append(box)
    decoded_at: dict[int, list[FaceBox]] = {}
    results = []
    for box in found:
        if box.upsample not in decoded_at:
            decoded_at[box.upsample] = _detect(models, decoded, box.upsample, DECODE_THRESHOLD)
        results.append(_measure(models, original, decoded, box, decoded_at[box.upsample]))
    results += [FaceIdentity(box=box, status="too_small") for box in small]
    return IdentityReport(tuple(results), upsample, min_face_px(upsample), probe_skipped)


def embedding_distance(a: np.ndarray, box_a: FaceBox, b: np.ndarray, box_b: FaceBox) -> float:
    """Embedding distance of the face in ``box_a`` of ``a`` and the face in ``box_b`` of ``b``."""
    return float(np.linalg.norm(face_embedding(a, box_a) - face_embedding(b, box_b)))
