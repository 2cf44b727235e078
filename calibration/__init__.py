"""INT8 calibration for ferfast: recorded stratified calibration set -> ONNX Runtime static Q/DQ
quantization (symmetric int8, per-channel weights) -> PublicTest comparison.

``python -m calibration`` builds ``src/ferfast/models/ferfast_int8.onnx``;
``python -m calibration.compare`` writes the method table to ``docs/int8.md``. A client of
``training``: the quantizer (``training.quantize``), faces, metrics and default paths
(``data``, ``metrics``, ``paths``; no torch import) come from there, and ``training`` never
imports this package. Models run in ``ferfast.ort.OrtRunner`` (``ferfast.measure``:
``run_batches``, ``measure_latency``).
"""

from __future__ import annotations

from training.data import normalise

from .dataset import CalibrationSet, stratified_sample

__all__ = ["CalibrationSet", "normalise", "stratified_sample"]
