#!/usr/bin/env bash
# Set up a fresh machine and run the test suite (README "Run the tests"; .ci/run calls this).
#   system:  ffmpeg (network-camera tests), Xvfb, x11-apps, x11-xserver-utils, imagemagick (kiosk screenshots)
#   python:  torch (CPU build, for the training tests), ferfast with its train/test/bench extras
#            (builds the C++ extension, with the CUDA kernel when nvcc is found), mypy and
#            tensorrt-stubs (type-checks the TensorRT code; installed without their TensorRT
#            dependency, which needs NVIDIA's own index).
# Extra arguments go to pytest (e.g. `bash scripts/test.sh benchmarks/`).
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends ffmpeg xvfb x11-apps x11-xserver-utils imagemagick >/dev/null
fi
python -m pip install -q torch==2.13.0
python -m pip install -q mypy && python -m pip install -q --no-deps tensorrt-stubs
python -m pip install -q ".[train,test,bench]"
python -m pytest "$@"
