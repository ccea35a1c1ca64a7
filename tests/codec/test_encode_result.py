"""`codec.encode_result`: the file plus what the decoder shows, from the encoder's own decode."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import codec
from codec.encoder import result as result_mod
from codec.models.registry import get_model


@pytest.fixture(scope="module")
def crop(kodak_dir) -> np.ndarray:
    return np.asarray(Image.open(kodak_dir / "kodim05.png").convert("RGB"))[:96, :128].copy()


@pytest.mark.parametrize("effort", ["fast", "default"])
def test_reconstruction_is_the_decoders_output_without_a_decoder_pass_of_its_own(crop, effort):
    res = codec.encode_result(crop, max_bytes=400, effort=effort)
    assert len(res.data) <= 400
    assert res.info == codec.info(res.data)
    assert res.reconstruction.shape == (96, 128, 3) and res.reconstruction.dtype == np.uint8
    assert np.array_equal(res.reconstruction, np.asarray(codec.decode(res.data)))
    assert res.reconstruction_reused and res.decoder_passes_saved >= 1


def test_same_file_as_encode_and_the_model_is_left_as_it_was(crop):
    model = get_model("taesd")
    same = codec.encode_result(crop, quality=40, effort="fast").data
    assert same == codec.encode(crop, quality=40, effort="fast")
    assert "decode" not in vars(model)  # the memo is gone


def test_memo_is_bounded_and_a_miss_still_decodes():
    import torch

    calls = []

    def decode(z):
        calls.append(1)
        return z * 2

    memo = result_mod._DecoderMemo(decode, max_bytes=4 * 4)  # room for one 4-float output
    a, b = torch.ones(1, 4), torch.zeros(1, 4)
    assert torch.equal(memo(a), a * 2) and torch.equal(memo(a), a * 2)
    assert torch.equal(memo(b), b * 2) and torch.equal(memo(b), b * 2)  # not kept: decoded again
    assert (memo.hits, memo.misses, len(calls)) == (1, 3, 3)


def test_the_latent_denoiser_runs_once_per_latent(crop, monkeypatch):
    """The final reconstruction reuses the guard's denoised latent (effort default writes the
    denoiser tag): encode_result runs the denoiser no more often than the encode alone does (without
    the memo it runs once more); outside encode_result nothing is memoized."""
    from codec import decoder
    from codec.models import denoiser

    calls = []
    real = denoiser.apply

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(denoiser, "apply", counting)
    data = codec.encode(crop, max_bytes=400, effort="default")
    alone = len(calls)
    res = codec.encode_result(crop, max_bytes=400, effort="default")
    assert res.data == data and codec.info(data).get("preferred_decoder", "").startswith("taesd+dq1")
    assert 1 <= len(calls) - alone <= alone
    before = len(calls)
    assert np.array_equal(res.reconstruction, np.asarray(codec.decode(res.data)))
    assert len(calls) == before + 1 and decoder.FILTER_MEMO.get() is None  # a plain decode denoises
