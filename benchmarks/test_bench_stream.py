"""End-to-end ferfast-stream throughput on a 640x480, 30 fps video of one real face.

``pytest benchmarks/test_bench_stream.py``: runs the whole CLI pipeline (capture thread decoding
the file, YuNet at a reduced input size, preprocess, model, tracking, JSON Lines) in-process and
reports its frames per second (from the run summary: first frame in to last result out), and,
in a separate process, the time from launch to the first result. The peer ``fer`` package runs
at about 38 fps on this machine (figure stated by the project, ``fer`` is not installed here:
it pulls TensorFlow); the target is at least 3x that. The fps is printed and recorded for
every configuration; with ``FERFAST_BENCH_STRICT=1`` the YuNet-160 runs must also reach the
target (off by default: on a shared 2-core machine other jobs set the pace).
"""

from __future__ import annotations

import json
import os
import subprocess
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

PEER_FPS = 38.0  # the `fer` package on this machine (stated figure)
TARGET_FPS = 3 * PEER_FPS
N_FRAMES = 300  # 10 s of video
MODELS = ["tiny", *sorted(BUNDLED)]


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


@pytest.mark.parametrize("detector_size", [160, 320])
@pytest.mark.parametrize("model", MODELS)
def test_stream_fps(
    benchmark, video: Path, models: dict[str, Path], model: str, detector_size: int, tmp_path
) -> None:
    path = _model(models, model)
    summary_path = tmp_path / "summary.json"
    args = ["--source", str(video), *engine_args(path, detector_size), "-q", "--no-progress"]
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
        fps_median=round(fps, 1),
        fps_best=round(best, 1),
        cpu_ms_per_frame=round(cpu_ms, 2),
        peer_fps=PEER_FPS,
        speedup_vs_peer=round(fps / PEER_FPS, 2),
        p50_ms=stages,
    )
    print(
        f"\n{model} yunet@{detector_size}: {fps:.1f} fps (median of {len(runs)} runs of "
        f"{N_FRAMES} frames, best {best:.1f}) = {fps / PEER_FPS:.1f}x the peer's "
        f"{PEER_FPS:.0f} fps; {cpu_ms:.2f} ms CPU per frame; p50 ms {stages}"
    )
    assert all(r["frames"] == N_FRAMES and r["dropped"] == 0 for r in runs)
    assert sum(1 for e in read_jsonl(tmp_path / "ev.jsonl") if e["faces"]) >= 0.9 * N_FRAMES
    if detector_size == 160 and os.environ.get("FERFAST_BENCH_STRICT") == "1":
        assert fps >= TARGET_FPS, f"{fps:.1f} fps is below 3x the peer ({TARGET_FPS:.0f})"


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
