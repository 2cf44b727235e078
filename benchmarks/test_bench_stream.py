"""End-to-end ferfast-stream throughput on a 640x480, 30 fps video of one real face.

``pytest benchmarks/test_bench_stream.py``: runs the whole CLI pipeline (capture thread decoding
the file, YuNet at a reduced input size on its own thread every ``--detect-every`` frames,
preprocess, model, tracking, JSON Lines) in-process and reports its frames per second (from the
run summary: first frame in to last result out), and, in a separate process, the time from
launch to the first result.

``test_vs_fer`` runs ferfast-stream (default flags) and the peer ``fer`` package on the same file
in one session, alternating, and reports the ratio of their median fps (target: 10x). ``fer`` is
not a project dependency: it runs in a throwaway virtual environment, ``build/fer-venv``
(``$FERFAST_FER_VENV``), created on first use (``pip install tensorflow-cpu ...`` and
``fer --no-deps``, which leaves out facenet-pytorch: fer only imports it for ``mtcnn=True``;
1.9 GB installed). Where it cannot be created the test skips with the reason, and the other tests
compare against the recorded 38 fps of ``fer`` on this machine. With
``FERFAST_BENCH_STRICT=1`` the targets are asserted (off by default: on a shared 2-core machine
other jobs set the pace).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from stream_support import (
    cli_command,
    cli_env,
    count_lines,
    engine_args,
    read_jsonl,
    wait_for,
    write_face_video,
)
from tiny_model import build_tiny_model

from ferfast.models import BUNDLED, MODELS_DIR
from ferfast.stream.cli import main
from ferfast.stream.tracking import DEFAULT_DETECT_EVERY

PEER_FPS = 38.0  # the `fer` package on this machine (recorded figure, when fer cannot run here)
TARGET_RATIO = 10.0
TARGET_FPS = TARGET_RATIO * PEER_FPS
N_FRAMES = 300  # 10 s of video
MODELS = ["tiny", *sorted(BUNDLED)]
REPO = Path(__file__).resolve().parents[1]
FER_VENV = Path(os.environ.get("FERFAST_FER_VENV", REPO / "build" / "fer-venv"))
FER_VERSION = "25.10.3"
# fer's runtime needs; its own metadata also pulls facenet-pytorch (torch), moviepy and
# matplotlib, which detect_emotions() with the default Haar detector never imports.
FER_DEPS = [
    "tensorflow-cpu",
    "opencv-contrib-python-headless",
    "pandas",
    "requests",
    "tqdm",
    "pillow",
    "setuptools<81",
]
# Runs in the fer venv: the same loop as a fer user's (decode, detect_emotions per frame),
# timed like ferfast-stream's summary (first frame in to last result out, model load excluded).
FER_SCRIPT = """
import json, sys, time, cv2
from fer.fer import FER
detector = FER()
cap = cv2.VideoCapture(sys.argv[1])
frames = found = 0
start = None
while True:
    ok, frame = cap.read()
    if not ok:
        break
    if start is None:
        start = time.perf_counter()
    found += bool(detector.detect_emotions(frame))
    frames += 1
