# Sourced by the set-up scripts (run from the repository root): sets PY, the Python that installs
# and runs ferfast, and defines apt_install and pip_check.
#   default                 a virtual environment in .venv, made with ${PYTHON:-python3} on the
#                           first run and reused after (delete .venv to start afresh)
#   FERFAST_PYTHON=current  ${PYTHON:-python3} itself, no venv (an environment you manage)
#   FERFAST_VENV=DIR        another venv directory (scripts/test-floors.sh ignores it and uses
#                           FERFAST_FLOORS_VENV, default build/floors-venv)
# Debian's python3 needs python3-venv (ensurepip) for the venv and python3-dev (Python.h) to build
# the extension: as root with apt-get they are installed when missing.
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore

# apt_install PKG...: install the Debian packages that are missing (as root with apt-get),
# else name them.
apt_install() {
  command -v dpkg >/dev/null || return 0
  local missing=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "note: missing Debian packages, not root: apt-get install ${missing[*]}" >&2
  fi
}

# pip_check: pip's dependency check, less tensorrt-stubs' requirement on tensorrt (the stubs are
# installed without it on purpose: it comes from NVIDIA's index and needs a GPU).
pip_check() {
  local problems
  problems=$("$PY" -m pip check 2>&1 | grep -v -e '^tensorrt-stubs .* requires tensorrt' \
    -e '^No broken requirements' || true)
  [ -z "$problems" ] || printf 'warning: pip check:\n%s\n' "$problems" >&2
}

# use_gui_opencv: the GUI OpenCV wheel over ferfast's headless one, at the same version, when
# cv2 cannot open windows. Both wheels install the same cv2 package: the GUI files stay until the
# headless wheel is reinstalled, and pip keeps seeing ferfast's requirement met.
use_gui_opencv() {
  "$PY" -c 'import sys; from ferfast.stream.kiosk import opencv_gui; sys.exit(not opencv_gui())' ||
    "$PY" -m pip install -q --force-reinstall --no-deps \
      "opencv-python==$("$PY" -c 'import cv2; print(cv2.__version__)').*"
}

FERFAST_BASE_PYTHON=${PYTHON:-python3}
if ! command -v "$FERFAST_BASE_PYTHON" >/dev/null; then
  echo "error: no $FERFAST_BASE_PYTHON on PATH (set PYTHON=/path/to/python3)" >&2
  exit 1
fi
# Build needs of a Debian system Python (a pyenv or conda Python brings its own).
if [ "$("$FERFAST_BASE_PYTHON" -c 'import sys; print(sys.prefix)')" = /usr ]; then
  apt_install g++ python3-dev python3-venv
fi
case ${FERFAST_PYTHON:-venv} in
  current)
    PY=$(command -v "$FERFAST_BASE_PYTHON")
    ;;
  venv)
    FERFAST_VENV=${FERFAST_VENV:-.venv}
    if ! "$FERFAST_VENV/bin/python" -c '' 2>/dev/null; then
      echo "creating the virtual environment $FERFAST_VENV ($FERFAST_BASE_PYTHON)" >&2
      "$FERFAST_BASE_PYTHON" -m venv --clear "$FERFAST_VENV"
    fi
    PY=$(cd "$FERFAST_VENV/bin" && pwd)/python
    ;;
  *)
    echo "error: FERFAST_PYTHON must be 'venv' (the default) or 'current', not '$FERFAST_PYTHON'" >&2
    exit 1
    ;;
esac
echo "python: $PY ($("$PY" -c 'import sys; print(sys.version.split()[0])'))" >&2
