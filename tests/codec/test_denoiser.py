"""The learned latent denoiser (issue 14 item 2): the header tag, old files, the zoo weights, determinism."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from codec.container.describe import info
from codec.container.header import PAYLOAD_AVIF, Header, pack, parse
from codec.errors import BitstreamError
from codec.models.specs import LATENT_FILTERS, latent_filter_for
from codec.quant import params_for_latent

CORPUS = Path(__file__).parent / "corpus"


def _latent_file(latent_filter: int | None) -> bytes:
    """A 64×48 taesd stream (raw coder, 8 levels) with the given tag."""
    rng = np.random.default_rng(0)
    qp = params_for_latent(rng.normal(size=(4, 6, 8)).astype(np.float32), 8, offsets=True)
    symbols = rng.integers(0, 8, size=(4, 6, 8), dtype=np.uint16)
    bits = np.unpackbits(symbols.astype(np.uint8)[..., None], axis=-1)[..., -3:]  # raw coder: 3 bits, MSB 1st
    payload = np.packbits(bits.ravel()).tobytes()
    return pack(Header(model_id=1, width=64, height=48, quant=qp, entropy_coder=0, effort=1,
                       latent_filter=latent_filter), payload)


def _recrc(data: bytes) -> bytes:
    return data[:-4] + struct.pack("<I", zlib.crc32(data[:-4]))


def test_tag_round_trips_and_info_names_the_decoder_path() -> None:
    plain, tagged = _latent_file(None), _latent_file(1)
    assert parse(plain)[0].latent_filter is None
    assert parse(tagged)[0].latent_filter == 1
    assert len(tagged) - len(plain) <= 5  # tag, length, value (+ the metadata length)
    assert info(plain)["preferred_decoder"] == "taesd" and "latent_filter_available" not in info(plain)
    meta = info(tagged)
    assert meta["latent_filter"] == 1 and meta["preferred_decoder"] == "taesd+dq1"
    assert meta["latent_filter_available"] is True
    unknown = info(_latent_file(9))  # a newer file: this build decodes it without the filter
    assert unknown["preferred_decoder"] == "taesd+filter9" and unknown["latent_filter_available"] is False


def test_tag_is_strictly_parsed() -> None:
    tagged = _latent_file(7)
    assert tagged.count(b"\x0f\x01\x07") == 1
    with pytest.raises(BitstreamError, match="latent_filter"):
        parse(_recrc(tagged.replace(b"\x0f\x01\x07", b"\x0f\x01\x00")))  # id 0
    with pytest.raises(BitstreamError):
        parse(_recrc(tagged.replace(b"\x0f\x01\x07", b"\x0f\x01\x87")))  # non-canonical varint
    with pytest.raises(ValueError):
        pack(Header(model_id=1, width=64, height=48, quant=parse(tagged)[0].quant, latent_filter=0), b"")
    with pytest.raises(ValueError):
        pack(Header(model_id=0, width=8, height=8, payload_kind=PAYLOAD_AVIF, latent_channels=0,
                    latent_filter=1), b"x")


def test_old_file_decodes_bit_identically() -> None:
    """A file written before the tag existed takes exactly the stock path (dequantize → decoder)."""
    from codec.decoder import _latent, decode_rgb, latent_to_rgb
    from codec.models.registry import get_model

    data = (CORPUS / "ok_tiny_ctx.bin").read_bytes()
    header, payload = parse(data)
    assert header.latent_filter is None
    stock = latent_to_rgb(get_model("taesd"), _latent(header, payload), header.coded_width,
                          header.coded_height, header.width, header.height)
    assert np.array_equal(decode_rgb(data), stock)
    assert np.array_equal(decode_rgb(data, denoise=False), stock)


def test_zoo_weights_load_small_and_deterministic(monkeypatch) -> None:
    from codec.decoder import decode_rgb
    from codec.models import denoiser

    spec = latent_filter_for("taesd")  # the newest shipped filter: dq1, alone or with the tuned decoder
    assert spec is not None and spec.file == LATENT_FILTERS[1].file
    net = denoiser.get_denoiser(spec.filter_id)
    assert sum(p.numel() for p in net.parameters()) <= 100_000
    assert not any(p.requires_grad for p in net.parameters())

    rng = np.random.default_rng(1)
    z = rng.normal(size=(4, 40, 24)).astype(np.float32)
    qp = params_for_latent(z, 6, offsets=True)
    from codec.quant import dequantize, quantize

    zq = dequantize(quantize(z, qp), qp)
    whole = denoiser.apply(net, zq, qp)
    assert np.array_equal(whole, denoiser.apply(net, zq, qp))  # deterministic
    step = qp.step().astype(np.float32)[:, None, None]
    assert np.all(np.abs(whole - zq) <= denoiser.MAX_SHIFT * step * (1 + 1e-5))  # bounded correction
    assert not np.array_equal(whole, zq)  # it does something
    monkeypatch.setattr(denoiser, "STRIP_ROWS", 7)  # strips with context = the whole pass
    np.testing.assert_allclose(denoiser.apply(net, zq, qp), whole, atol=1e-5)
    monkeypatch.undo()

    # a tagged file decodes through the denoiser; an unknown id decodes like the stock path
    tagged, unknown, plain = _latent_file(1), _latent_file(9), _latent_file(None)
    dn = decode_rgb(tagged)
    assert np.array_equal(dn, decode_rgb(tagged))
    assert np.array_equal(decode_rgb(tagged, denoise=False), decode_rgb(plain))
    assert np.array_equal(decode_rgb(unknown), decode_rgb(plain))
    assert not np.array_equal(dn, decode_rgb(plain))


def test_encoder_sets_the_tag_when_measured_better_or_at_default(kodak_image) -> None:
    from codec.encoder.ratecontrol import Setting
    from codec.encoder.session import EncodeSession
    from codec.imageio import load_image
    from codec.models.registry import get_model

    rgb = load_image(kodak_image(1))[200:328, 300:428]
    model = get_model("taesd")
    for effort in ("max", "default", "fast"):
        session = EncodeSession(model, rgb, effort)
        for setting in (Setting(1.0, 4), Setting(1.0, 12)):
            final, search = session.stream(setting), session.stream(setting, search=True)
            assert len(final) <= len(search)  # what the rate control saw is an upper bound
            tag = parse(final)[0].latent_filter
            if effort == "fast":
                assert tag is None
                continue
            newest = latent_filter_for("taesd")
            assert newest is not None
            if effort == "default":  # the trained denoiser without a second (stock) decode
                assert tag == newest.filter_id and session._measured(setting)[0] == float("-inf")
                continue
            stock, denoised = session._measured(setting)
            assert (tag == newest.filter_id) == (denoised > stock)
            assert parse(search)[0].latent_filter == newest.filter_id
