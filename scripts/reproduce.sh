#!/usr/bin/env bash
# Set up a fresh machine and reproduce ferfast's shipped models and comparison tables
# (README "Main job"). Every step is resumable: rerun the script after an interruption.
#   1. train the shipped CNN on FER2013 Training, selecting on PublicTest     (runs/main)
#   2. evaluation report: metrics JSON, confusion matrix, curves, sample grid  (runs/main/report)
#   3. ONNX export with the PyTorch parity check  -> src/ferfast/models/ferfast_fp32.onnx
#   4. INT8 Q/DQ calibration, method comparison   -> src/ferfast/models/ferfast_int8.onnx, docs/int8.md
#   5. balancing strategies, model sizes, classical baselines -> docs/comparison.md
# Data: ../shared/data/fer2013 (image folders) or FERFAST_DATA=path/to/fer2013.csv.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
DATA=${FERFAST_DATA:-../shared/data/fer2013}
ARCH=${FERFAST_ARCH:-a3}
EPOCHS=${FERFAST_EPOCHS:-90}

python -m pip install -q torch==2.13.0
python -m pip install -q ".[train]"

python -m training.train --data "$DATA" --out runs/main --arch "$ARCH" --strategy sqrt \
  --epochs "$EPOCHS" --threads 1 --resume
python -m training.evaluate --data "$DATA" runs/main/best.pt --out runs/main/report
python -m training.export --data "$DATA" runs/main/best.pt src/ferfast/models/ferfast_fp32.onnx
python -m calibration.compare --fp32 src/ferfast/models/ferfast_fp32.onnx --ship

python -m training.compare strategies --data "$DATA" --epochs 5
python -m training.compare sizes --data "$DATA" --epochs 5
python -m training.compare classical --data "$DATA"
python -m training.compare table
