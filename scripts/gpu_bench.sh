#!/usr/bin/env bash
# Real-GPU benchmark (issue #11): on a machine with an NVIDIA GPU, bitspike's end-to-end
# benchmark on Vulkan against the same models in PyTorch eager on CUDA, interleaved, for the
# `mnist` and `resnet19` presets at batch 64 and 128 (T = 4), then the table of medians and
# ratios (scripts/compare_e2e.py), after each preset's GPU time by kernel (`bench e2e --kernels`:
# where a step's time goes on the GPU). Needs: the NVIDIA Vulkan driver (`bitspike info` must name
# the GPU, not llvmpipe), a Python with CUDA torch and numpy (PYTHON, default python3), and a
# release build (built here if missing).
#
#   PYTHON=/path/to/venv/bin/python scripts/gpu_bench.sh [--rounds 3] [extra compare_e2e.py options]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
BIN="${BITSPIKE_BIN:-target/release/bitspike}"
[ -x "$BIN" ] || cargo build --release
export WGPU_BACKEND="${WGPU_BACKEND:-vulkan}"

echo "== adapter"
INFO="$("$BIN" info)"
echo "$INFO" | sed -n 1,3p
if echo "$INFO" | grep -qi "llvmpipe\|swiftshader\|Cpu,"; then
  echo "gpu_bench: bitspike sees a CPU adapter, not a GPU; install the GPU's Vulkan driver" >&2
  exit 1
fi
"$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || {
  echo "gpu_bench: $PYTHON has no CUDA torch" >&2
  exit 1
}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true

echo "== bitspike: GPU time by kernel of one training step and one inference batch (B = 64)"
for preset in mnist resnet19; do
  echo "-- $preset"
  "$BIN" bench e2e --preset "$preset" -T 4 --batch 64 --infer-batch 64 --steps 3 --warmup 1 \
    --kernels | sed -n '/GPU time by kernel/,$p' || echo "(kernel profile failed)"
done

echo "== bitspike (Vulkan) vs PyTorch eager (CUDA), interleaved"
exec "$PYTHON" scripts/compare_e2e.py --bitspike "$BIN" --python "$PYTHON" --device cuda \
  --presets mnist,resnet19 --batch 64 128 --timesteps 4 --json gpu_bench.json "$@"
