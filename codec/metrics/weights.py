"""Where the offline LPIPS weights live: ``$CODEC_METRICS_DIR`` → ``../shared/models/metrics`` → error."""

from __future__ import annotations

import os
from pathlib import Path

from codec.errors import ModelNotFoundError

ENV_VAR = "CODEC_METRICS_DIR"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
SHARED_DIR = PROJECT_ROOT.parent / "shared" / "models" / "metrics"

ALEX_FEATURES = "alexnet_features.pth"
ALEX_LIN = "lpips_alex_v0.1_lin.pth"

UPSTREAM = {
    ALEX_FEATURES: "torchvision AlexNet conv weights (alexnet-owt-7be5be79), keys features.{0,3,6,8,10}.*",
    ALEX_LIN: "LPIPS v0.1 alex linear layers (richzhang/PerceptualSimilarity lpips/weights/v0.1/alex.pth)",
}


def metrics_file(name: str) -> Path:
    """Absolute path of one metrics weight file, or `ModelNotFoundError` naming file and upstream."""
    candidates: list[Path] = []
    env = os.environ.get(ENV_VAR)
    if env:
        candidates.append(Path(env) / name)
    else:
        candidates.append(SHARED_DIR / name)
    for path in candidates:
        if path.is_file():
            return path
    where = " or ".join(str(p) for p in candidates)
    raise ModelNotFoundError(
        f"LPIPS weight file {name} not found at {where}: set {ENV_VAR} to the folder holding it "
        f"(upstream: {UPSTREAM.get(name, 'see ../shared/models/metrics/README.md')})"
    )
