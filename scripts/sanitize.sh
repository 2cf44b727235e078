#!/usr/bin/env bash
# Build ferfast._core with AddressSanitizer + UndefinedBehaviorSanitizer in its own virtual
# environment (build/asan-venv) and run the preprocess and engine tests against it.
# Any sanitizer report aborts the run (-fno-sanitize-recover); leak checking is off because the
# CPython interpreter itself is not instrumented. Needs GCC (or Clang) with libasan/libubsan.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
PY="${PYTHON:-python3}"
VENV=build/asan-venv
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q numpy "opencv-python-headless<5" onnxruntime onnx tqdm \
  pytest hypothesis "scikit-build-core>=0.11" "pybind11>=2.12"
"$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation --force-reinstall \
  -C build-dir=build/asan -C cmake.build-type=RelWithDebInfo -C install.strip=false \
  -C cmake.define.FERFAST_SANITIZE=address,undefined -C cmake.define.FERFAST_WITH_CUDA=OFF \
  -C cmake.define.FERFAST_WITH_TENSORRT=OFF .
ASAN_LIB="$(${CXX:-c++} -print-file-name=libasan.so)"
[ -f "$ASAN_LIB" ] || { echo "sanitize.sh: libasan.so not found ($ASAN_LIB)" >&2; exit 1; }
# libstdc++ is preloaded too: ASan's __cxa_throw interceptor needs it resolved at start-up, or the
# first C++ exception inside an uninstrumented library (OpenCV, ONNX Runtime) aborts the process.
STDCXX_LIB="$(${CXX:-c++} -print-file-name=libstdc++.so)"
echo "sanitize.sh: _core built with -fsanitize=address,undefined; running tests under $ASAN_LIB"
LD_PRELOAD="$ASAN_LIB $STDCXX_LIB" \
ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  "$VENV/bin/python" -m pytest -q -p no:cacheprovider \
  tests/test_preprocess.py tests/test_preprocess_kernel.py tests/test_preprocess_property.py \
  tests/test_preprocess_threads.py \
  tests/test_engine.py "$@"
