"""Issue 12, text in the gallery: the worker asks the codec to check text per ``GALLERY_CHECK_TEXT``
(default: on when Tesseract is installed), a file whose text reads differently shows a "Text may have
changed" badge like the faces' one, and the system check says when OCR is missing."""

from __future__ import annotations

import pytest
from django.urls import reverse

from codec.encoder.text import TEXT_CER_FLOOR
from gallery import checks, presenters
from gallery.models import Photo

from .factories import codec_options_of_encode, pending_photo, ready_photo

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("on", [True, False])
def test_the_worker_passes_check_text_per_the_setting(user, settings, monkeypatch, on):
    settings.GALLERY_CHECK_TEXT = on
    assert codec_options_of_encode(pending_photo(user), monkeypatch)["check_text"] is on


def test_default_is_on_where_tesseract_is_installed(settings):
    import shutil

    assert settings.GALLERY_CHECK_TEXT is (shutil.which("tesseract") is not None)


def _photo(user, info: dict) -> Photo:
    photo = ready_photo(user, title="sign.png")
    Photo.objects.filter(pk=photo.pk).update(codec_info=info)
    photo.refresh_from_db()
    return photo


def test_text_above_the_floor_shows_the_badge_everywhere(alice_client, user, media_root):
    photo = _photo(user, {"text_cer": 0.45, "text_checked": True, "faces_found": 0,
                          "fidelity_floor_met": True})
    body = alice_client.get(reverse("gallery:detail", args=[photo.pk])).content.decode()
    assert "Text may have changed" in body and "character error rate 45%" in body
    status = alice_client.get(reverse("gallery:status", args=[photo.pk]),
                              HTTP_ACCEPT="application/json").json()
    assert [(b["key"], b["warning"]) for b in status["protection"]["badges"]] == [("text-changed", True)]
    grid = alice_client.get(reverse("gallery:list")).content.decode()
    assert ">Text may have changed</span>" in grid


@pytest.mark.parametrize("cer", [0.0, 0.05, TEXT_CER_FLOOR])
def test_text_at_or_under_the_floor_is_a_note_not_a_badge(user, cer):
    import numpy as np

    stored = float(np.float32(cer))  # the file keeps the CER as float32 (0.2 → 0.2000000030)
    prot = presenters.protection(_photo(user, {"text_cer": stored, "text_checked": True}))
    assert prot.badges == []
    assert any("Text checked" in note for note in prot.notes or [])


def test_a_changed_number_is_a_badge_even_under_the_cer_floor(user):
    """"Gallery open 9-17h" read as "8-17h" is CER 0.14 on its line, under the floor, and a different
    opening time: the file says ``text_numbers_kept: false`` and the page shows the badge."""
    prot = presenters.protection(_photo(user, {"text_cer": 0.14, "text_checked": True,
                                               "text_numbers_kept": False}))
    assert [b.key for b in prot.badges] == ["text-changed"]
    assert "a number reads differently" in prot.badges[0].text and "14%" in prot.badges[0].text
    assert not any("Text checked" in note for note in prot.notes or [])
    kept = presenters.protection(_photo(user, {"text_cer": 0.14, "text_checked": True,
                                               "text_numbers_kept": True}))
    assert kept.badges == []


def test_a_changed_word_is_a_badge_even_under_the_cer_floor(user):
    """"U.S. AIR FORCE" read as "U.S. AIR FONCE" is CER 0.05 on its line and a different word: the file
    says ``text_words_kept: false`` and the page shows the badge."""
    prot = presenters.protection(_photo(user, {"text_cer": 0.05, "text_checked": True,
                                               "text_words_kept": False}))
    assert [b.key for b in prot.badges] == ["text-changed"]
    assert "a word reads differently" in prot.badges[0].text
    assert not any("Text checked" in note for note in prot.notes or [])


def test_the_system_check_warns_when_ocr_is_missing(settings, monkeypatch):
    from codec.metrics import legibility

    def missing() -> str:
        raise legibility.OcrUnavailableError("the tesseract binary is not installed")

    monkeypatch.setattr(legibility, "tesseract_binary", missing)
    settings.GALLERY_CHECK_TEXT = True
    found = checks.check_text_ocr()
    assert [m.id for m in found] == ["gallery.W021"] and not found[0].is_serious()  # never stops a worker
    settings.GALLERY_CHECK_TEXT = False
    monkeypatch.delenv("GALLERY_CHECK_TEXT", raising=False)
    assert [m.id for m in checks.check_text_ocr()] == ["gallery.W022"]
    monkeypatch.setenv("GALLERY_CHECK_TEXT", "0")  # switched off on purpose: nothing to say
    assert checks.check_text_ocr() == []
    monkeypatch.delenv("GALLERY_CHECK_TEXT")
    import importlib.util

    real = importlib.util.find_spec

    def no_torch(name, *args):
        return None if name == "torch" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", no_torch)
    assert checks.check_text_ocr() == []  # the web image: no torch, no encoder, nothing to warn about


def test_no_warning_where_tesseract_works(settings):
    import shutil

    if shutil.which("tesseract") is None:
        pytest.skip("tesseract is not installed here (.ci/run installs it)")
    settings.GALLERY_CHECK_TEXT = True
    assert checks.check_text_ocr() == []


def test_the_system_check_warns_when_the_line_detector_is_missing(settings, monkeypatch):
    """Tesseract alone still checks text, but its line search misses small lines: a warning (W023)
    unless Tesseract's search was chosen on purpose."""
    import importlib.util
    import shutil

    if shutil.which("tesseract") is None:
        pytest.skip("tesseract is not installed here (.ci/run installs it)")
    real = importlib.util.find_spec

    def no_rapidocr(name, *args):
        return None if name == "rapidocr_onnxruntime" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", no_rapidocr)
    settings.GALLERY_CHECK_TEXT = True
    found = checks.check_text_ocr()
    assert [m.id for m in found] == ["gallery.W023"] and "rapidocr_onnxruntime" in found[0].msg
    monkeypatch.setenv("CODEC_TEXT_DETECTOR", "tesseract")
    assert checks.check_text_ocr() == []
