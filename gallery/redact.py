"""Messages that reach users (photo errors, JSON status, pages) without server details.

An exception's text often names server paths (``[Errno 30] Read-only file system:
'/data/media/latents/…'``), a missing weights file, or a URL with a password. Users get the
reason; the log and the admin keep the full text. ``public_message`` is idempotent, so it is safe
both where an error is stored and where it is shown.
"""

from __future__ import annotations

import os
import re

PATH = "[server path]"

_ERRNO = re.compile(r"\[Errno (\d+)\] ([^:'\"]+?)(?::\s*(?:'[^']*'|\"[^\"]*\"|\S+))*(?=$|[\s.;,)])")
_URL_CREDENTIALS = re.compile(r"\b([a-z][a-z0-9+.\-]*://)[^\s/@'\"]+@[^\s'\"]*", re.I)
_WINDOWS_PATH = re.compile(r"(?<![\w])[A-Za-z]:\\[^\s'\"]+")
# An absolute POSIX path with at least two segments, at the start of the text or after a space,
# quote, bracket, '=' or ':' (so "0.10 / 2" or "1/2" stay, "/data/media/x" goes).
_POSIX_PATH = re.compile(r"(?:(?<=^)|(?<=[\s'\"(\[=:,]))/(?:[^\s/'\"]+/)+[^\s'\"),\]]*")
_QUOTED_PLACEHOLDER = re.compile(r"(['\"])" + re.escape(PATH) + r"\1")


def public_message(text: str) -> str:
    """``text`` with server paths and credentials replaced; an OSError's text becomes its reason."""
    if not text:
        return text
    text = _ERRNO.sub(lambda m: m.group(2).strip(), text)
    text = _URL_CREDENTIALS.sub(lambda m: m.group(1) + "[hidden]", text)
    text = _WINDOWS_PATH.sub(PATH, text)
    text = _POSIX_PATH.sub(PATH, text)
    return _QUOTED_PLACEHOLDER.sub(PATH, text)


def public_error(exc: BaseException) -> str:
    """A user-facing reason for an exception: an OSError's ``strerror``, else its redacted text."""
    if isinstance(exc, OSError) and exc.errno and exc.strerror:
        return exc.strerror or os.strerror(exc.errno)
    return public_message(str(exc)) or type(exc).__name__
