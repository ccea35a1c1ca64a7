"""Text legibility metric (codec.metrics.legibility) with the real Tesseract engine."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from codec.errors import InputImageError, SetupError
from codec.metrics import legibility as leg

TEXT = "Harbour View 42"
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.truetype(FONT, size)
    except OSError:
        return ImageFont.load_default(size)


@pytest.fixture(scope="module")
def sign() -> np.ndarray:
    rng = np.random.default_rng(0)
    base = rng.normal(120, 25, (96, 320, 3)).clip(0, 255).astype(np.uint8)  # textured "photo"
    img = Image.fromarray(base).filter(ImageFilter.GaussianBlur(2))
    draw = ImageDraw.Draw(img)
    draw.rectangle((10, 24, 310, 72), fill=(240, 240, 230))
    draw.text((18, 30), TEXT, font=_font(30), fill=(20, 20, 20))
    return np.asarray(img)


def test_levenshtein_and_cer() -> None:
    assert leg.levenshtein("kitten", "sitting") == 3
    assert leg.cer("abc", "abc") == 0.0
    assert leg.cer(" a  b ", "a b") == 0.0
    assert leg.cer("", "") == 0.0 and leg.cer("", "x") == 1.0
    assert leg.cer("abcd", "") == 1.0


def test_rendered_line_reads_and_matches_itself(sign: np.ndarray) -> None:
    regions = leg.find_text_regions(sign)
    assert regions, "the sign was not found"
    assert leg.cer(TEXT, " ".join(r.text for r in regions)) <= 0.1
    rep = leg.compare_text(sign, sign.copy(), regions=regions)
    assert rep.chars >= len(TEXT) - 2
    assert rep.cer == 0.0


def test_blurred_text_has_high_cer(sign: np.ndarray) -> None:
    blurred = np.asarray(Image.fromarray(sign).filter(ImageFilter.GaussianBlur(5)))
    rep = leg.compare_text(sign, blurred)
    assert rep.cer is not None and rep.cer > 0.5


def test_no_text_gives_none() -> None:
    flat = np.full((64, 64, 3), 128, np.uint8)
    rep = leg.compare_text(flat, flat)
    assert rep.lines == () and rep.cer is None


def test_bad_input_is_typed(sign: np.ndarray) -> None:
    with pytest.raises(InputImageError):
        leg.compare_text(sign, sign[:10])


def test_missing_engine_is_setup_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(leg.ENV_VAR, "/nonexistent/tesseract")
    leg.tesseract_binary.cache_clear()
    try:
        with pytest.raises(leg.OcrUnavailableError) as info:
            leg.tesseract_binary()
        assert isinstance(info.value, SetupError)
    finally:
        monkeypatch.delenv(leg.ENV_VAR)
        leg.tesseract_binary.cache_clear()
