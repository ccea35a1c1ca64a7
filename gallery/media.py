"""Compatibility alias: ``storage_response`` lives in ``gallery.storage`` (kept until views.py imports it)."""

from .storage import storage_response

__all__ = ["storage_response"]
