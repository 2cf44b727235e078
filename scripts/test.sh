#!/usr/bin/env bash
# Set up a fresh machine and run the test suite (README "Run the tests"; .ci/run calls this).
#   python:  a virtual environment in .venv, reused on the next run; FERFAST_PYTHON=current uses
#            ${PYTHON:-python3} itself instead (scripts/python-env.sh)
#   system:  ffmpeg (network-camera tests), Xvfb, x11-apps, x11-xserver-utils, imagemagick (kiosk
#            screenshots), mosquitto (the MQTT tests' broker), installed when missing as root with
#            apt-get
#   packages: torch (CPU build, for the training tests), ferfast with its train/test/bench/mqtt/ray
#            extras (builds the C++ extension, with the CUDA kernel when nvcc is found), the GUI
#            OpenCV wheel over ferfast's headless one (the kiosk tests open windows),
#            tensorrt-stubs (the test extra's mypy type-checks the TensorRT code with them;
#            installed without their TensorRT dependency, which needs NVIDIA's own index).
# Extra arguments go to pytest (e.g. `bash scripts/test.sh benchmarks/`).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/python-env.sh
apt_install ffmpeg xvfb x11-apps x11-xserver-utils imagemagick mosquitto
"$PY" -m pip install -q torch==2.13.0
# --no-warn-conflicts: pip_check below reports conflicts, less the expected tensorrt-stubs one.
"$PY" -m pip install -q --no-warn-conflicts ".[train,test,bench,mqtt,metrics,ray]"
use_gui_opencv  # the kiosk tests open windows
"$PY" -m pip install -q --no-deps tensorrt-stubs
pip_check
"$PY" -m pytest "$@"
