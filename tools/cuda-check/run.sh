#!/usr/bin/env bash
# Builds the CUDA kernels of @kiln/gpu-kernels (native/cuda/*.cu) with nvcc, checks each
# op against the reference fixtures and times them. Run from the repository root:
#   tools/cuda-check/run.sh            # build, check, time
#   tools/cuda-check/run.sh --build    # compile only (no GPU needed)
# Fixtures are regenerated from the ops' references when the packages are built.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
if ! command -v nvcc >/dev/null 2>&1; then
  echo "cuda-check: nvcc not found; nothing to build" >&2
  exit 0
fi
arch="${CUDA_ARCH:-}"
if [ -z "$arch" ] && command -v nvidia-smi >/dev/null 2>&1; then
  cc="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '.')"
  [ -n "$cc" ] && arch="sm_$cc"
fi
arch="${arch:-sm_90}"
out="${CUDA_CHECK_OUT:-/tmp/kiln-cuda-check}"
mkdir -p "$out"
echo "cuda-check: nvcc $(nvcc --version | sed -n 's/.*release \([0-9.]*\).*/\1/p') for $arch"
nvcc -O3 -std=c++17 -arch="$arch" -o "$out/check" tools/cuda-check/check.cu native/cuda/gk_selective_scan.cu native/cuda/gk_moe.cu native/cuda/gk_quant.cu
echo "cuda-check: built $out/check"
[ "${1:-}" = "--build" ] && exit 0
if command -v node >/dev/null 2>&1 && [ -f packages/gpu-kernels/dist/index.js ] && [ -f packages/tensor/dist/index.js ]; then
  node tools/cuda-check/make-fixtures.mjs >/dev/null
fi
"$out/check" tools/cuda-check/fixtures "$@"
