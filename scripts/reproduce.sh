#!/usr/bin/env bash
# Set up a fresh machine and reproduce ferfast's shipped models and comparison tables
# (README "Main job"). Every step is resumable: rerun the script after an interruption.
#   1. train the first teacher (a3) on FER2013 Training, selecting on PublicTest  (runs/main)
#   2. a3 again, distilled from 1, weight EMA                                     (runs/kd)
#   3. the shipped f, distilled from the mean of 1 and 2, weight EMA              (runs/kd_f)
#      evaluation report (metrics JSON, confusion, curves, sample grid: runs/kd_f/report) and
#      ONNX export with the PyTorch parity check -> src/ferfast/models/ferfast_fp32.onnx
#   4. INT8 Q/DQ calibration, method comparison   -> src/ferfast/models/ferfast_int8.onnx, docs/int8.md
#   5. balancing strategies, model sizes, classical baselines -> docs/comparison.md
# Data: ../shared/data/fer2013 (image folders) or FERFAST_DATA=path/to/fer2013.csv.
# Python: a virtual environment in .venv (shared with scripts/test.sh, reused); FERFAST_PYTHON=current
# uses ${PYTHON:-python3} itself (scripts/python-env.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/python-env.sh
DATA=${FERFAST_DATA:-../shared/data/fer2013}
EPOCHS=${FERFAST_EPOCHS:-90}

"$PY" -m pip install -q torch==2.13.0
"$PY" -m pip install -q ".[train]"

KD=(--strategy sqrt --epochs "$EPOCHS" --distill-alpha 0.5 --distill-temp 3 --ema 0.999 --resume)
"$PY" -m training.train --data "$DATA" --out runs/main --arch a3 --strategy sqrt \
  --epochs "$EPOCHS" --threads 1 --resume
"$PY" -m training.export --data "$DATA" runs/main/best.pt runs/main/teacher.onnx
"$PY" -m training.train --data "$DATA" --out runs/kd --arch a3 --threads 2 \
  --teacher runs/main/teacher.onnx "${KD[@]}"
"$PY" -m training.export --data "$DATA" runs/kd/best.pt runs/kd/student.onnx
"$PY" -m training.train --data "$DATA" --out runs/kd_f --arch f --threads 2 \
  --teacher runs/main/teacher.onnx,runs/kd/student.onnx "${KD[@]}"
"$PY" -m training.evaluate --data "$DATA" runs/kd_f/best.pt --out runs/kd_f/report
"$PY" -m training.export --data "$DATA" runs/kd_f/best.pt src/ferfast/models/ferfast_fp32.onnx
"$PY" -m calibration.compare --fp32 src/ferfast/models/ferfast_fp32.onnx --ship

"$PY" -m training.compare strategies --data "$DATA" --epochs 5
"$PY" -m training.compare sizes --data "$DATA" --epochs 5
"$PY" -m training.compare classical --data "$DATA"
"$PY" -m training.compare table
