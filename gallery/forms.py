"""Upload form: one or many files plus a size choice. Per-file checks live in validation.py.

The form only parses the request; it never imports the service layer (services use the form's
cleaned data, not the other way round). Size choices and budget bounds come from gallery/sizes.py.
"""

from __future__ import annotations

from django import forms

from .models import Photo
from .sizes import MAX_BUDGET_BYTES, MIN_BUDGET_BYTES


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """A file field that returns a list of uploaded files (possibly empty)."""

    widget = MultipleFileInput

    def __init__(self, *args, **kwargs) -> None:
        # An empty file is rejected per file by the upload validator ("The file is empty."); a
        # form-level error here would throw away the good files sent with it.
        kwargs.setdefault("allow_empty_file", True)
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        if data in (None, "", []):
            return []
        files = data if isinstance(data, list | tuple) else [data]
        return [super(MultipleFileField, self).clean(f, initial) for f in files]


class UploadForm(forms.Form):
    files = MultipleFileField(
        required=False,
        label="Photos",
        widget=MultipleFileInput(attrs={"accept": "image/*", "multiple": True}),
    )
    size = forms.ChoiceField(
        choices=Photo.Size.choices, initial=Photo.Size.STANDARD, widget=forms.RadioSelect
    )
    budget_bytes = forms.IntegerField(
        required=False,
        min_value=MIN_BUDGET_BYTES,
        max_value=MAX_BUDGET_BYTES,
        label="Byte budget",
        help_text=f"With “Explicit byte budget”: {MIN_BUDGET_BYTES}–{MAX_BUDGET_BYTES:,} bytes per photo.",
    )

    def __init__(self, *args, oversize: list[str] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.oversize = list(oversize or [])

    def clean(self):
        data = super().clean()
        if data.get("size") == Photo.Size.BUDGET and not data.get("budget_bytes"):
            self.add_error("budget_bytes", "Enter a byte budget, or pick one of the preset sizes.")
        if data.get("size") != Photo.Size.BUDGET:
            data["budget_bytes"] = None
        if not data.get("files") and not self.oversize and "files" not in self.errors:
            self.add_error("files", "Choose at least one photo to upload.")
        return data
