"""Typed errors of the codec.

Every failure a caller can provoke with input (bytes, images, options) is a
``CodecError`` subclass, so callers (the CLI, the gallery worker) can catch one
type and turn it into a clean message / exit code.
"""

from __future__ import annotations


class CodecError(Exception):
    """Base class for every error the codec raises on bad input or setup.

    Callers must not treat every ``CodecError`` alike: an :class:`InputError` is about the bytes or
    image handed in (retrying cannot help; the input may be dropped), a :class:`SetupError` is about
    the machine or its configuration (weights, options, memory: retry later, keep the input).
    """


class InputError(CodecError):
    """The input (image, bitstream or budget for this image) is unusable: retrying cannot help."""


class SetupError(CodecError):
    """The codec's environment or options are wrong: the input is fine, keep it and retry later."""


class BitstreamError(InputError):
    """The bytes are not a valid bitstream: corrupt, truncated, hostile or absurd."""


class UnsupportedVersionError(BitstreamError):
    """The bitstream has a format version (or a critical feature) this build does not know."""


class DecodeLimitError(BitstreamError):
    """The stream asks for more decode work than the caller's limits allow (`codec.options.DecodeLimits`):
    refused from its header, before anything is decoded. ``work`` is the estimate, ``limit`` the limit
    it broke (work units of `codec.container.cost`)."""

    def __init__(self, message: str, *, work: float | None = None, limit: float | None = None) -> None:
        super().__init__(message)
        self.work = work
        self.limit = limit


class InputImageError(InputError):
    """The input image cannot be read or is outside the supported limits."""


class ModelNotFoundError(SetupError):
    """Weights for a model are missing; the message says which file and where to get it."""


class WeightsChecksumError(SetupError):
    """A weight file exists but its sha256 does not match the expected one."""


class BudgetError(InputError):
    """The requested byte budget cannot be met (e.g. smaller than the fixed header)."""


class UsageError(SetupError):
    """Invalid options (unknown model, conflicting rate arguments, …)."""


class ResourceExhaustedError(SetupError):
    """The machine ran out of memory (or another resource) for this input: retry elsewhere or later."""
