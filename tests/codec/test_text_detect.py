"""Text detection off the critical path (issue 12): `codec.encoder.text.start` runs Tesseract in a
background thread while the encoder works and must find exactly the lines of the direct call; line
readings are cached by crop pixels without changing any result (real Tesseract, small images)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from codec.encoder import text as text_check
from codec.errors import InputImageError
from codec.metrics import legibility as leg

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


@pytest.fixture(scope="module")
def signs() -> np.ndarray:
    rng = np.random.default_rng(1)
    base = rng.normal(110, 30, (160, 360, 3)).clip(0, 255).astype(np.uint8)
    img = Image.fromarray(base).filter(ImageFilter.GaussianBlur(2))
    draw = ImageDraw.Draw(img)
    for y, line, size in ((14, "NO PARKING ZONE B", 26), (86, "Platform 4 to Leeds", 26)):
        font = ImageFont.truetype(FONT, size)
        x0, y0, x1, y1 = draw.textbbox((14, y), line, font=font)
        draw.rectangle((x0 - 5, y0 - 5, x1 + 5, y1 + 5), fill=(238, 236, 226))
        draw.text((14, y), line, font=font, fill=(25, 25, 30))
    return np.asarray(img)


def _session(rgb: np.ndarray) -> SimpleNamespace:
    return SimpleNamespace(rgb=rgb, _memo={})


def test_background_detection_finds_the_same_lines_as_the_direct_call(signs):
    direct = leg.find_text_regions(signs, min_chars=text_check.MIN_LINE_CHARS)
    assert len(direct) >= 2 and any("PARKING" in r.text for r in direct)
    session = _session(signs)
    text_check.start(session)
    pending = session._memo["text_pending"]
    text_check.start(session)  # idempotent: one detection per session
    assert session._memo["text_pending"] is pending
    assert text_check.session_regions(session) == direct
    assert "text_pending" not in session._memo and session._memo["text"] == direct
    assert text_check.session_regions(session) is session._memo["text"]  # kept, not run again


def test_without_start_the_direct_call_runs(signs):
    session = _session(signs)
    assert text_check.session_regions(session) == text_check.detect(signs)


def test_an_error_in_the_background_reaches_the_caller(monkeypatch):
    def boom(rgb):
        raise InputImageError("OCR took longer than 60 s")

    monkeypatch.setattr(text_check, "detect", boom)
    session = _session(np.zeros((8, 8, 3), np.uint8))
    text_check.start(session)
    with pytest.raises(InputImageError, match="longer"):
        text_check.session_regions(session)


def test_line_readings_are_cached_by_pixels_and_change_nothing(signs, monkeypatch):
    regions = leg.find_text_regions(signs)
    blurred = np.asarray(Image.fromarray(signs).filter(ImageFilter.GaussianBlur(1.2)))
    leg._readings.clear()
    first = leg.compare_text(signs, blurred, regions=regions)
    calls = []
    real_run = leg._run
    monkeypatch.setattr(leg, "_run", lambda *a, **k: calls.append(a) or real_run(*a, **k))
    again = leg.compare_text(signs, blurred, regions=regions)
    assert again == first and calls == []  # every crop read before: no Tesseract call
    other = signs.copy()
    other[:, :, 0] ^= 1  # one bit per pixel changes: a different crop, read afresh
    leg.compare_text(signs, other, regions=regions)
    assert len(calls) == len(regions)


def _tsv(words: list[tuple[int, int, int, int, float, str]]) -> str:
    head = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext"
    rows = [f"5\t1\t1\t1\t1\t{i}\t{x}\t{y}\t{w}\t{h}\t{c}\t{t}"
            for i, (x, y, w, h, c, t) in enumerate(words, 1)]
    return "\n".join([head, *rows])


def test_a_line_box_ignores_swollen_word_boxes_and_unsure_ends():
    """Tesseract's word boxes on photos swell into texture ("Gallery" 52 px tall on a 15-px line) and
    it reads texture at a line's end as a low-confidence word: neither may stretch the line's box."""
    words = [(13, 0, 67, 52, 85.0, "Gallery"), (87, 22, 42, 12, 96.5, "open"),
             (156, 19, 30, 12, 96.1, "17h"), (200, 0, 60, 60, 12.0, "Haas")]
    (region,) = leg._regions(_tsv(words), 1.0, 480, 320, 60.0, 2)
    assert region.text == "Gallery open 17h Haas"  # the reading is Tesseract's, unchanged
    assert (region.left, region.right) == (13, 186)  # "Haas" (conf 12) at the end is not in the box
    assert (region.top, region.bottom) == (19, 34)  # medians of the sure words' tops and bottoms


def test_a_large_photo_is_searched_shrunk_and_its_lines_come_back_in_full_size_pixels(signs, monkeypatch):
    """Above `SEARCH_MAX_PIXELS` the line search runs on a shrunk copy (bounded OCR time on 12 MP
    photos); the boxes it returns are in the original's pixels."""
    small = text_check.detect(signs)
    monkeypatch.setattr(text_check, "SEARCH_MAX_PIXELS", signs.shape[0] * signs.shape[1] // 4)
    big = np.asarray(Image.fromarray(signs).resize((signs.shape[1] * 2, signs.shape[0] * 2)))
    found = text_check.detect(big)  # searched at half size: the same sign lines
    assert [r.text for r in found] == [r.text for r in small]
    for a, b in zip(found, small, strict=True):
        assert abs(a.left - 2 * b.left) <= 6 and abs(a.bottom - 2 * b.bottom) <= 6
