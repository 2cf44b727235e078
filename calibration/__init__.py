"""INT8 calibration for ferfast: recorded stratified calibration set -> ONNX Runtime static Q/DQ
quantization (symmetric int8, per-channel weights) -> PublicTest comparison.

``python -m calibration`` builds ``src/ferfast/models/ferfast_int8.onnx``;
``python -m calibration.compare`` writes the method table to ``docs/int8.md``. Faces, metrics and
default paths come from ``training`` (``data``, ``metrics``, ``paths``; no torch import), models
run in ``ferfast.ort.OrtRunner`` (``ferfast.measure``: ``run_batches``, ``measure_latency``).
"""

from __future__ import annotations

from training.data import normalise

from .dataset import CalibrationSet, stratified_sample
from .quantize import QdqReport, QuantSettings, fold_bias_dequantize, inspect_qdq, quantize_model

__all__ = [
    "CalibrationSet",
    "QdqReport",
    "QuantSettings",
    "fold_bias_dequantize",
    "inspect_qdq",
    "normalise",
    "quantize_model",
    "stratified_sample",
]
