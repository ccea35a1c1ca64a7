"""The invented-detail ratio for small faces (codec/metrics/invented_detail.py, issue 12) on known pairs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from codec.metrics.invented_detail import detail_error


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    from skimage import data

    return np.asarray(Image.fromarray(data.astronaut()).resize((160, 160), Image.LANCZOS))


#: the face of the 160-px astronaut (≈ 33 px: below the identity check's 40 px)
BOX = (52, 22, 85, 54)


def test_same_image_is_zero_and_a_blur_is_about_one(astronaut) -> None:
    assert detail_error(astronaut, astronaut, BOX) == 0.0
    blurred = np.asarray(Image.fromarray(astronaut).filter(ImageFilter.GaussianBlur(4)))
    assert 0.75 < detail_error(astronaut, blurred, BOX) <= 1.05  # no detail left: the error is the detail


def test_detail_that_is_not_there_scores_above_one(astronaut) -> None:
    """Another region's detail pasted over the face (a redrawn face) adds its own energy to the error."""
    fake = astronaut.copy()
    fake[BOX[1]:BOX[3], BOX[0]:BOX[2]] = astronaut[100:132, 10:43]  # the suit's folds, same size
    assert detail_error(astronaut, fake, BOX) > 1.3
    mild = np.clip(astronaut.astype(int) + np.random.default_rng(0).integers(-3, 4, astronaut.shape), 0, 255)
    assert detail_error(astronaut, mild.astype(np.uint8), BOX) < 0.3  # noise of a few levels: detail kept


def test_bad_arguments_are_errors(astronaut) -> None:
    with pytest.raises(ValueError):
        detail_error(astronaut, astronaut[:100], BOX)
    with pytest.raises(ValueError):
        detail_error(astronaut, astronaut, (200, 200, 220, 220))  # outside the image
    flat = np.full_like(astronaut, 128)
    assert detail_error(flat, astronaut, BOX) < np.inf  # a flat original does not divide by zero
