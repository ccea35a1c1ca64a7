from __future__ import annotations

from django.core.files.uploadedfile import SimpleUploadedFile

from gallery.forms import UploadForm


def upload(name="a.png", data=b"x"):
    return SimpleUploadedFile(name, data, content_type="image/png")


def test_preset_size_ignores_budget():
    form = UploadForm({"size": "small", "budget_bytes": "5000"}, {"files": [upload()]})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["budget_bytes"] is None
    assert len(form.cleaned_data["files"]) == 1


def test_budget_needs_a_number():
    form = UploadForm({"size": "budget"}, {"files": [upload()]})
    assert not form.is_valid()
    assert "budget_bytes" in form.errors


def test_budget_range_is_enforced():
    assert not UploadForm({"size": "budget", "budget_bytes": "10"}, {"files": [upload()]}).is_valid()
    form = UploadForm({"size": "budget", "budget_bytes": "4000"}, {"files": [upload()]})
    assert form.is_valid() and form.cleaned_data["budget_bytes"] == 4000


def test_needs_at_least_one_file():
    form = UploadForm({"size": "standard"}, {})
    assert not form.is_valid()
    assert "Choose at least one photo" in str(form.errors["files"])


def test_oversize_only_is_still_an_answerable_request():
    form = UploadForm({"size": "standard"}, {}, oversize=["big.jpg"])
    assert form.is_valid(), form.errors


def test_unknown_size_rejected():
    assert not UploadForm({"size": "huge"}, {"files": [upload()]}).is_valid()


def test_many_files():
    form = UploadForm({"size": "tiny"}, {"files": [upload("a.png"), upload("b.png"), upload("c.png")]})
    assert form.is_valid()
    assert [f.name for f in form.cleaned_data["files"]] == ["a.png", "b.png", "c.png"]