elapsed = time.perf_counter() - start
print(json.dumps({"frames": frames, "found": found, "fps": frames / elapsed}))
"""


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_face_video(tmp_path_factory.mktemp("bench") / "face_640x480_30fps.mp4", N_FRAMES)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {"tiny": build_tiny_model(tmp_path_factory.mktemp("bench") / "tiny.onnx")}
    for name, filename in BUNDLED.items():
        if (MODELS_DIR / filename).is_file():
            out[name] = MODELS_DIR / filename
    return out


def _model(models: dict[str, Path], name: str) -> Path:
    if name not in models:
        pytest.skip(f"bundled model {BUNDLED[name]} not present")
    return models[name]


@pytest.mark.parametrize("detect_every", sorted({1, DEFAULT_DETECT_EVERY}))
@pytest.mark.parametrize("detector_size", [160, 320])
@pytest.mark.parametrize("model", MODELS)
def test_stream_fps(
    benchmark,
    video: Path,
    models: dict[str, Path],
    model: str,
    detector_size: int,
    detect_every: int,
    tmp_path,
) -> None:
    path = _model(models, model)
    summary_path = tmp_path / "summary.json"
    args = ["--source", str(video), *engine_args(path, detector_size), "-q", "--no-progress"]
    args += ["--detect-every", str(detect_every)]
    args += ["--jsonl", str(tmp_path / "ev.jsonl"), "--summary-json", str(summary_path)]
    runs: list[dict] = []

    def run() -> None:
        assert main(args) == 0
        runs.append(json.loads(summary_path.read_text()))

    benchmark.group = "ferfast-stream 640x480 file"
    benchmark.pedantic(run, rounds=3, iterations=1)
    fps = sorted(r["fps"] for r in runs)[len(runs) // 2]
    best = max(r["fps"] for r in runs)
    cpu_ms = sorted(r["cpu_ms_per_frame"] for r in runs)[len(runs) // 2]
    last = runs[-1]
    stages = {s["name"]: round(s["p50_ms"], 2) for s in last["stages"] if s["count"]}
    benchmark.extra_info.update(
        model=model,
        detector_size=detector_size,
        detect_every=detect_every,
        fps_median=round(fps, 1),
        fps_best=round(best, 1),
        cpu_ms_per_frame=round(cpu_ms, 2),
        peer_fps=PEER_FPS,
        speedup_vs_peer=round(fps / PEER_FPS, 2),
        p50_ms=stages,
    )
    print(
        f"\n{model} yunet@{detector_size} every {detect_every}: {fps:.1f} fps (median of "
        f"{len(runs)} runs of {N_FRAMES} frames, best {best:.1f}) = {fps / PEER_FPS:.1f}x the "
        f"recorded peer's "
        f"{PEER_FPS:.0f} fps; {cpu_ms:.2f} ms CPU per frame; p50 ms {stages}"
    )
    assert all(r["frames"] == N_FRAMES and r["dropped"] == 0 for r in runs)
    assert sum(1 for e in read_jsonl(tmp_path / "ev.jsonl") if e["faces"]) >= 0.99 * N_FRAMES
    strict = os.environ.get("FERFAST_BENCH_STRICT") == "1"
    if strict and model == "fast" and detect_every == DEFAULT_DETECT_EVERY:
        assert fps >= TARGET_FPS, f"{fps:.1f} fps is below 10x the peer's 38 ({TARGET_FPS:.0f})"


def _fer_python() -> Path:
    """The fer venv's interpreter, creating the venv on first use; skips when that fails."""
    python = FER_VENV / "bin" / "python"
    probe = [str(python), "-c", "import tensorflow, fer.fer"]
    if python.is_file() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    steps = [
        [sys.executable, "-m", "venv", str(FER_VENV)],
        [str(python), "-m", "pip", "install", "-q", *FER_DEPS],
        [str(python), "-m", "pip", "install", "-q", "--no-deps", f"fer=={FER_VERSION}"],
    ]
    for step in steps:
        try:
            proc = subprocess.run(step, capture_output=True, text=True, timeout=1800)
        except (OSError, subprocess.TimeoutExpired) as exc:
            pytest.skip(f"cannot set up the fer venv ({' '.join(step[:4])}): {exc}")
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            pytest.skip(f"cannot set up the fer venv ({' '.join(step[:4])}): {' | '.join(tail)}")
    if subprocess.run(probe, capture_output=True).returncode != 0:
        pytest.skip(f"fer does not import in {FER_VENV}")
    return python


