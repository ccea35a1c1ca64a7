"""Compatibility alias: stored names live in ``gallery.storage`` (kept until views.py imports it)."""

from .storage import LATENT_CONTENT_TYPE, LATENT_EXT, comparison_name, content_file, latent_name

__all__ = ["LATENT_CONTENT_TYPE", "LATENT_EXT", "comparison_name", "content_file", "latent_name"]
