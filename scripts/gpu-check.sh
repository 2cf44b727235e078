#!/usr/bin/env bash
# GPU check for a machine with an NVIDIA GPU: builds ferfast._core with CUDA (and the C++ TensorRT
# runtime when TensorRT is found), then runs scripts/gpu_check.py: CUDA preprocess vs CPU on the
# photos, each GPU backend vs the CPU INT8 model on 1,000 FER2013 test faces (argmax agreement
# >= 99%), latency per face at batch 1 and 64. Every part without its GPU, library or data prints
# SKIP with the reason; the exit status is non-zero only when a check that ran failed.
# Unattended; a few minutes (the TensorRT engine build is the longest part).
# Options: --no-build (use the installed extension as it is). Environment: PYTHON (default python3),
# SHARED (default ../shared).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
SHARED="${SHARED:-../shared}"
BUILD=1
for arg in "$@"; do
  case "$arg" in
    --no-build) BUILD=0 ;;
    *) echo "gpu-check.sh: unknown option $arg (options: --no-build)" >&2; exit 2 ;;
  esac
done

gpu_present() {
  command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q "^GPU"
}

if [ "$BUILD" = 0 ]; then
  echo "[SKIP] build: --no-build (using the installed ferfast._core)"
elif ! gpu_present; then
  echo "[SKIP] build: no NVIDIA GPU (nvidia-smi lists none); keeping the installed ferfast._core"
elif ! command -v nvcc >/dev/null 2>&1 && [ ! -x /usr/local/cuda/bin/nvcc ]; then
  echo "[SKIP] build: no CUDA compiler (nvcc); keeping the installed ferfast._core"
else
  echo "[INFO] build: ferfast._core with CUDA (TensorRT runtime when found)"
  "$PY" -m pip install -q --no-build-isolation --no-deps -e . \
    -C cmake.define.FERFAST_WITH_CUDA=ON -C cmake.define.FERFAST_WITH_TENSORRT=AUTO
fi
"$PY" -c "import ferfast._core as c; print(f'[INFO] _core: WITH_CUDA={c.WITH_CUDA} WITH_TENSORRT={c.WITH_TENSORRT}')"
exec "$PY" scripts/gpu_check.py --shared "$SHARED"
