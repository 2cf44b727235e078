"""The ferfast model contract: tensor names and shapes, metadata keys, defaults, label order.

Every ferfast ONNX model (training export, INT8 calibration) and every TensorRT engine header
follows it; the runners (``ferfast.ort``, ``ferfast.tensorrt``) read models through
:func:`parse_metadata`, exporters write metadata with :func:`metadata_props`.
docs/architecture.md describes the contract in prose.

This module is the one definition of the input side and the normalisation: the C++ extension
compiles them from a header that CMake generates from it (cpp/contract_header.py), and training
takes them from here. It imports only the standard library, so that the build can read it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple

from ferfast.labels import EMOTIONS

__all__ = [
    "DEFAULT_BIAS",
    "DEFAULT_SCALE",
    "EMOTIONS",
    "INPUT_NAME",
    "INPUT_SHAPE",
    "KEY_EMOTIONS",
    "KEY_INPUT_BIAS",
    "KEY_INPUT_SCALE",
    "KEY_VERSION",
    "OUTPUT_NAME",
    "SIDE",
    "ModelMetadata",
    "default_emotions",
    "metadata_props",
    "parse_metadata",
]

INPUT_NAME = "input"  # float32 (N, 1, SIDE, SIDE), dynamic N
OUTPUT_NAME = "probs"  # float32 (N, K) softmax probabilities
SIDE = 48
INPUT_SHAPE = (1, SIDE, SIDE)  # one face, without the batch dimension

# Input normalisation: value = gray * scale + bias, gray in 0..255.
DEFAULT_SCALE = 1.0 / 255.0
DEFAULT_BIAS = 0.0

KEY_EMOTIONS = "ferfast.emotions"  # comma-separated class names in output order
KEY_INPUT_SCALE = "ferfast.input_scale"  # decimal string
KEY_INPUT_BIAS = "ferfast.input_bias"  # decimal string
KEY_VERSION = "ferfast.version"  # ferfast version that exported the model


class ModelMetadata(NamedTuple):
    """What a model's metadata declares, contract defaults filled in."""

    emotions: tuple[str, ...]
    input_scale: float
    input_bias: float


def default_emotions(num_classes: int) -> tuple[str, ...] | None:
    """Label order of a model without ``ferfast.emotions``: 7 classes EMOTIONS, 6 without
    "disgust"; None for any other class count."""
    if num_classes == len(EMOTIONS):
        return EMOTIONS
    if num_classes == len(EMOTIONS) - 1:
        return tuple(e for e in EMOTIONS if e != "disgust")
    return None


def parse_metadata(props: Mapping[str, str], num_classes: int, source: str) -> ModelMetadata:
    """Emotions, input scale and bias from ferfast ``metadata_props``, with contract defaults.

    Names are stripped and must be unique and as many as ``num_classes``; scale and bias must be
    finite numbers, the scale non-zero. Raises ValueError naming ``source`` otherwise.
    """
    raw = props.get(KEY_EMOTIONS)
    if raw is not None:
        emotions = tuple(name.strip() for name in raw.split(",") if name.strip())
    else:
        found = default_emotions(num_classes)
        if found is None:
            raise ValueError(
                f"{source}: model has {num_classes} outputs and no {KEY_EMOTIONS!r} metadata"
            )
        emotions = found
    if len(emotions) != num_classes:
        raise ValueError(
            f"{source}: {KEY_EMOTIONS!r} lists {len(emotions)} classes but the model "
            f"outputs {num_classes}"
        )
    if len(set(emotions)) != len(emotions):
        raise ValueError(f"{source}: duplicate names in {KEY_EMOTIONS!r}: {raw!r}")
    values = []
    for key, default in ((KEY_INPUT_SCALE, DEFAULT_SCALE), (KEY_INPUT_BIAS, DEFAULT_BIAS)):
        text = props.get(key)
        try:
            value = default if text is None else float(text)
        except ValueError:
            raise ValueError(f"{source}: metadata {key}={text!r} is not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"{source}: metadata {key}={text!r} is not finite")
        values.append(value)
    if values[0] == 0.0:
        raise ValueError(f"{source}: metadata {KEY_INPUT_SCALE} must be non-zero")
    return ModelMetadata(emotions, values[0], values[1])


def metadata_props(
    emotions: tuple[str, ...],
    version: str,
    input_scale: float = DEFAULT_SCALE,
    input_bias: float = DEFAULT_BIAS,
) -> dict[str, str]:
    """The contract's ``metadata_props`` for an exported model (what parse_metadata reads)."""
    return {
        KEY_EMOTIONS: ",".join(emotions),
        KEY_INPUT_SCALE: repr(float(input_scale)),
        KEY_INPUT_BIAS: repr(float(input_bias)),
        KEY_VERSION: version,
    }
