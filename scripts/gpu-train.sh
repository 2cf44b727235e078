#!/usr/bin/env bash
# Train the teacher recipes on a lent GPU machine in one run of under 10 minutes, then run
# scripts/gpu-check.sh there too. The FER2013 faces travel as a small git-ignored pack made here:
#
#   python -m training.data --pack cache/fer2013_pack.npz     # here, once: ~20 MB
#   device run: carry ["cache/fer2013_pack.npz"], timeout_s 600, command scripts/gpu-train.sh
#
# Writes into $OUT (default runs/gpu-out): <recipe>/{teacher.onnx,manifest.json,train.log} per
# recipe of training/gpu.py, gpu-train.json, gpu-check.log (8 files: what a device run brings
# back). Bring an artifact home with cp -r into training/teachers/<recipe> (its manifest names
# the GPU in "provenance"). Environment: PYTHON (default python3), PACK (default
# cache/fer2013_pack.npz), MINUTES (training budget, default 5.5), GPU_TRAIN_ARGS (more flags for
# training.gpu, e.g. "--device cpu --tiny"). Options: --no-check (skip the GPU check).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
PACK="${PACK:-cache/fer2013_pack.npz}"
OUT="${OUT:-runs/gpu-out}"
CHECK=1
for arg in "$@"; do
  case "$arg" in
    --no-check) CHECK=0 ;;
    *) echo "gpu-train.sh: unknown option $arg (options: --no-check)" >&2; exit 2 ;;
  esac
done
if [ ! -f "$PACK" ]; then
  echo "gpu-train.sh: no data pack $PACK (make it with python -m training.data --pack $PACK)" >&2
  exit 2
fi
mkdir -p "$OUT"
SHARED="${SHARED:-../shared}"
FACES=()
if [ "$CHECK" = 1 ] && [ ! -d "$SHARED/data/fer2013/test" ]; then
  # no FER2013 on this machine: the check reads the pack's (lossless) PublicTest faces instead
  SHARED="$(mktemp -d)"
  FACES=(--faces-to "$SHARED")
fi
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L || true
status=0
# shellcheck disable=SC2086  # GPU_TRAIN_ARGS is a list of flags
"$PY" -m training.gpu --data "$PACK" --out "$OUT" --minutes "${MINUTES:-5.5}" \
  "${FACES[@]}" ${GPU_TRAIN_ARGS:-} || status=$?
if [ "$CHECK" = 1 ]; then
  # the check's own failures are reported in its log and exit status, after the training's
  PYTHON="$PY" SHARED="$SHARED" scripts/gpu-check.sh > "$OUT/gpu-check.log" 2>&1 || status=$((status ? status : 3))
  tail -n 40 "$OUT/gpu-check.log"
fi
exit "$status"
