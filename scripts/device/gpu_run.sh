#!/usr/bin/env bash
# The GPU checks of issue 13, as ONE command on a lent device machine (run THERE, repo root, after
# scripts/device/prepare.sh here; carry .device-carry and .whl). Writes everything under $OUT.
#   1. throughput: bare TAESD images/s and the worker path's photos/s at batch 1/8/32 with dynamic
#      batching (codec.tools.bench.throughput), fp16 on CUDA, plus alone-vs-batched and GPU-vs-CPU PSNR
#   2. the codec's own tests that exercise devices (quick ones) on the GPU machine
# Dry run on a CPU box: SKIP_WHL=1 DEVICE=cpu PHOTOS=2 BATCHES=1,2 SIZE=192x128 PATH=.venv/bin:$PATH
# Budget: ≈ 6–8 minutes of a 10-minute call on an H200 (PHOTOS=64); PHOTOS/BATCHES shrink it.
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if [ -z "${SKIP_WHL:-}" ] && ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export CODEC_MODEL_DIR=$PWD/.device-carry/models/taesd CODEC_METRICS_DIR=$PWD/.device-carry/models/metrics
export CODEC_KODAK_DIR=$PWD/.device-carry/kodak CODEC_OFFLINE=1
DEVICE=${DEVICE:-cuda}
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || true
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"; } \
  | tee "$OUT/machine.txt"
timeout ${BENCH_TIMEOUT:-420} python3 -m codec.tools.bench.throughput --device "$DEVICE" \
  --images "$CODEC_KODAK_DIR" --photos "${PHOTOS:-64}" --batches "${BATCHES:-1,8,32}" \
  --effort "${EFFORT:-default}" --size "${SIZE:-768x512}" --out "$OUT" 2>&1 | tee "$OUT/throughput.log"
echo "bench exit: ${PIPESTATUS[0]}"
