"""Typed errors of the codec.

Every failure a caller can provoke with input (bytes, images, options) is a
``CodecError`` subclass, so callers (the CLI, the gallery worker) can catch one
type and turn it into a clean message / exit code.
"""

from __future__ import annotations


class CodecError(Exception):
    """Base class for every error the codec raises on bad input or setup."""


class BitstreamError(CodecError):
    """The bytes are not a valid bitstream: corrupt, truncated, hostile or absurd."""


class UnsupportedVersionError(BitstreamError):
    """The bitstream has a format version (or a critical feature) this build does not know."""


class InputImageError(CodecError):
    """The input image cannot be read or is outside the supported limits."""


class ModelNotFoundError(CodecError):
    """Weights for a model are missing; the message says which file and where to get it."""


class WeightsChecksumError(CodecError):
    """A weight file exists but its sha256 does not match the expected one."""


class BudgetError(CodecError):
    """The requested byte budget cannot be met (e.g. smaller than the fixed header)."""


class UsageError(CodecError):
    """Invalid options (unknown model, conflicting rate arguments, …)."""
