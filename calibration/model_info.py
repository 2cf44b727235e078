"""What a ferfast ONNX model declares about itself (``metadata_props`` per the model contract)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnx

from ferfast.contract import KEY_EMOTIONS, parse_metadata
from ferfast.labels import EMOTIONS


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
    source = str(model) if isinstance(model, (str, Path)) else "model"
    if isinstance(model, (str, Path)):
        if not Path(model).is_file():
            raise FileNotFoundError(f"model not found: {model}")
        model = onnx.load(str(model), load_external_data=False)
    if not isinstance(model, onnx.ModelProto):
        raise TypeError(f"expected a path or onnx.ModelProto, got {type(model).__name__}")
    meta = {p.key: p.value for p in model.metadata_props}
    inits = {i.name for i in model.graph.initializer}
    inputs = [i.name for i in model.graph.input if i.name not in inits]
    if len(inputs) != 1 or len(model.graph.output) < 1:
        raise ValueError(f"expected one input and an output, got inputs {inputs}")
    dims = model.graph.output[0].type.tensor_type.shape.dim
    if len(dims) == 2 and dims[1].dim_value > 0:
        num_classes = dims[1].dim_value
    elif KEY_EMOTIONS in meta:
        num_classes = len(meta[KEY_EMOTIONS].split(","))
    else:
        num_classes = len(EMOTIONS)
    emotions, input_scale, input_bias = parse_metadata(meta, num_classes, source)
    return ModelInfo(
        emotions=emotions,
        input_scale=input_scale,
        input_bias=input_bias,
        input_name=inputs[0],
        output_name=model.graph.output[0].name,
        metadata=meta,
    )
