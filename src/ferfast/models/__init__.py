"""Bundled ONNX models (``ferfast_fp32.onnx``, ``ferfast_int8.onnx``); see MODEL_CARD.md."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ModelInfo:
    """A bundled model and its PublicTest figures (3,589 faces; MODEL_CARD.md has the rest)."""

    name: str  # the name Engine(model=...) takes
    file: str
    precision: str  # "int8" (Q/DQ) or "fp32"
    params: int
    mflops: float  # per face
    accuracy: float
    macro_f1: float
    disgust_recall: float

    @property
    def path(self) -> Path:
        """Where the file is in this installation."""
        return MODELS_DIR / self.file


# Measured with the model files themselves on FER2013 PublicTest (tests/test_models.py re-checks).
CATALOG: tuple[ModelInfo, ...] = (
    ModelInfo("int8", "ferfast_int8.onnx", "int8", 1_174_439, 58.7, 0.6826, 0.6677, 0.661),
    ModelInfo("fp32", "ferfast_fp32.onnx", "fp32", 1_174_439, 58.7, 0.6838, 0.6685, 0.661),
)
BUNDLED: dict[str, str] = {m.name: m.file for m in CATALOG}


def list_models() -> list[ModelInfo]:
    """The bundled models with their PublicTest figures, default first."""
    return list(CATALOG)


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
