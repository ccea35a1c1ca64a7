"""`EncodeSession.upgrade`: the rate search sizes with the fast coders; when the final stream (every
coder, incl. the learned one) leaves room, one rung finer at the same scale is used."""

from __future__ import annotations

import numpy as np
from PIL import Image

from codec.encoder.ratecontrol import Setting, levels_for
from codec.encoder.session import UPGRADE_RESERVE, EncodeSession
from codec.models.registry import get_model


def test_upgrade_takes_one_finer_rung_only_when_its_final_stream_fits(kodak_image) -> None:
    rgb = np.asarray(Image.open(kodak_image(3)).convert("RGB"))[128:256, 256:448].copy()
    session = EncodeSession(get_model("taesd", device="cpu"), rgb, "fast")
    base = Setting(1.0, 8)
    finer = Setting(1.0, min(q for q in levels_for(1.0) if q > 8))
    need = len(session.stream(finer)) + UPGRADE_RESERVE
    assert session.upgrade(base, need) == finer
    assert session.upgrade(base, need - 1) == base
    top = Setting(1.0, max(levels_for(1.0)))
    assert session.upgrade(top, 10**9) == top  # nothing finer to take
