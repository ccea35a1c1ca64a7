"""Codec ``seed`` (8-bit TAESD latents → 256-entry palette → zlib): real weights, strict parser."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from codec.errors import BitstreamError
from codec.metrics import psnr
from codec.seed_codec import (
    HEADER_SIZE,
    SeedHeader,
    decode_seed,
    encode_seed,
    latent_to_u8,
    pack,
    palettize,
    parse,
    u8_to_latent,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def crop(kodak_image) -> np.ndarray:
    return np.asarray(Image.open(kodak_image(23)).convert("RGB"))[100:300, 150:450]  # 300×200, not /8


@pytest.fixture(scope="module")
def encoded(crop) -> bytes:
    return encode_seed(crop)


def test_round_trip_on_a_kodak_crop(crop, encoded):
    header, palette, indices = parse(encoded)
    assert (header.width, header.height, header.dithered) == (300, 200, True)
    assert indices.shape == (25, 38) and palette.shape == (header.colors, 4) and header.colors <= 256
    bpp = len(encoded) * 8 / (300 * 200)
    assert 0.05 < bpp < 0.4  # natural size, no rate control
    out = decode_seed(encoded)
    assert out.shape == crop.shape and out.dtype == np.uint8
    assert psnr(crop, out) > 19
    assert np.array_equal(out, decode_seed(encoded))  # deterministic on one device


def test_dithering_is_optional(crop, encoded):
    plain = encode_seed(crop, dither=False)
    assert not parse(plain)[0].dithered
    assert psnr(crop, decode_seed(plain)) > 19
    assert plain != encoded


def test_eight_bit_mapping_follows_upstream():
    z = np.array([-3.0, -1.0, 0.0, 2.5, 3.0, 10.0], np.float32)
    u8 = latent_to_u8(z)
    assert u8.tolist() == [0, 85, 128, 234, 255, 255]  # round((z/6 + .5)·255), clamped
    assert np.abs(u8_to_latent(u8)[:5] - z[:5]).max() <= 6 / 255


def test_palettize_dither_uses_the_same_palette():
    rng = np.random.default_rng(0)
    u8 = rng.integers(0, 256, (16, 20, 4), dtype=np.uint8)
    pal, idx = palettize(u8, colors=16)
    pal_d, idx_d = palettize(u8, colors=16, dither=True)
    assert np.array_equal(pal, pal_d) and pal.shape[0] <= 16
    assert idx.max() < pal.shape[0] and idx_d.max() < pal.shape[0]


def _craft(width=64, height=32, colors=4, indices=None, tail=b"") -> bytes:
    pal = np.arange(colors * 4, dtype=np.uint8).reshape(colors, 4)
    if indices is None:
        indices = np.zeros((-(-height // 8), -(-width // 8)), np.uint8)
    return pack(SeedHeader(False, 1, width, height, colors), pal, indices) + tail


def test_parser_rejects_corrupt_files(encoded):
    assert parse(_craft())[0].latent_shape == (4, 8)
    bad = [
        b"",
        encoded[: HEADER_SIZE - 1],
        b"XX" + encoded[2:],
        encoded[:2] + b"\x09" + encoded[3:],  # version
        encoded[:3] + b"\x80" + encoded[4:],  # unknown flag
        encoded[:-3],  # truncated payload
        encoded[:HEADER_SIZE] + b"garbage" * 5,
        _craft(indices=np.full((4, 8), 7, np.uint8)),  # index outside the 4-entry palette
        _craft(indices=np.zeros((4, 9), np.uint8)),  # more indices than the size implies
        _craft(tail=b"\x00"),  # trailing bytes
        struct.pack(">2sBBBHHB", b"SP", 1, 0, 1, 65535, 65535, 255) + zlib.compress(b"\x00" * 64),
        struct.pack(">2sBBBHHB", b"SP", 1, 0, 1, 0, 16, 255) + zlib.compress(b""),
    ]
    for data in bad:
        with pytest.raises(BitstreamError):
            parse(data)


def test_zip_bomb_is_not_inflated_beyond_the_header():
    bomb = struct.pack(">2sBBBHHB", b"SP", 1, 0, 1, 8, 8, 0) + zlib.compress(b"\x00" * 50_000_000)
    with pytest.raises(BitstreamError, match="length"):
        parse(bomb)


def test_unknown_model_id_is_a_bitstream_error(encoded):
    with pytest.raises(BitstreamError, match="model"):
        decode_seed(encoded[:4] + b"\x63" + encoded[5:])


def test_importing_seed_codec_does_not_import_torch():
    code = "import sys, codec.seed_codec; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
