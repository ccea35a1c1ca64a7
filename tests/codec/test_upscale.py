"""Up-scaled latents (issue 14): the coded size may exceed the display size, strictly bounded."""

from __future__ import annotations

import numpy as np
import pytest

from codec import container as bs
from codec.encoder import ratecontrol
from codec.encoder.ratecontrol import Setting
from codec.errors import BitstreamError
from codec.quant import QuantParams

QP4 = QuantParams(8, (-2.1, -2.5, -1.7, -1.5), (2.2, 2.3, 1.5, 1.9))


def _stream(w: int, h: int, cw: int, ch: int) -> bytes:
    hdr = bs.Header(model_id=1, width=w, height=h, coded_width=cw, coded_height=ch, quant=QP4,
                    entropy_coder=1, effort=1)
    lh, lw = bs.latent_size(cw, ch, 8)
    return bs.pack(hdr, bytes(4 * lh * lw))


@pytest.mark.parametrize("cw,ch", [(960, 640), (1152, 768), (1536, 1024), (384, 256), (768, 511)])
def test_allowed_coded_sizes_round_trip(cw: int, ch: int) -> None:
    h, _ = bs.parse(_stream(768, 512, cw, ch))
    assert (h.width, h.height, h.coded_width, h.coded_height) == (768, 512, cw, ch)
    assert h.latent_shape == (4, -(-ch // 8), -(-cw // 8))


@pytest.mark.parametrize("cw,ch", [(1537, 1024), (1536, 1025), (800, 512), (768, 600), (800, 500)])
def test_coded_size_beyond_2x_or_on_one_side_only_is_rejected(cw: int, ch: int) -> None:
    with pytest.raises((BitstreamError, ValueError)):
        bs.parse(_stream(768, 512, cw, ch))


def test_forged_header_with_larger_coded_size_is_rejected_by_the_parser() -> None:
    good = _stream(768, 512, 1536, 1024)
    # the coded width is the varint after width/height; 1536 → 1540 (same varint length), CRC refreshed
    import struct
    import zlib

    body = bytearray(good[:-4])
    i = body.find(bs.varint_bytes(1536) + bs.varint_bytes(1024))
    body[i:i + 2] = bs.varint_bytes(1540)
    forged = bytes(body) + struct.pack("<I", zlib.crc32(bytes(body)))
    with pytest.raises(BitstreamError):
        bs.parse(forged)


def test_up_scale_coded_size_and_pixel_cap() -> None:
    assert Setting(1.5, 8).coded_size(768, 512) == (1152, 768)
    assert Setting(2.0, 8).coded_size(768, 512) == (1536, 1024)
    big = Setting(2.0, 8).coded_size(2000, 1500)  # 12 MP coded > MAX_UP_PIXELS: not upsampled
    assert big == (2000, 1500)
    assert Setting(1.25, 8).coded_size(1, 1) == (1, 1)  # a side that cannot grow: no up-scale


def test_quality_numbers_never_pick_an_up_scale() -> None:
    assert all(ratecontrol.setting_for_quality(q).scale <= 1.0 for q in (1, 50, 75, 100))


def _fake_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = []
    for lv, bpp, score in ((8, 0.135, 0.60), (16, 0.20, 0.69), (32, 0.27, 0.71), (64, 0.34, 0.72)):
        rows.append({"scale": 1.0, "levels": lv, "bpp": bpp, "score": score})
    for lv, bpp, score in ((8, 0.30, 0.70), (16, 0.45, 0.78), (64, 0.75, 0.83)):
        rows.append({"scale": 2.0, "levels": lv, "bpp": bpp, "score": score})
    for sc in (0.75, 0.5, 0.375, 0.25):
        for lv, s in ((8, 0.4), (64, 0.5)):
            rows.append({"scale": sc, "levels": lv, "bpp": 0.05, "score": s * sc})
    monkeypatch.setattr(ratecontrol, "_rows", lambda: tuple(rows))
    ratecontrol._table.cache_clear()


def test_up_scales_only_tried_when_the_budget_is_large(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_rows(monkeypatch)
    try:
        pixels = 768 * 512

        def size_of(st: Setting) -> int:  # ~ the calibrated bpp, monotone in levels and area
            return int(pixels * (0.02 * st.levels ** 0.5) * st.scale**2 / 8)

        tried: list[float] = []

        def spy(st: Setting) -> int:
            tried.append(st.scale)
            return size_of(st)

        small = ratecontrol.candidates(spy, int(0.1 * pixels / 8))
        assert 2.0 not in tried and all(c.scale <= 1.0 for c in small)
        tried.clear()
        large = ratecontrol.candidates(spy, int(1.0 * pixels / 8))
        assert 2.0 in tried
        assert large[0].scale == 2.0 and size_of(large[0]) <= pixels / 8
        assert ratecontrol.levels_for(2.0) and min(ratecontrol.levels_for(2.0)) >= 8
        assert ratecontrol.levels_for(1.5) == []  # not calibrated in this table: never used
    finally:
        ratecontrol._table.cache_clear()


def test_upsampled_stream_decodes_at_display_size() -> None:
    import codec
    from codec.encoder.session import EncodeSession
    from codec.imageio import load_image
    from codec.models.registry import get_model
    from codec.weights import kodak_dir

    rgb = np.ascontiguousarray(load_image(sorted(kodak_dir().glob("*.png"))[0])[200:264, 300:396])
    session = EncodeSession(get_model("taesd", device="cpu"), rgb, "fast")
    data = session.stream(Setting(2.0, 16))
    meta = codec.info(data)
    assert (meta["width"], meta["height"]) == (96, 64)
    assert (meta["coded_width"], meta["coded_height"]) == (192, 128)
    out = np.asarray(codec.decode(data))
    assert out.shape == rgb.shape
    assert np.array_equal(out, session.reconstruction(Setting(2.0, 16)))
    assert session.latent(2.0).shape == (4, 16, 24)  # 192×128 / 8
