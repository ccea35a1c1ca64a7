"""Dynamic batching (`codec.models.batching`): concurrent calls share passes and get their own rows."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from PIL import Image

import codec
from codec.errors import UsageError
from codec.metrics import psnr
from codec.models import batching
from codec.models.registry import clear_cache, get_model


def _concurrently(n: int, fn) -> list:
    """Run ``fn(i)`` in ``n`` threads released at once; results in order (exceptions re-raised)."""
    out: list = [None] * n
    errors: list = []
    barrier = threading.Barrier(n)

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = fn(i)
        except BaseException as exc:  # collected and raised by the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]
    return out


def test_concurrent_calls_share_passes_and_get_their_own_rows():
    seen = []

    def double(x):
        seen.append(x.shape[0])
        return x * 2

    b = batching.Batcher(double, max_batch=8, max_wait_s=0.2)
    xs = [torch.full((1, 3), float(i)) for i in range(6)]
    outs = _concurrently(6, lambda i: b(xs[i]))
    for x, y in zip(xs, outs, strict=True):
        assert torch.equal(y, x * 2)
    assert b.stats.rows == 6 and b.stats.passes < 6 and max(seen) > 1


def test_different_shapes_never_share_a_pass_and_batches_respect_the_limit():
    seen = []

    def ident(x):
        seen.append(tuple(x.shape))
        return x + 0

    b = batching.Batcher(ident, max_batch=2, max_wait_s=0.2)
    xs = [torch.zeros(1, 2) if i % 2 else torch.zeros(1, 5) for i in range(6)]
    outs = _concurrently(6, lambda i: b(xs[i]))
    assert all(o.shape == x.shape for o, x in zip(outs, xs, strict=True))
    assert all(s[0] <= 2 for s in seen) and {s[1] for s in seen} == {2, 5}


def test_a_failing_batch_is_retried_alone_and_only_the_bad_call_fails():
    def picky(x):
        if (x < 0).any():
            raise ValueError("negative input")
        return x

    b = batching.Batcher(picky, max_batch=4, max_wait_s=0.2)
    xs = [torch.tensor([[-1.0]]), torch.tensor([[1.0]]), torch.tensor([[2.0]])]
    outs = _concurrently(3, lambda i: _outcome(b, xs[i]))
    assert isinstance(outs[0], ValueError)
    assert torch.equal(outs[1], xs[1]) and torch.equal(outs[2], xs[2])


def _outcome(b, x):
    try:
        return b(x)
    except ValueError as exc:
        return exc


def test_calls_with_autograd_bypass_the_batcher():
    b = batching.Batcher(lambda x: x * 3, max_batch=4)
    x = torch.ones(1, 2, requires_grad=True)
    b(x).sum().backward()
    assert torch.equal(x.grad, torch.full((1, 2), 3.0)) and b.stats.bypassed == 1


def test_settings_from_the_environment(monkeypatch):
    monkeypatch.delenv(batching.BATCH_MAX_ENV, raising=False)
    assert batching.batch_settings()[0] == 1
    monkeypatch.setenv(batching.BATCH_MAX_ENV, "16")
    monkeypatch.setenv(batching.BATCH_WAIT_ENV, "5")
    assert batching.batch_settings() == (16, 0.005)
    monkeypatch.setenv(batching.BATCH_MAX_ENV, "zero")
    with pytest.raises(UsageError):
        batching.batch_settings()


@pytest.fixture()
def batched_model(monkeypatch):
    monkeypatch.setenv(batching.BATCH_MAX_ENV, "4")
    monkeypatch.setenv(batching.BATCH_WAIT_ENV, "50")
    model = get_model("taesd", device="cpu")
    yield model
    clear_cache()


def test_real_taesd_photos_in_threads_code_like_a_plain_encode(batched_model, kodak_dir):
    """Four crops coded at once through one batched model (the tuned encoder batched too). A batched
    convolution rounds differently from a single one (≈ 2e-6 on CPU fp32), which may flip a latent
    value's rounding: the files must be as good as coding each alone, and the reconstruction handed
    back must be what ``codec.decode`` shows up to that rounding."""
    assert isinstance(batched_model, batching.BatchingAutoencoder)
    import copy

    assert copy.deepcopy(batched_model).ae is not batched_model.ae  # a copy to fine-tune: plain torch
    img = np.asarray(Image.open(kodak_dir / "kodim05.png").convert("RGB"))
    crops = [img[y:y + 64, x:x + 96].copy() for y, x in [(0, 0), (64, 96), (128, 192), (200, 300)]]
    results = _concurrently(4, lambda i: codec.encode_result(crops[i], max_bytes=300, effort="default",
                                                             device="cpu"))
    stats = batched_model.stats()
    assert max(max(s.sizes) for s in stats.values() if s.sizes) > 1  # some pass was shared
    assert "decode" not in vars(batched_model)  # every thread's memo is gone
    clear_cache()
    for crop, res in zip(crops, results, strict=True):
        assert len(res.data) <= 300
        shown = np.asarray(codec.decode(res.data)).astype(float)
        assert np.abs(res.reconstruction - shown).max() <= 1
        alone = np.asarray(codec.decode(codec.encode(crop, max_bytes=300, effort="default", device="cpu")))
        assert psnr(shown.astype(np.uint8), alone) > 35  # the same picture, up to a flipped rounding

