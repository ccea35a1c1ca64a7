#!/usr/bin/env bash
# Prepare a GPU run on a lent device machine (`device` tool; see scripts/device/README.md).
# Run HERE, in the repo root: fills the git-ignored .device-carry/ (TAESD + LPIPS weights, a few
# Kodak photos) and .whl/ (cp312 manylinux wheels of what the device image lacks: diffusers,
# constriction, pytorch-msssim). Both are named in the run's `carry`; together ≈ 40 MiB (limit 64).
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARED=${SHARED:-../shared}
PHOTOS=${PHOTOS:-8}
rm -rf .device-carry && mkdir -p .device-carry/models/taesd .device-carry/models/metrics .device-carry/kodak
cp "$SHARED"/models/taesd/taesd_encoder.safetensors "$SHARED"/models/taesd/taesd_decoder.safetensors \
   .device-carry/models/taesd/
cp "$SHARED"/models/metrics/alexnet_features.pth "$SHARED"/models/metrics/lpips_alex_v0.1_lin.pth \
   .device-carry/models/metrics/
# landscape Kodak photos only: the bench turns portraits anyway, and one size batches best
n=0
for f in "$SHARED"/data/kodak/kodim*.png; do
  ${PY:-.venv/bin/python} - "$f" <<'PY' && { cp "$f" .device-carry/kodak/; n=$((n + 1)); }
import sys
from PIL import Image
w, h = Image.open(sys.argv[1]).size
sys.exit(0 if w > h else 1)
PY
  [ "$n" -ge "$PHOTOS" ] && break
done
rm -rf .whl && mkdir -p .whl
PIP="${PIP:-.venv/bin/python -m pip}"
want() { grep -E "^$1==" requirements.txt | head -1; }
$PIP download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform any -d .whl "$(want diffusers)" "$(want constriction)" "$(want pytorch-msssim)" \
  "importlib-metadata" "zipp"
du -sh .device-carry .whl
echo "carry: [\".device-carry\", \".whl\"]; command: bash scripts/device/gpu_run.sh"
