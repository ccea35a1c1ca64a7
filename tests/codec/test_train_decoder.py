"""`make train-decoder --init`: a run continues from a tuned-decoder file instead of the stock decoder.
Lean: builds the trainer only (no crops, no steps)."""

from __future__ import annotations

import torch

from codec.tools.training.train_decoder import DecoderTrainer, parse_args
from tests.codec.test_tuned_decoder import _write_tuned


def test_init_loads_the_file_over_the_trainable_copy_only(tmp_path) -> None:
    path = _write_tuned(tmp_path)  # layers.18 scaled by 1.3, bias + 0.05
    fresh = DecoderTrainer(parse_args(["--train", "layers.18."]))
    resumed = DecoderTrainer(parse_args(["--train", "layers.18.", "--init", str(path)]))
    stock_w = fresh.stock.state_dict()["layers.18.weight"]
    assert torch.equal(fresh.dec.state_dict()["layers.18.weight"], stock_w)
    assert torch.allclose(resumed.dec.state_dict()["layers.18.weight"], (stock_w * 1.3).half().float())
    assert torch.equal(resumed.stock.state_dict()["layers.18.weight"], stock_w)  # the baseline stays stock
    # only the named layers train, whichever start
    assert [p.shape for p in resumed.trainable] == [p.shape for p in fresh.trainable]
    assert all(p.requires_grad for p in resumed.trainable)
