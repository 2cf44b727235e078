"""A tiny ONNX model that honours the ferfast model contract (built in-test, no training).

Graph: ``input`` float32 (N, 1, 48, 48) -> Flatten -> MatMul(W) + b -> Softmax -> ``probs`` (N, K).
``reference_probs`` computes the same thing in numpy so tests can check the engine end to end.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SIDE = 48


def tiny_weights(k: int = 7, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic weights (2304, k) and bias (k,), small enough not to saturate softmax."""
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((SIDE * SIDE, k)) * 0.02).astype(np.float32)
    b = (rng.standard_normal(k) * 0.1).astype(np.float32)
    return w, b


def reference_probs(x: np.ndarray, k: int = 7, seed: int = 0) -> np.ndarray:
    """Numpy reference of the tiny model on model input ``x`` (N, 1, 48, 48) float32."""
    w, b = tiny_weights(k, seed)
    logits = x.reshape(len(x), -1).astype(np.float64) @ w.astype(np.float64) + b
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def build_tiny_model(
    path: str | Path,
    *,
    k: int = 7,
    seed: int = 0,
    metadata: dict[str, str] | None = None,
    input_name: str = "input",
    output_name: str = "probs",
    channels: int = 1,
    side: int = SIDE,
) -> Path:
    """Write the tiny model to ``path``; the keyword arguments build contract-breaking variants."""
    w, b = tiny_weights(k, seed)
    if channels * side * side != w.shape[0]:
        w = np.resize(w, (channels * side * side, k)).astype(np.float32)
    nodes = [
        helper.make_node("Flatten", [input_name], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "W"], ["mm"]),
        helper.make_node("Add", ["mm", "B"], ["logits"]),
        helper.make_node("Softmax", ["logits"], [output_name], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "ferfast_tiny",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N", channels, side, side])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["N", k])],
        initializer=[numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    path = Path(path)
    onnx.save(model, path)
    return path
