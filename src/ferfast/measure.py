"""Measuring a runner outside the Engine: a whole split through it in chunks (``run_batches``,
for accuracy) and its latency at one batch size (``measure_latency`` -> :class:`Latency`).

Training, calibration and ``ferfast bench-engine`` share them; they take any
:class:`~ferfast.runner.Runner`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ferfast.runner import Float32Array, Runner


def _count(value: object, name: str, minimum: int) -> int:
    """``value`` as an int >= ``minimum``: TypeError for a non-int, ValueError below it."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def run_batches(runner: Runner, x: npt.ArrayLike, batch: int = 256) -> Float32Array:
    """Probabilities (N, K) of model input ``x`` ((N, 1, 48, 48), made C-contiguous float32),
    run through ``runner`` in chunks of ``batch`` rows (a whole split in bounded memory)."""
    batch = _count(batch, "batch", 1)
    faces = np.ascontiguousarray(x, dtype=np.float32)
    if len(faces) == 0:
        return runner.run(faces)
    parts = [runner.run(faces[i : i + batch]) for i in range(0, len(faces), batch)]
    return np.concatenate(parts)


@dataclass(frozen=True)
class Latency:
    """Wall time of ``runner.run`` on one batch size: the seconds of each timed run."""

    batch: int
    seconds: tuple[float, ...]

    @property
    def repeats(self) -> int:
        """Number of timed runs."""
        return len(self.seconds)

    @property
    def median_ms(self) -> float:
        """Median milliseconds per run (per batch)."""
        return float(np.median(self.seconds)) * 1e3

    @property
    def p90_ms(self) -> float:
        """90th-percentile milliseconds per run (per batch)."""
        return float(np.percentile(self.seconds, 90)) * 1e3

    @property
    def median_ms_per_face(self) -> float:
        """Median milliseconds per face."""
        return self.median_ms / self.batch

    @property
    def min_ms_per_face(self) -> float:
        """Best milliseconds per face."""
        return min(self.seconds) * 1e3 / self.batch


def measure_latency(
    runner: Runner,
    batch: int,
    repeats: int = 50,
    warmup: int = 5,
    data: npt.ArrayLike | None = None,
) -> Latency:
    """Time ``runner.run`` on one ``new_input_buffer(batch)``: ``warmup`` untimed runs, then
    ``repeats`` timed ones. The buffer holds the first ``batch`` rows of ``data`` when it has
    that many (model input), else random faces (fixed seed)."""
    batch = _count(batch, "batch", 1)
    repeats = _count(repeats, "repeats", 1)
    warmup = _count(warmup, "warmup", 0)
    x = runner.new_input_buffer(batch)
    rows = None if data is None else np.asarray(data, dtype=np.float32)
    if rows is not None and len(rows) >= batch:
        x[...] = rows[:batch]
    else:
        gray = np.random.default_rng(0).integers(0, 256, x.shape).astype(np.float32)
        x[...] = gray * np.float32(runner.input_scale) + np.float32(runner.input_bias)
    for _ in range(warmup):
        runner.run(x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        runner.run(x)
        times.append(time.perf_counter() - t0)
    return Latency(batch, tuple(times))
