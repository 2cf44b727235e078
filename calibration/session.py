"""Running a ferfast ONNX model in ``ferfast.runtime.OrtRunner``: batched inference, latency.

The runner is the Engine's own (contract checks, tuned session options, IO binding); these
helpers add chunked evaluation of a whole split and a per-face latency measurement.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ferfast.runtime import OrtRunner


def run_batches(runner: OrtRunner, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """Probabilities (N,K) of ``x`` (float32 (N,1,48,48), model input) in chunks of ``batch``."""
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if len(x) == 0:
        return runner.run(x)
    return np.concatenate([runner.run(x[i : i + batch]) for i in range(0, len(x), batch)])


@dataclass(frozen=True)
class Latency:
    """Per-face latency of one batch size (median and best over ``repeats`` timed runs)."""

    batch: int
    median_ms_per_face: float
    min_ms_per_face: float
    repeats: int


def measure_latency(
    runner: OrtRunner,
    batch: int,
    repeats: int = 50,
    warmup: int = 5,
    data: np.ndarray | None = None,
) -> Latency:
    """Per-face latency at ``batch`` on one input buffer (``data`` rows or random faces)."""
    if batch < 1 or repeats < 1:
        raise ValueError(f"batch and repeats must be >= 1, got {batch}, {repeats}")
    x = runner.new_input_buffer(batch)
    if data is not None and len(data) >= batch:
        x[...] = data[:batch]
    else:
        rng = np.random.default_rng(0)
        x[...] = rng.integers(0, 256, x.shape).astype(np.float32) / 255.0
    for _ in range(warmup):
        runner.run(x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        runner.run(x)
        times.append(time.perf_counter() - t0)
    t = np.asarray(times) * 1e3 / batch
    return Latency(batch, float(np.median(t)), float(t.min()), repeats)
