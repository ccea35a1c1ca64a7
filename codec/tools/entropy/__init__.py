"""Measuring scripts for the entropy coders (``python -m codec.tools.entropy.measure``)."""
