"""SD-latent image codec: image → Stable-Diffusion latent bitstream → image.

Importing this package is cheap and does not import torch: `info` uses only the torch-free
`codec.container`; `encode`/`decode` import the torch-side `codec.encoder` / `codec.decoder` when
first called. Layers and the import rule: docs/ARCHITECTURE.md ("Codec layers").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from codec.errors import (
    BitstreamError,
    BudgetError,
    CodecError,
    InputError,
    InputImageError,
    ModelNotFoundError,
    ResourceExhaustedError,
    SetupError,
    UnsupportedVersionError,
    UsageError,
    WeightsChecksumError,
)

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from codec.encoder.faces import SmallFaceAudit
    from codec.encoder.result import EncodeResult

__all__ = [
    "BitstreamError",
    "BudgetError",
    "CodecError",
    "InputError",
    "InputImageError",
    "ModelNotFoundError",
    "ResourceExhaustedError",
    "SetupError",
    "UnsupportedVersionError",
    "UsageError",
    "WeightsChecksumError",
    "audit_small_faces",
    "decode",
    "encode",
    "encode_result",
    "info",
    "load_image",
]


def encode(image: Any, **options: Any) -> bytes:
    """Encode an image (path, bytes, PIL image or HxWx3 uint8 array); see `codec.encoder.encode.encode`."""
    from codec.encoder.encode import encode as _encode

    return _encode(image, **options)


def encode_result(image: Any, **options: Any) -> EncodeResult:
    """`encode` plus what the decoder shows for the file (reusing the encoder's own decode) and its
    info; see `codec.encoder.result.encode_result`."""
    from codec.encoder.result import encode_result as _encode_result

    return _encode_result(image, **options)


def audit_small_faces(original: np.ndarray, decoded: np.ndarray) -> SmallFaceAudit | None:
    """A second look for faces too small for the encoder's own detection at this photo size, measured in
    ``decoded`` (what a file shows); ``.redrawn`` → encode again with ``probe_faces=True``. None without
    the face models. See `codec.encoder.faces.audit_small`."""
    from codec.encoder.faces import audit_small

    return audit_small(original, decoded)


def decode(data: bytes, **options: Any) -> Image.Image:
    """Decode a bitstream to an RGB PIL image; see `codec.decoder.decode`."""
    from codec.decoder import decode as _decode

    return _decode(data, **options)


def info(data: bytes) -> dict[str, Any]:
    """Parse the header only (no torch) and return the JSON-able description."""
    from codec.container.describe import info as _info

    return _info(data)


def load_image(src: Any, **options: Any) -> np.ndarray:
    """Read any supported image into an EXIF-oriented RGB uint8 array."""
    from codec.imageio import load_image as _load_image

    return _load_image(src, **options)


#: old module paths still importable as attributes (``from codec import bitstream``): the container
#: header module took the place of ``codec/bitstream.py`` (tests/reliability/fuzzing.py uses it)
_MOVED = {"bitstream": "codec.container.header"}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        import importlib

        return importlib.import_module(_MOVED[name])
    raise AttributeError(f"module 'codec' has no attribute {name!r}")
