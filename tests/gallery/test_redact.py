"""User-facing error texts carry the reason, never server paths or credentials."""

from __future__ import annotations

import pytest

from gallery.redact import PATH, public_error, public_message


def real_oserror(tmp_path) -> OSError:
    try:
        (tmp_path / "missing-dir" / "x.sdl").open("rb")
    except OSError as exc:
        return exc
    raise AssertionError("no error")


def test_oserror_keeps_the_reason_drops_the_path(tmp_path):
    exc = real_oserror(tmp_path)
    assert str(tmp_path) in str(exc)  # what used to reach the photo page
    for text in (public_error(exc), public_message(str(exc)), public_message(f"encode failed: {exc}")):
        assert str(tmp_path) not in text and "No such file or directory" in text, text


@pytest.mark.parametrize(
    ("raw", "gone", "kept"),
    [
        ("[Errno 30] Read-only file system: '/data/media/latents/ab/cd.sdl'", "/data/media",
         "Read-only file system"),
        ("weights missing: /root/.cache/latent-gallery/taesd/encoder.safetensors (from upstream)",
         "/root/.cache", "weights missing"),
        ("cannot open C:\\srv\\media\\x.png", "C:\\srv", "cannot open"),
        ("broker redis://user:s3cret@redis.internal:6379/0 refused", "s3cret", "refused"),
        ("[Errno 13] Permission denied: '/srv/m'", "/srv/m", "Permission denied"),
    ],
)
def test_paths_and_credentials_are_removed(raw, gone, kept):
    text = public_message(raw)
    assert gone not in text and kept in text, text
    assert public_message(text) == text  # idempotent: safe to apply when storing and when showing


@pytest.mark.parametrize(
    "plain",
    ["The image is 6300×6300; the limit is 40 MP.", "budget 0.10 / 0.15 bpp is too small", "1/2 done", ""],
)
def test_ordinary_messages_are_unchanged(plain):
    assert public_message(plain) == plain


def test_placeholder_is_readable():
    assert public_message("open '/a/b/c'") == f"open {PATH}"
