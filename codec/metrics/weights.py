"""File names of the offline LPIPS weights; they resolve through :mod:`codec.resources` (one resolver).

Order: ``$CODEC_METRICS_DIR`` → ``../shared/models/metrics`` → user cache → download (where an
upstream serves the exact bytes; see ``codec.resources.catalog``).
"""

from __future__ import annotations

from codec.resources import metrics_file

ALEX_FEATURES = "alexnet_features.pth"
ALEX_LIN = "lpips_alex_v0.1_lin.pth"

__all__ = ["ALEX_FEATURES", "ALEX_LIN", "metrics_file"]
