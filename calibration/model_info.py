"""What a ferfast ONNX model declares about itself (``metadata_props`` per the model contract)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnx

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


@dataclass(frozen=True)
class ModelInfo:
    """Class names in output order; input normalisation ``gray * input_scale + input_bias``."""

    emotions: tuple[str, ...]
    input_scale: float
    input_bias: float
    input_name: str
    output_name: str
    metadata: dict[str, str]


def read_model_info(model: str | Path | onnx.ModelProto) -> ModelInfo:
    """Read a model's I/O names and ``ferfast.*`` metadata (contract defaults where absent)."""
    if isinstance(model, (str, Path)):
        if not Path(model).is_file():
            raise FileNotFoundError(f"model not found: {model}")
        model = onnx.load(str(model), load_external_data=False)
    if not isinstance(model, onnx.ModelProto):
        raise TypeError(f"expected a path or onnx.ModelProto, got {type(model).__name__}")
    meta = {p.key: p.value for p in model.metadata_props}
    emotions = tuple(e.strip() for e in meta.get("ferfast.emotions", ",".join(EMOTIONS)).split(","))
    unknown = [e for e in emotions if e not in EMOTIONS]
    if unknown:
        raise ValueError(f"model declares unknown emotions {unknown}")
    inits = {i.name for i in model.graph.initializer}
    inputs = [i.name for i in model.graph.input if i.name not in inits]
    if len(inputs) != 1 or len(model.graph.output) < 1:
        raise ValueError(f"expected one input and an output, got inputs {inputs}")
    return ModelInfo(
        emotions=emotions,
        input_scale=float(meta.get("ferfast.input_scale", 1.0 / 255.0)),
        input_bias=float(meta.get("ferfast.input_bias", 0.0)),
        input_name=inputs[0],
        output_name=model.graph.output[0].name,
        metadata=meta,
    )
