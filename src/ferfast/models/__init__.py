"""Bundled ONNX models (``ferfast_fp32.onnx``, ``ferfast_int8.onnx``); see MODEL_CARD.md."""

from __future__ import annotations

from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent
BUNDLED: dict[str, str] = {"int8": "ferfast_int8.onnx", "fp32": "ferfast_fp32.onnx"}


def model_path(name: str) -> Path:
    """Path of the bundled model ``name`` ("int8" or "fp32").

    Raises ValueError for an unknown name and FileNotFoundError (naming the file) when the
    model is not present in this installation.
    """
    if not isinstance(name, str):
        raise TypeError(f"model name must be a str, got {type(name).__name__}")
    key = name.lower()
    if key not in BUNDLED:
        raise ValueError(f"unknown bundled model {name!r}; expected one of {sorted(BUNDLED)}")
    path = MODELS_DIR / BUNDLED[key]
    if not path.is_file():
        raise FileNotFoundError(
            f"bundled model {key!r} not found: {path} is missing from this installation "
            "(train/export or calibrate it first, or pass the path of an .onnx/.engine file)"
        )
    return path
