#!/usr/bin/env bash
# The device check for a machine with an NVIDIA GPU (15 minutes of machine time in all; this
# script aims to finish in under 8). Run from a built checkout (pnpm install && pnpm build):
#   bash tools/gpu-check/run.sh              # everything; results under $OUT (default /tmp/kiln-gpu-check)
#   bash tools/gpu-check/run.sh --dry-run    # say what would run here and what cannot, run nothing long
# Steps, each bounded by a timeout, each reported as ran / failed / not run (with why):
#   1. WebGPU on the NVIDIA driver's Vulkan: installs the Vulkan loader (Debian packages only)
#      when it is missing, then asks Dawn for an adapter (probe.mjs);
#   2. the CUDA kernel checks (tools/cuda-check/run.sh: build with nvcc, check against fixtures, time);
#   3. the GPU test passes (each package's test:webgpu) on that adapter;
#   4. the webgpu benchmarks against kiln-native in the same process (bench.mjs), and PyTorch
#      on CUDA when python3 has a CUDA torch (torch_peer.py).
# Everything printed is also written to $OUT/summary.txt; JSON results to $OUT/*.json.
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
OUT="${OUT:-/tmp/kiln-gpu-check}"
mkdir -p "$OUT"
dry=0
[ "${1:-}" = "--dry-run" ] && dry=1
summary="$OUT/summary.txt"
: >"$summary"
say() { echo "gpu-check: $*" | tee -a "$summary"; }
# step NAME SECONDS COMMAND...: runs with a timeout, logs to $OUT/NAME.log, records the outcome.
step() {
  local name="$1" secs="$2"
  shift 2
  local t0=$SECONDS
  timeout --kill-after=10 "$secs" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  local took=$((SECONDS - t0))
  case $rc in
    0) say "$name: ran (${took} s)" ;;
    124 | 137) say "$name: NOT FINISHED, stopped after its ${secs} s budget (see $OUT/$name.log)" ;;
    *) say "$name: FAILED, exit $rc after ${took} s (see $OUT/$name.log)" ;;
  esac
  tail -n 40 "$OUT/$name.log"
  return $rc
}

say "started $(date -u +%FT%TZ) on $(hostname), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), load $(cut -d' ' -f1-3 /proc/loadavg)"

# 0. Is there an NVIDIA GPU at all?
gpu=""
if command -v nvidia-smi >/dev/null 2>&1; then
  gpu="$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)"
fi
if [ -n "$gpu" ]; then
  say "NVIDIA GPU: $gpu"
else
  say "no NVIDIA GPU here (nvidia-smi missing or finds none): the CUDA checks and the hardware WebGPU benchmarks cannot run"
fi
if [ ! -f packages/tensor/dist/index.js ] || [ ! -f packages/gpu-kernels/dist/index.js ]; then
  say "the packages are not built: run 'npx -y pnpm@12.4.2 install --frozen-lockfile && npx -y pnpm@12.4.2 build' first"
  exit 2
fi

# 1. WebGPU on the driver's Vulkan. Dawn loads libvulkan.so.1; the NVIDIA driver ships its ICD
# (/usr/share/vulkan/icd.d/nvidia_icd.json). Debian packages only.
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1'; then
  if [ $dry = 1 ]; then
    say "would install libvulkan1 (the Vulkan loader): apt-get install -y libvulkan1"
  elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libvulkan1 vulkan-tools >/dev/null 2>&1 || say "apt-get install libvulkan1 failed"
  else
    say "libvulkan.so.1 is missing and cannot be installed here (needs root and apt-get)"
  fi
fi
if [ -n "$gpu" ] && ! ls /usr/share/vulkan/icd.d/nvidia_icd*.json /etc/vulkan/icd.d/nvidia_icd*.json >/dev/null 2>&1; then
  say "no NVIDIA Vulkan ICD file found: WebGPU will see only a software adapter, if any (install the driver's Vulkan part)"
fi
adapter="$(timeout 60 node tools/gpu-check/probe.mjs 2>/dev/null | tail -1)"
probe_rc=$?
echo "$adapter" >"$OUT/adapter.json"
case $probe_rc in
  0) say "WebGPU adapter (hardware): $adapter" ;;
  3) say "WebGPU adapter is software only (no GPU through Vulkan): $adapter" ;;
  *) say "no WebGPU adapter: $adapter" ;;
esac

if [ $dry = 1 ]; then
  say "dry run: would run tools/cuda-check/run.sh $([ -n "$gpu" ] && echo '(GPU present)' || echo '(skipped: no GPU)'), the test:webgpu passes, bench.mjs $([ $probe_rc = 0 ] && echo full || echo '--quick'), torch_peer.py $(python3 -c 'import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null && echo '(CUDA torch found)' || echo '(skipped: no CUDA torch)')"
  say "dry run done"
  exit 0
fi

# 2. CUDA kernel checks (about 1 minute: build, fixtures, check, time).
if [ -n "$gpu" ] && command -v nvcc >/dev/null 2>&1; then
  CUDA_CHECK_OUT="$OUT/cuda" step cuda-check 180 bash tools/cuda-check/run.sh
elif [ -n "$gpu" ]; then
  say "cuda-check: NOT RUN: nvcc is not installed (apt-get install nvidia-cuda-toolkit, or the CUDA toolkit's nvcc on PATH)"
else
  say "cuda-check: NOT RUN: no NVIDIA GPU"
fi

# 3. The GPU test passes (the WGSL kernels forward and backward against their references, the read counts).
if [ $probe_rc = 0 ] || [ $probe_rc = 3 ]; then
  step test-webgpu-tensor 120 npx -y pnpm@12.4.2 --filter @kiln/tensor run test:webgpu
  step test-webgpu-gpu-kernels 120 npx -y pnpm@12.4.2 --filter @kiln/gpu-kernels run test:webgpu
else
  say "test:webgpu: NOT RUN: no WebGPU adapter"
fi

# 4. Benchmarks: full shapes on a hardware adapter, the quick ones on a software adapter.
if [ $probe_rc = 0 ] || [ $probe_rc = 3 ]; then
  torch_json=""
  if python3 -c 'import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    size=$([ $probe_rc = 0 ] && echo full || echo quick)
    step torch-peer 90 python3 tools/gpu-check/torch_peer.py --"$size" --json "$OUT/torch.json" && torch_json="--torch $OUT/torch.json"
  else
    say "torch-peer: NOT RUN: python3 has no CUDA-enabled torch"
  fi
  quick=$([ $probe_rc = 0 ] || echo --quick)
  # shellcheck disable=SC2086
  step bench 300 node tools/gpu-check/bench.mjs $quick --budget-s 240 --json "$OUT/bench.json" $torch_json
else
  say "bench: NOT RUN: no WebGPU adapter"
fi
say "finished $(date -u +%FT%TZ); results in $OUT"
