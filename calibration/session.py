"""ONNX Runtime CPU sessions with the tuned settings, and a per-face latency measurement."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


@dataclass(frozen=True)
class SessionSettings:
    """CPU session knobs (defaults = the measured best on the 2-core benchmark machine)."""

    intra_threads: int = 2
    inter_threads: int = 1
    optimization: str = "all"
    sequential: bool = True
    allow_spinning: bool = True

    def options(self) -> ort.SessionOptions:
        """The equivalent ``onnxruntime.SessionOptions``."""
        if self.optimization not in _LEVELS:
            raise ValueError(
                f"optimization must be one of {sorted(_LEVELS)}, got {self.optimization!r}"
            )
        if self.intra_threads < 0 or self.inter_threads < 0:
            raise ValueError("thread counts must be >= 0 (0 = ONNX Runtime default)")
        so = ort.SessionOptions()
        so.intra_op_num_threads = self.intra_threads
        so.inter_op_num_threads = self.inter_threads
        so.graph_optimization_level = _LEVELS[self.optimization]
        so.execution_mode = (
            ort.ExecutionMode.ORT_SEQUENTIAL if self.sequential else ort.ExecutionMode.ORT_PARALLEL
        )
        so.add_session_config_entry(
            "session.intra_op.allow_spinning", "1" if self.allow_spinning else "0"
        )
        so.add_session_config_entry(
            "session.inter_op.allow_spinning", "1" if self.allow_spinning else "0"
        )
        return so


def make_session(
    model: str | Path | bytes, settings: SessionSettings | None = None
) -> ort.InferenceSession:
    """A CPU ``InferenceSession`` for ``model`` with ``settings`` (default: the tuned ones)."""
    settings = settings or SessionSettings()
    src = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(src, settings.options(), providers=["CPUExecutionProvider"])


def run_batches(sess: ort.InferenceSession, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """Run ``x`` (N,1,48,48) through ``sess`` in chunks; returns the first output (N,K)."""
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    name = sess.get_inputs()[0].name
    outs = [sess.run(None, {name: x[i : i + batch]})[0] for i in range(0, len(x), batch)]
    return np.concatenate(outs, axis=0)


@dataclass(frozen=True)
class Latency:
    """Per-face latency of one batch size (median and best over ``repeats`` timed runs)."""

    batch: int
    median_ms_per_face: float
    min_ms_per_face: float
    repeats: int


class BoundRunner:
    """Runs a session through IO binding on a fixed, preallocated input and output buffer."""

    def __init__(self, sess: ort.InferenceSession, batch: int) -> None:
        self.sess = sess
        shape = (batch, 1, 48, 48)
        self.x = np.zeros(shape, np.float32)
        k = sess.get_outputs()[0].shape[-1]
        if not isinstance(k, int):
            k = sess.run(None, {sess.get_inputs()[0].name: self.x[:1]})[0].shape[-1]
        self.y = np.empty((batch, k), np.float32)
        self.binding = sess.io_binding()
        self.binding.bind_cpu_input(sess.get_inputs()[0].name, self.x)
        self.binding.bind_output(
            sess.get_outputs()[0].name, "cpu", 0, np.float32, self.y.shape, self.y.ctypes.data
        )

    def __call__(self) -> np.ndarray:
        self.sess.run_with_iobinding(self.binding)
        return self.y


def measure_latency(
    sess: ort.InferenceSession,
    batch: int,
    repeats: int = 50,
    warmup: int = 5,
    data: np.ndarray | None = None,
) -> Latency:
    """Per-face latency at ``batch`` with IO binding (inputs: ``data`` rows or random faces)."""
    runner = BoundRunner(sess, batch)
    if data is not None and len(data) >= batch:
        runner.x[...] = data[:batch]
    else:
        rng = np.random.default_rng(0)
        runner.x[...] = rng.integers(0, 256, runner.x.shape).astype(np.float32) / 255.0
    for _ in range(warmup):
        runner()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        runner()
        times.append(time.perf_counter() - t0)
    t = np.asarray(times) * 1e3 / batch
    return Latency(batch, float(np.median(t)), float(t.min()), repeats)
