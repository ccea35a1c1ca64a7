"""Compatibility names for the shared-file resolver: everything here lives in :mod:`codec.resources`.

New code imports ``codec.resources``; this module keeps ``codec.weights.weight_file`` & co. working
for the model backends, training scripts and tests that already use them.
"""

from __future__ import annotations

from codec.resources import (  # noqa: F401 (re-exported names)
    KINDS,
    NO_SHARED_FALLBACK_ENV,
    SHA256,
    _clear_cache,
    candidate_dirs,
    kodak_dir,
    metrics_dir,
    project_root,
    resolve_dir,
    resolve_file,
    sha256_file,
    shared_fallback_enabled,
    shared_root,
    train_dir,
    verify_sha256,
    weight_file,
)
from codec.resources.locations import SharedKind  # noqa: F401

