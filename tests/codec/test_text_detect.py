"""Text detection off the critical path (issue 12): `codec.encoder.text.start` runs Tesseract in a
background thread while the encoder works and must find exactly the lines of the direct call; line
readings are cached by crop pixels without changing any result (real Tesseract, small images)."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from codec.encoder import text as text_check
from codec.errors import InputImageError, UsageError
from codec.metrics import legibility as leg
from codec.metrics import text_detect

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
    direct = text_check.detect(signs)
    assert direct is not None and len(direct) >= 2 and any("PARKING" in r.text for r in direct)
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
    """Above `SEARCH_MAX_PIXELS` (`PPOCR_SEARCH_MAX_PIXELS` for PP-OCR) the line search runs on a
    shrunk copy (bounded OCR time and memory on 12 MP photos); the boxes it returns are in the
    original's pixels."""
    small = text_check.detect(signs)
    for cap in ("SEARCH_MAX_PIXELS", "PPOCR_SEARCH_MAX_PIXELS"):  # Tesseract's and PP-OCR's search
        monkeypatch.setattr(text_check, cap, signs.shape[0] * signs.shape[1] // 4)
    big = np.asarray(Image.fromarray(signs).resize((signs.shape[1] * 2, signs.shape[0] * 2)))
    found = text_check.detect(big)  # searched at half size: the same sign lines
    def compact(regions):  # PP-OCR's reading of word gaps depends on the scale
        return ["".join(r.text.split()).lower() for r in regions]

    assert compact(found) == compact(small)
    for a, b in zip(found, small, strict=True):
        assert abs(a.left - 2 * b.left) <= 6 and abs(a.bottom - 2 * b.bottom) <= 6


def _photo_with_small_signs() -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """A textured 'photo' with two sign lines of 12- and 20-px cap height (the bench's layout)."""
    rng = np.random.default_rng(7)
    base = rng.normal(100, 40, (240, 420, 3)).clip(0, 255).astype(np.uint8)
    img = Image.fromarray(base).filter(ImageFilter.GaussianBlur(1.5))
    draw = ImageDraw.Draw(img)
    boxes, y = [], 16
    for line, cap in (("EXIT 7 Harbour Road", 12), ("Platform 4 to Leeds", 20)):
        font = ImageFont.truetype(FONT, round(cap / 0.729))
        x0, y0, x1, y1 = draw.textbbox((16, y), line, font=font)
        draw.rectangle((x0 - 5, y0 - 5, x1 + 5, y1 + 5), fill=(238, 236, 226))
        draw.text((16, y), line, font=font, fill=(25, 25, 30))
        boxes.append((x0, y0, x1, y1))
        y = y1 + 24
    return np.asarray(img), boxes


def test_ppocr_finds_small_sign_lines_with_tight_boxes():
    """The encoder's default line finder (PP-OCRv4 through rapidocr) finds a 12-px-cap line and puts
    its box within a few pixels of the rendered one; Tesseract reads both lines the same way (the
    agreement the encoder asks for before it checks a line)."""
    if not text_detect.available():
        pytest.skip("rapidocr-onnxruntime not installed (requirements-ocr.txt)")
    rgb, boxes = _photo_with_small_signs()
    found = text_check.detect(rgb)
    assert found is not None and len(found) == 2
    for region, (x0, y0, x1, y1) in zip(sorted(found, key=lambda r: r.top), boxes, strict=True):
        assert max(abs(region.left - x0), abs(region.top - y0), abs(region.right - x1),
                   abs(region.bottom - y1)) <= 4
    assert "".join(found[0].text.split()).lower() == "exit7harbourroad"


def test_ppocr_reports_no_line_in_texture():
    if not text_detect.available():
        pytest.skip("rapidocr-onnxruntime not installed (requirements-ocr.txt)")
    rng = np.random.default_rng(3)
    texture = np.asarray(Image.fromarray(rng.normal(120, 45, (200, 300, 3)).clip(0, 255).astype(np.uint8))
                         .filter(ImageFilter.GaussianBlur(1.0)))
    assert text_check.detect(texture) == []
    with pytest.raises(InputImageError):
        text_detect.find_lines(np.zeros((4, 4), np.uint8))


def test_the_detector_is_chosen_by_the_environment(signs, monkeypatch):
    monkeypatch.setenv(text_check.DETECTOR_ENV, "tesseract")
    assert text_check.detector() == "tesseract"
    assert text_check.detect(signs) == leg.find_text_regions(signs, min_chars=text_check.MIN_LINE_CHARS)
    monkeypatch.setenv(text_check.DETECTOR_ENV, "paddle")
    with pytest.raises(UsageError, match="CODEC_TEXT_DETECTOR"):
        text_check.detector()


def _sign(text: str, changed: str) -> tuple[np.ndarray, np.ndarray]:
    """The small-signs photo with a 30-px line ``text`` on a plate sized for it, and the same photo with
    ``changed`` written on that plate instead."""
    rgb, _boxes = _photo_with_small_signs()

    def draw_line(line: str) -> np.ndarray:
        img = Image.fromarray(rgb.copy())
        draw = ImageDraw.Draw(img)
        font = ImageFont.truetype(FONT, 30)
        x0, y0, x1, y1 = draw.textbbox((16, 150), text, font=font)
        draw.rectangle((x0 - 5, y0 - 5, x1 + 5, y1 + 5), fill=(238, 236, 226))
        draw.text((16, 150), line, font=font, fill=(25, 25, 30))
        return np.asarray(img)

    return draw_line(text), draw_line(changed)


def test_a_changed_number_is_caught_where_the_cer_is_small():
    """The check's numbers rule (`LegibilityReport.numbers_kept`): the same line with one digit changed
    reads at a CER under the floor, but its digits differ; the unchanged line keeps them."""
    original, changed = _sign("Gallery open 9-17h", "Gallery open 8-17h")
    region = leg.TextRegion(11, 150, 330, 180, "Gallery open 9-17h", 100.0)
    assert leg.digits("Gallery open 9-17h |") == "917"
    same = text_check.check(original, original, [region])
    assert same is not None and same.worst_cer == 0.0 and same.numbers_kept is True
    rep = text_check.check(original, changed, [region])
    assert rep is not None and rep.numbers_kept is False
    assert rep.worst_cer is not None and rep.worst_cer <= text_check.TEXT_CER_FLOOR  # the CER alone passes
    assert text_check.check(original, changed, []) is None


def test_a_changed_letter_is_caught_where_the_cer_is_small():
    """The words rule on real readings: "AIR FONCE" for "AIR FORCE" is one letter (CER under the floor)
    and a different word; the original against itself and against a JPEG q90 copy keeps every word."""
    import io

    original, changed = _sign("U.S. AIR FORCE 1961", "U.S. AIR FONCE 1961")
    region = leg.TextRegion(11, 150, 345, 180, "U.S. AIR FORCE 1961", 100.0)
    buf = io.BytesIO()
    Image.fromarray(original).save(buf, "JPEG", quality=90)
    clean = np.asarray(Image.open(buf).convert("RGB"))
    for decoded in (original, clean):
        rep = text_check.check(original, decoded, [region])
        assert rep is not None and rep.words_kept is True, rep
    rep = text_check.check(original, changed, [region])
    assert rep is not None and rep.words_kept is False and rep.numbers_kept is True
    assert rep.worst_cer is not None and rep.worst_cer <= text_check.TEXT_CER_FLOOR  # the CER alone passes
    assert rep.lines[0].changed_words == ("FORCE",)


def test_a_verdict_with_a_changed_number_is_not_ok():
    from codec.encoder.faces import FaceVerdict

    base = FaceVerdict(found=0, too_small=None, worst_distance=None, worst_shift=None, all_detected=True,
                       text_cer=0.1)
    assert base.ok and base.badness == 0.0
    changed = dataclasses.replace(base, text_numbers_kept=False)
    assert not changed.ok and changed.badness > 0
    assert dataclasses.replace(base, text_numbers_kept=True).ok
    word = dataclasses.replace(base, text_words_kept=False)
    assert not word.ok and 0 < word.badness < changed.badness
    assert dataclasses.replace(base, text_words_kept=True).ok


def test_the_words_rule_catches_a_changed_letter_and_forgives_ocr_edge_noise():
    """"U.S. AIR FORCE 1961" read as "U.S. AIR FONCE 1961" (training photo 155060 at 0.15 bpp, the
    gallery's path: CER 0.05, under the floor) is a different word; the readings of clean files at the
    same place ("|Cafe" → "iCafe", "ROAD" → "Road", a dropped "|") are not."""
    from codec.metrics import legibility as leg

    assert leg.words("U.S. AIR FORCE 1961") == ["AIR", "FORCE"]
    assert leg.words("Gallery open 9-17h") == ["Gallery", "open"]
    assert not leg.words_kept("U.S. AIR FORCE 1961", "U.S. AIR FONCE 1961")
    assert not leg.words_kept("EXIT 7 Harbour Road", "EXIT 7 }borbuur Dood")
    assert leg.words_kept("|Cafe Central since 1876}", "iCafe Central since 1876}")
    assert leg.words_kept("EXIT 7 Harbour ROAD", "EXIT 7 Harbour Road |")
    assert leg.words_kept("Straße 12", "STRASSE 12")  # case is folded, not just lowered
    region = leg.TextRegion(0, 0, 10, 10, "AIR FORCE", 90.0)
    line = leg.LineResult(region, "AIR FORCE", "AIR FONCE", 1, 0.11, ("FORCE",))
    assert leg.LegibilityReport((line,)).words_kept is False
    kept = dataclasses.replace(line, decoded_text="air force", changed_words=())
    assert leg.LegibilityReport((kept,)).words_kept is True
    short = leg.LineResult(region, "B 12", "8 12", 1, 0.25)
    assert leg.LegibilityReport((short,)).words_kept is None  # nothing of 3+ letters to check


def test_ppocr_reads_a_long_banner_either_way_up_and_survives_thin_strips():
    """A 100:1 banner is searched in windows (the detector alone finds nothing there and fails outright
    on a 16×4096 strip, which must simply hold no line); a tall one turned a quarter, boxes turned back."""
    if not text_detect.available():
        pytest.skip("rapidocr-onnxruntime not installed (requirements-ocr.txt)")
    img = Image.new("RGB", (4000, 40), (238, 236, 226))
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, 22)
    for x in (60, 2600):
        draw.text((x, 8), "EXIT 7 HARBOUR", font=font, fill=(25, 25, 30))
    wide = np.asarray(img)
    found = text_detect.find_lines(wide)
    assert sorted(r.left // 100 for r in found) == [0, 26]  # each line once, where it was drawn
    assert all("EXIT7HARBOUR" in r.text.replace(" ", "") for r in found)
    tall = np.ascontiguousarray(np.rot90(wide, k=-1))  # the same banner reading downwards
    found = text_detect.find_lines(tall)
    assert sorted(r.top // 100 for r in found) == [0, 26] and all(r.right <= 40 for r in found)
    for shape in ((16, 4096), (4096, 16), (7, 300)):
        assert text_detect.find_lines(np.full((*shape, 3), 128, np.uint8)) == []
