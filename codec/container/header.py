"""The container's header: quantizer parameters, metadata TLVs, payload, extension sections, CRC32.

Pure Python + numpy (no torch): the web process parses headers with it. The byte layout, limits and
version policy are in ``codec/FORMAT.md``; keep the two in sync.

`parse` is strict: every field is bounds-checked while it is read (nothing is allocated from a
claimed size), lengths must add up exactly, and the CRC must match. Anything else raises
`BitstreamError`, or `UnsupportedVersionError` for a newer format version / feature.
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from codec.container.wire import Reader, pack_nibbles, read_tlvs, tlv_bytes, unpack_nibbles, varint_bytes
from codec.errors import BitstreamError, UnsupportedVersionError
from codec.models.specs import MODELS_BY_ID
from codec.options import EFFORTS
from codec.quant import DOMAINS, MAX_LEVELS, MIN_LEVELS, RANGE_LIMIT, TANH_LIMIT, QuantParams

MAGIC = b"\x89LAT"
FORMAT_VERSION = 1

# ---- limits (FORMAT.md, "Limits") ---------------------------------------------------------------
MAX_SIDE = 65535
MAX_PIXELS = 100_000_000
#: a coded (latent) size may exceed the display size by at most this factor per side (up-scales)
MAX_CODED_UPSCALE = 2
MAX_CHANNELS = 64
MAX_LATENT_SYMBOLS = MAX_PIXELS // 64 * MAX_CHANNELS
MAX_METADATA = 4096
MAX_TEXT = 64

# ---- enumerations ------------------------------------------------------------------------------
PAYLOAD_LATENT = 0
PAYLOAD_AVIF = 1
PAYLOAD_KINDS = {PAYLOAD_LATENT: "latent", PAYLOAD_AVIF: "avif"}
ENTROPY_CODERS = {0: "raw", 1: "ctx", 2: "lzma", 3: "webp", 4: "jxl", 5: "learned"}
DOWNSCALES = (8, 16, 32, 64)

_FLAG_KIND_MASK = 0x03
_FLAG_CODED_SIZE = 0x04
_FLAG_METADATA = 0x08
_FLAG_TANH = 0x10
_FLAG_SECTIONS = 0x20  # extension sections follow the payload (the fidelity guard's patch layer)
_FLAG_OFFSETS = 0x40  # quantizer reconstruction offsets follow the ranges
_FLAG_RESERVED = 0x80

# ---- metadata tags (id: name, kind) ------------------------------------------------------------
TAG_FIDELITY_MIN = 1
TAG_FIDELITY_MEAN = 2
TAG_FIDELITY_FLOOR_MET = 3
TAG_ENCODER = 4
TAG_FIDELITY_FLOOR = 5
# identity- and text-checked encoding (issue 12; `codec.encoder.faces`), all non-critical
TAG_FACES_FOUND = 6
TAG_FACES_TOO_SMALL = 7
TAG_WORST_IDENTITY_DISTANCE = 8
TAG_WORST_LANDMARK_SHIFT = 9
TAG_FACES_KEPT = 10
TAG_TEXT_CER = 11
TAG_TARGET = 12
TAG_TARGET_MET = 13
TAG_PROTECTION_BYTES = 14
# learned dequantization (issue 14 item 2): id of the latent denoiser the file prefers before the stock
# decoder (`codec.models.specs.LATENT_FILTERS`); non-critical: without it the file still decodes
TAG_LATENT_FILTER = 15
# small faces (issue 12; `codec.encoder.faces.SMALL_DETAIL_FLOOR`): worst invented-detail ratio, non-critical
TAG_WORST_SMALL_FACE_DETAIL = 16
# numbers of the checked text lines read the same in the decode (issue 12; `codec.encoder.text`), non-critical
TAG_TEXT_NUMBERS_KEPT = 17
# words of the checked text lines read the same in the decode (issue 12; `codec.encoder.text`), non-critical
TAG_TEXT_WORDS_KEPT = 18
# seam score of the patch layer's windows (issue 12; `codec.metrics.seams.seam_score`), non-critical
TAG_PATCH_SEAMS = 19
_TAGS: dict[int, tuple[str, str]] = {
    TAG_FIDELITY_MIN: ("fidelity_min", "f32"),
    TAG_FIDELITY_MEAN: ("fidelity_mean", "f32"),
    TAG_FIDELITY_FLOOR_MET: ("fidelity_floor_met", "bool"),
    TAG_ENCODER: ("encoder_variant", "str"),
    TAG_FIDELITY_FLOOR: ("fidelity_floor", "f32"),
    TAG_FACES_FOUND: ("faces_found", "uint"),
    TAG_FACES_TOO_SMALL: ("faces_too_small", "uint"),
    TAG_WORST_IDENTITY_DISTANCE: ("worst_identity_distance", "f32"),
    TAG_WORST_LANDMARK_SHIFT: ("worst_landmark_shift", "f32"),
    TAG_FACES_KEPT: ("faces_kept", "bool"),
    TAG_TEXT_CER: ("text_cer", "f32"),
    TAG_TARGET: ("target", "str"),
    TAG_TARGET_MET: ("target_met", "bool"),
    TAG_PROTECTION_BYTES: ("protection_bytes", "uint"),
    TAG_LATENT_FILTER: ("latent_filter", "uint"),
    TAG_WORST_SMALL_FACE_DETAIL: ("worst_small_face_detail", "f32"),
    TAG_TEXT_NUMBERS_KEPT: ("text_numbers_kept", "bool"),
    TAG_TEXT_WORDS_KEPT: ("text_words_kept", "bool"),
    TAG_PATCH_SEAMS: ("patch_seams", "f32"),
}
#: largest value of a ``uint`` metadata tag (a varint of at most 5 bytes)
MAX_TAG_UINT = 2**32 - 1

# ---- extension sections after the payload (id: Header attribute); bit 0x80 of the id = critical --
SECTION_PATCH_LAYER = 1
SECTION_REGION_LAYER = 2
SECTION_RESIDUAL_LAYER = 3
_SECTIONS: dict[int, str] = {SECTION_PATCH_LAYER: "patch_layer", SECTION_REGION_LAYER: "region_layer",
                             SECTION_RESIDUAL_LAYER: "residual_layer"}
MAX_SECTIONS = 4


@dataclass
class Header:
    """Everything in a bitstream except the payload.

    ``latent_height``/``latent_width`` are not stored: they are ``ceil(coded / downscale)``; `pack`
    checks given values against that and `parse` fills them in. For ``payload_kind=PAYLOAD_AVIF``
    (the whole image stored as AVIF, e.g. by the fidelity guard) the latent fields are unused.
    """

    model_id: int
    width: int
    height: int
    coded_width: int | None = None  # None: same as width
    coded_height: int | None = None
    latent_channels: int = 4
    latent_height: int | None = None
    latent_width: int | None = None
    quant: QuantParams | None = None
    entropy_coder: int = 1
    effort: int = 0  # index into EFFORTS
    payload_kind: int = PAYLOAD_LATENT
    downscale: int = 8
    fidelity_min: float | None = None
    fidelity_mean: float | None = None
    fidelity_floor_met: bool | None = None
    encoder_variant: str | None = None
    fidelity_floor: float | None = None
    faces_found: int | None = None
    faces_too_small: int | None = None
    worst_identity_distance: float | None = None
    worst_landmark_shift: float | None = None
    faces_kept: bool | None = None
    text_cer: float | None = None
    target: str | None = None
    target_met: bool | None = None
    protection_bytes: int | None = None
    worst_small_face_detail: float | None = None
    text_numbers_kept: bool | None = None
    text_words_kept: bool | None = None
    #: seam score of the patch layer's windows on the final decode (≥ 0; present only with a patch layer)
    patch_seams: float | None = None
    #: latent denoiser id (≥ 1) the encoder measured better than plain dequantization (latent only)
    latent_filter: int | None = None
    #: fidelity guard: blocks re-coded with a classical codec (`codec.container.patchlayer` body), latent only
    patch_layer: bytes | None = None
    #: region latents (faces coded once more as small latents, `codec.container.regionlayer`), latent only
    region_layer: bytes | None = None
    #: what the decode above still gets wrong, as one classical image (`codec.container.residuallayer`)
    residual_layer: bytes | None = None
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if self.coded_width is None:
            self.coded_width = self.width
        if self.coded_height is None:
            self.coded_height = self.height
        if self.payload_kind == PAYLOAD_LATENT and _is_int(self.coded_width) and _is_int(self.downscale):
            lh, lw = latent_size(self.coded_width, self.coded_height, self.downscale)
            if self.latent_height is None:
                self.latent_height = lh
            if self.latent_width is None:
                self.latent_width = lw

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        assert self.latent_height is not None and self.latent_width is not None
        return (self.latent_channels, self.latent_height, self.latent_width)


def _is_int(v: object) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def latent_size(coded_width: int, coded_height: int, downscale: int) -> tuple[int, int]:
    """(latent_height, latent_width) of an image of the coded size."""
    return -(-int(coded_height) // downscale), -(-int(coded_width) // downscale)


# ---------------------------------------------------------------------------------------- checks


def _check_geometry(h: Header) -> tuple[int, int]:
    """Validate sizes; return (latent_height, latent_width). Raises BitstreamError."""
    for name in ("width", "height", "coded_width", "coded_height"):
        v = getattr(h, name)
        if not _is_int(v) or not 1 <= v <= MAX_SIDE:
            raise BitstreamError(f"{name} = {v!r} outside [1, {MAX_SIDE}]")
    if h.width * h.height > MAX_PIXELS:
        raise BitstreamError(f"image {h.width}x{h.height} exceeds {MAX_PIXELS} pixels")
    assert h.coded_width is not None and h.coded_height is not None
    # coded ≤ display per side (downscaled latent), or > display on BOTH sides and ≤ MAX_CODED_UPSCALE ×
    # display (an upsampled latent, issue 14); never larger on one side only
    down = h.coded_width <= h.width and h.coded_height <= h.height
    up = (h.width < h.coded_width <= MAX_CODED_UPSCALE * h.width
          and h.height < h.coded_height <= MAX_CODED_UPSCALE * h.height)
    if not (down or up) or h.coded_width * h.coded_height > MAX_PIXELS:
        raise BitstreamError(
            f"coded size {h.coded_width}x{h.coded_height} not allowed for the image {h.width}x{h.height}: "
            f"larger on one side only, or more than {MAX_CODED_UPSCALE}× larger, or over {MAX_PIXELS} pixels"
        )
    if h.payload_kind != PAYLOAD_LATENT:
        return 0, 0
    if h.downscale not in DOWNSCALES:
        raise BitstreamError(f"downscale {h.downscale} not one of {DOWNSCALES}")
    if not _is_int(h.latent_channels) or not 1 <= h.latent_channels <= MAX_CHANNELS:
        raise BitstreamError(f"latent channels {h.latent_channels!r} outside [1, {MAX_CHANNELS}]")
    lh, lw = latent_size(h.coded_width, h.coded_height, h.downscale)
    if (h.latent_height, h.latent_width) != (lh, lw):
        raise BitstreamError(
            f"latent {h.latent_height}x{h.latent_width} inconsistent with coded size "
            f"{h.coded_width}x{h.coded_height} / {h.downscale} (= {lh}x{lw})"
        )
    if h.latent_channels * lh * lw > MAX_LATENT_SYMBOLS:
        raise BitstreamError("latent too large")
    return lh, lw


def _check_model(h: Header) -> None:
    """The model id must be known to this build; channels/downscale must match its spec."""
    spec = MODELS_BY_ID.get(int(h.model_id))
    if spec is None:
        raise UnsupportedVersionError(f"model id {h.model_id} is unknown to this build")
    if spec.family == "sd-vae":  # channels and downscale come from the model directory's config
        return
    if h.latent_channels != spec.latent_channels or h.downscale != spec.downscale:
        raise BitstreamError(
            f"model {spec.name} has {spec.latent_channels} channels / downscale {spec.downscale}, "
            f"the header says {h.latent_channels} / {h.downscale}"
        )


def max_payload_bytes(h: Header) -> int:
    """Upper bound on a valid payload for this header (checked before the payload is touched)."""
    if h.payload_kind == PAYLOAD_LATENT:
        lh, lw = latent_size(h.coded_width or 1, h.coded_height or 1, h.downscale)
        return 2 * h.latent_channels * lh * lw + 4096
    return 3 * h.width * h.height + 65536


def max_section_bytes(h: Header) -> int:
    """Upper bound on one extension section: the latent payload bound or, when larger, that of a
    whole image at the display size (a patch layer covers display pixels; a tiny latent of a large
    flat image may carry patches bigger than itself)."""
    return max(max_payload_bytes(h), 3 * h.width * h.height + 65536)


# ------------------------------------------------------------------------------------------ pack


def _metadata_bytes(h: Header) -> bytes:
    out = bytearray()
    for tag, (name, kind) in _TAGS.items():
        value = getattr(h, name)
        if value is None:
            continue
        if kind == "f32":
            if not math.isfinite(float(value)):
                raise ValueError(f"{name} must be finite, got {value!r}")
            raw = struct.pack("<f", float(value))
        elif kind == "bool":
            raw = bytes([1 if value else 0])
        elif kind == "uint":
            if not _is_int(value) or not 0 <= value <= MAX_TAG_UINT:
                raise ValueError(f"{name} must be an integer in [0, {MAX_TAG_UINT}], got {value!r}")
            raw = varint_bytes(int(value))
        else:
            raw = str(value).encode("utf-8")
            if not 1 <= len(raw) <= MAX_TEXT:
                raise ValueError(f"{name} must be 1..{MAX_TEXT} UTF-8 bytes, got {len(raw)}")
        out += tlv_bytes(tag, raw)
    return bytes(out)


def section_bytes(h: Header) -> bytes:
    """The extension sections of ``h`` as written after the payload (b"" when there are none)."""
    present = [(sid, getattr(h, name)) for sid, name in _SECTIONS.items() if getattr(h, name) is not None]
    if not present:
        return b""
    if h.payload_kind != PAYLOAD_LATENT:
        raise ValueError("extension sections need a latent payload")
    out = bytearray(varint_bytes(len(present)))
    for sid, body in present:
        body = bytes(body)
        if not 1 <= len(body) <= max_section_bytes(h):
            raise ValueError(f"section {sid}: {len(body)} bytes outside [1, {max_section_bytes(h)}]")
        out += tlv_bytes(sid, body)
    return bytes(out)


def pack(header: Header, payload: bytes) -> bytes:
    """Serialise ``header`` + ``payload``. Raises ValueError for a header this format cannot hold."""
    h = header
    try:
        _check_geometry(h)
    except BitstreamError as exc:
        raise ValueError(str(exc)) from exc
    if not _is_int(h.model_id) or not 0 <= h.model_id <= 255:
        raise ValueError(f"model_id {h.model_id!r} outside [0, 255]")
    if h.payload_kind not in PAYLOAD_KINDS:
        raise ValueError(f"unknown payload kind {h.payload_kind!r}")
    if not _is_int(h.effort) or not 0 <= h.effort < len(EFFORTS):
        raise ValueError(f"effort {h.effort!r} outside [0, {len(EFFORTS) - 1}]")
    if h.format_version != FORMAT_VERSION:
        raise ValueError(f"this build writes format version {FORMAT_VERSION} only")
    payload = bytes(payload)
    if len(payload) > max_payload_bytes(h):
        raise ValueError(f"payload of {len(payload)} bytes exceeds the format bound {max_payload_bytes(h)}")

    flags = h.payload_kind
    coded = (h.coded_width, h.coded_height) != (h.width, h.height)
    if coded:
        flags |= _FLAG_CODED_SIZE
    if h.latent_filter is not None and (not _is_int(h.latent_filter) or h.latent_filter < 1
                                        or h.payload_kind != PAYLOAD_LATENT):
        raise ValueError(f"latent_filter must be an id ≥ 1 on a latent payload, got {h.latent_filter!r}")
    meta = _metadata_bytes(h)
    if meta:
        flags |= _FLAG_METADATA
    sections = section_bytes(h)
    if sections:
        flags |= _FLAG_SECTIONS
    coder = 0
    if h.payload_kind == PAYLOAD_LATENT:
        qp = h.quant
        if not isinstance(qp, QuantParams):
            raise ValueError("a latent payload needs QuantParams")
        if qp.channels != h.latent_channels:
            raise ValueError(f"quantizer has {qp.channels} channels, header says {h.latent_channels}")
        if h.entropy_coder not in ENTROPY_CODERS:
            raise ValueError(f"unknown entropy coder {h.entropy_coder!r}")
        if qp.domain == "tanh":
            flags |= _FLAG_TANH
        if qp.offsets is not None:
            flags |= _FLAG_OFFSETS
        coder = h.entropy_coder

    out = bytearray(MAGIC)
    out += bytes([FORMAT_VERSION, h.model_id, flags, coder | (h.effort << 4)])
    out += varint_bytes(h.width) + varint_bytes(h.height)
    if coded:
        out += varint_bytes(h.coded_width) + varint_bytes(h.coded_height)
    if h.payload_kind == PAYLOAD_LATENT:
        assert h.quant is not None
        out += bytes([(h.latent_channels - 1) | (DOWNSCALES.index(h.downscale) << 6), h.quant.levels - 1])
        ranges = np.empty((h.latent_channels, 2), dtype="<f2")
        ranges[:, 0] = h.quant.lo
        ranges[:, 1] = h.quant.hi
        out += ranges.tobytes()
        if h.quant.offsets is not None:
            out += pack_nibbles(np.asarray(h.quant.offsets, dtype=np.int64).ravel())
    if meta:
        out += varint_bytes(len(meta)) + meta
    out += varint_bytes(len(payload)) + payload
    out += sections
    out += struct.pack("<I", zlib.crc32(out))
    return bytes(out)


# ----------------------------------------------------------------------------------------- parse


def _parse_metadata(r: Reader, h: Header) -> None:
    size = r.varint("metadata length", MAX_METADATA)
    if size < 2:
        raise BitstreamError("metadata section flagged but empty")
    end = r.pos + size
    if end > r.end:
        raise BitstreamError("truncated bitstream: metadata section runs past the end")
    for tag, value in read_tlvs(Reader(r.data, end, r.pos), "metadata tag", _TAGS, length_limit=MAX_METADATA):
        name, kind = _TAGS[tag]
        length = len(value)
        if kind == "f32":
            if length != 4:
                raise BitstreamError(f"{name}: expected 4 bytes, got {length}")
            number = struct.unpack("<f", value)[0]
            if not math.isfinite(number):
                raise BitstreamError(f"{name} is not finite")
            setattr(h, name, float(number))
        elif kind == "bool":
            if length != 1 or value[0] > 1:
                raise BitstreamError(f"{name}: expected one byte 0 or 1")
            setattr(h, name, bool(value[0]))
        elif kind == "uint":
            vr = Reader(value, length)
            number = vr.varint(name, MAX_TAG_UINT)
            if vr.pos != length:
                raise BitstreamError(f"{name}: {length - vr.pos} bytes after the varint")
            setattr(h, name, number)
        else:
            if not 1 <= length <= MAX_TEXT:
                raise BitstreamError(f"{name}: length {length} outside [1, {MAX_TEXT}]")
            try:
                setattr(h, name, value.decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise BitstreamError(f"{name} is not UTF-8") from exc
    r.pos = end


def _parse_sections(r: Reader, h: Header) -> None:
    if h.payload_kind != PAYLOAD_LATENT:
        raise BitstreamError("extension sections on a non-latent payload")
    count = r.varint("section count", MAX_SECTIONS)
    if count < 1:
        raise BitstreamError("sections flagged but none present")
    for sid, body in read_tlvs(r, "section", _SECTIONS, length_limit=max_section_bytes(h), min_length=1,
                               count=count):
        setattr(h, _SECTIONS[sid], body)
    if r.pos != r.end:
        raise BitstreamError(f"{r.end - r.pos} trailing bytes after the sections")


def _parse_quant(
    r: Reader, channels: int, levels: int, domain: str, offsets: bool = False
) -> QuantParams:
    raw = np.frombuffer(r.take(4 * channels, "quantizer ranges"), dtype="<f2").astype(np.float64)
    lo, hi = raw[0::2], raw[1::2]
    limit = TANH_LIMIT if domain == "tanh" else RANGE_LIMIT
    ok = np.isfinite(lo) & np.isfinite(hi) & (lo < hi) & (lo >= -limit) & (hi <= limit)
    if not ok.all():
        c = int(np.flatnonzero(~ok)[0])
        raise BitstreamError(f"quantizer range of channel {c} invalid: [{lo[c]}, {hi[c]}] ({domain})")
    table = None
    if offsets:
        count = channels * levels
        values = unpack_nibbles(r.take((count + 1) // 2, "reconstruction offsets"), count)
        if not values.any():
            raise BitstreamError("reconstruction offsets flagged but all zero")
        table = tuple(map(tuple, values.reshape(channels, levels).tolist()))
    return QuantParams(levels, tuple(lo), tuple(hi), domain, table)


def parse(data: bytes, *, max_pixels: int | None = None) -> tuple[Header, bytes]:
    """Parse and verify a bitstream; returns (header, payload). See FORMAT.md.

    ``max_pixels``: an optional, stricter limit of the caller (e.g. a decoder serving untrusted
    files): a stream whose width×height or coded width×height exceeds it is rejected right after
    the size fields, before anything else is read. The format's own limit is `MAX_PIXELS`.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise BitstreamError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        raise BitstreamError("not a latent-codec bitstream (wrong magic)")
    if len(data) < len(MAGIC) + 4 + 2 + 1 + 4:
        raise BitstreamError(f"truncated bitstream: {len(data)} bytes")
    r = Reader(data, len(data) - 4)  # the last 4 bytes are the CRC
    r.take(len(MAGIC), "magic")
    version = r.u8("format version")
    if version != FORMAT_VERSION:
        raise UnsupportedVersionError(f"format version {version}; this build reads version {FORMAT_VERSION}")
    model_id = r.u8("model id")
    flags = r.u8("flags")
    if flags & _FLAG_RESERVED:
        raise UnsupportedVersionError(f"reserved flag bits set (0x{flags:02x})")
    kind = flags & _FLAG_KIND_MASK
    if kind not in PAYLOAD_KINDS:
        raise UnsupportedVersionError(f"unknown payload kind {kind}")
    coder_byte = r.u8("coder/effort")
    coder, effort = coder_byte & 0x0F, (coder_byte >> 4) & 0x03
    if coder_byte & 0xC0:
        raise UnsupportedVersionError(f"reserved coder/effort bits set (0x{coder_byte:02x})")
    if effort >= len(EFFORTS):
        raise BitstreamError(f"effort code {effort} unknown")
    width = r.varint("width", MAX_SIDE)
    height = r.varint("height", MAX_SIDE)
    if flags & _FLAG_CODED_SIZE:
        coded_w = r.varint("coded width", MAX_SIDE)
        coded_h = r.varint("coded height", MAX_SIDE)
        if (coded_w, coded_h) == (width, height):
            raise BitstreamError("coded size flagged but equal to the image size")
    else:
        coded_w, coded_h = width, height
    if max_pixels is not None and max(width * height, coded_w * coded_h) > max_pixels:
        raise BitstreamError(f"image {width}x{height} exceeds the caller's limit of {max_pixels} pixels")

    h = Header(model_id=model_id, width=width, height=height, coded_width=coded_w, coded_height=coded_h,
               payload_kind=kind, effort=effort, entropy_coder=coder, latent_channels=0,
               latent_height=0, latent_width=0)
    if kind == PAYLOAD_LATENT:
        geo = r.u8("latent channels/downscale")
        h.latent_channels = (geo & 0x3F) + 1
        h.downscale = DOWNSCALES[geo >> 6]
        h.latent_height, h.latent_width = latent_size(coded_w, coded_h, h.downscale)
        levels = r.u8("levels") + 1
        if not MIN_LEVELS <= levels <= MAX_LEVELS:
            raise BitstreamError(f"levels {levels} outside [{MIN_LEVELS}, {MAX_LEVELS}]")
        if coder not in ENTROPY_CODERS:
            raise UnsupportedVersionError(f"entropy coder {coder} is unknown to this build")
        domain = DOMAINS[1] if flags & _FLAG_TANH else DOMAINS[0]
        _check_geometry(h)
        _check_model(h)
        h.quant = _parse_quant(r, h.latent_channels, levels, domain, bool(flags & _FLAG_OFFSETS))
    else:
        if coder or flags & (_FLAG_TANH | _FLAG_OFFSETS):
            raise BitstreamError("coder id / quantizer flag set on a non-latent payload")
        h.latent_channels, h.latent_height, h.latent_width = 0, None, None
        _check_geometry(h)
    if flags & _FLAG_METADATA:
        _parse_metadata(r, h)
        if h.latent_filter is not None and (h.latent_filter == 0 or kind != PAYLOAD_LATENT):
            raise BitstreamError(f"latent_filter {h.latent_filter} invalid (ids start at 1; latent only)")
    bound = max_payload_bytes(h)
    length = r.varint("payload length", bound)
    remaining = r.end - r.pos
    if length > remaining:
        raise BitstreamError(f"truncated bitstream: payload claims {length} bytes, {remaining} present")
    if length < remaining and not flags & _FLAG_SECTIONS:
        raise BitstreamError(f"{remaining - length} trailing bytes after the payload")
    if kind != PAYLOAD_LATENT and length == 0:
        raise BitstreamError("empty image payload")
    payload = r.take(length, "payload")
    if flags & _FLAG_SECTIONS:
        _parse_sections(r, h)
    (stored_crc,) = struct.unpack("<I", data[-4:])
    if zlib.crc32(data[:-4]) != stored_crc:
        raise BitstreamError("CRC mismatch: the bitstream is corrupt")
    return h, payload