def _run_fer(python: Path, video: Path) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [str(python), "-c", FER_SCRIPT, str(video)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_vs_fer(video: Path, models: dict[str, Path], tmp_path) -> None:
    """ferfast-stream (defaults, fast INT8 model, YuNet at 320) and fer on one file, alternating."""
    path = _model(models, "fast")
    python = _fer_python()
    summary_path = tmp_path / "summary.json"
    args = ["--source", str(video), *engine_args(path, 320), "-q", "--no-progress"]
    args += ["--jsonl", str(tmp_path / "ev.jsonl"), "--summary-json", str(summary_path)]
    ours, peer = [], []
    for _ in range(3):
        assert main(args) == 0
        ours.append(json.loads(summary_path.read_text())["fps"])
        found = sum(1 for e in read_jsonl(tmp_path / "ev.jsonl") if e["faces"])
        assert found >= 0.99 * N_FRAMES, f"faces in {found} of {N_FRAMES} frames"
        result = _run_fer(python, video)
        assert result["frames"] == N_FRAMES
        peer.append(result["fps"])
    ours.sort()
    peer.sort()
    ratio = ours[1] / peer[1]
    print(
        f"\nferfast-stream {ours[1]:.1f} fps (runs {ours[0]:.1f}-{ours[2]:.1f}, every "
        f"{DEFAULT_DETECT_EVERY}) vs fer {FER_VERSION} {peer[1]:.1f} fps (runs "
        f"{peer[0]:.1f}-{peer[2]:.1f}, faces in {result['found']}/{N_FRAMES} frames): "
        f"{ratio:.1f}x (target {TARGET_RATIO:.0f}x); load average {os.getloadavg()[0]:.2f}"
    )
    if os.environ.get("FERFAST_BENCH_STRICT") == "1":
        assert ratio >= TARGET_RATIO, f"{ratio:.1f}x the fer package, target {TARGET_RATIO}x"


@pytest.mark.parametrize("model", MODELS)
def test_time_to_first_result(video: Path, models: dict[str, Path], model: str, tmp_path) -> None:
    """From process launch to the first JSON Lines record, over 3 launches (target < 3 s)."""
    path = _model(models, model)
    events = tmp_path / "ev.jsonl"
    cmd = cli_command("--source", video, *engine_args(path), "--max-frames", "5", "-q")
    cmd += ["--jsonl", str(events)]
    firsts = []
    for _ in range(3):
        events.unlink(missing_ok=True)
        launched = time.time()
        proc = subprocess.run(cmd, env=cli_env(), capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert wait_for(lambda: count_lines(events) >= 1, 1.0)
        firsts.append(read_jsonl(events)[0]["time"] - launched)
    print(f"\n{model}: first result {sorted(firsts)} s after launch")
    assert max(firsts) < 3.0


def _aggregate_fps(paths: list[Path]) -> tuple[float, int]:
    """Frames over the span from the first to the last result in these JSON Lines files."""
    times = [e["time"] for p in paths for e in read_jsonl(p)]
    return (len(times) - 1) / (max(times) - min(times)), len(times)


def test_many_sources(video: Path, models: dict[str, Path], tmp_path) -> None:
    """4 file sources: one ferfast-stream process against 4 processes at once, alternating.

    Aggregate fps: all results over the span from the first result to the last (JSON Lines
    times), so model loading is left out of both.
    """
    path = _model(models, "fast")
    base = [*engine_args(path, 320), "-q", "--no-progress"]
    one, four = [], []
    for _ in range(2):
        out = tmp_path / "multi.jsonl"
        cmd = cli_command(*[a for _ in range(4) for a in ("--source", video)], *base)
        proc = subprocess.run([*cmd, "--jsonl", str(out)], env=cli_env(), capture_output=True)
        assert proc.returncode == 0, proc.stderr
        fps, n = _aggregate_fps([out])
        assert n == 4 * N_FRAMES
        one.append(fps)
        outs = [tmp_path / f"single{i}.jsonl" for i in range(4)]
        procs = [
            subprocess.Popen(
                [*cli_command("--source", video, *base), "--jsonl", str(o)],
                env=cli_env(),
                stderr=subprocess.DEVNULL,
            )
            for o in outs
        ]
        assert all(p.wait(timeout=600) == 0 for p in procs)
        fps, n = _aggregate_fps(outs)
        assert n == 4 * N_FRAMES
        four.append(fps)
    print(
        f"\n4 sources, int8, YuNet 320, every {DEFAULT_DETECT_EVERY}: one process "
        f"{min(one):.0f}-{max(one):.0f} fps in all, 4 processes {min(four):.0f}-{max(four):.0f} "
        f"fps in all; load average {os.getloadavg()[0]:.2f}"
    )
