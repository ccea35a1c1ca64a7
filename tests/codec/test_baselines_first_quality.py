"""`baselines.encode_at_budget(first_quality=...)`: a predicted quality saves trials, same answer."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from codec import baselines


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
def test_predicted_quality_same_file_fewer_trials(kodak_dir, fmt):
    rgb = np.asarray(Image.open(kodak_dir / "kodim03.png").convert("RGB"))[:192, :256].copy()
    q_min = baselines.FORMATS[fmt].q_min
    plain = baselines.encode_at_budget(rgb, fmt, 1500, mode="downscale", min_quality=q_min)
    assert plain.fits and plain.scale == 1.0
    exact = baselines.encode_at_budget(rgb, fmt, 1500, mode="downscale", min_quality=q_min,
                                       first_quality=plain.quality)
    assert exact.data == plain.data and exact.trials <= 2 < plain.trials
    for guess in (plain.quality + 9, max(q_min, plain.quality - 9), 100, -5):  # wrong guesses: same file
        other = baselines.encode_at_budget(rgb, fmt, 1500, mode="downscale", min_quality=q_min,
                                           first_quality=guess)
        assert other.data == plain.data
