"""Bundled ONNX models by name ("fast", "accurate", their "-fp32" sources; aliases "int8",
"fp32"); see MODEL_CARD.md.

A model family ("fast", "accurate") ships as an INT8 Q/DQ model named after the family and its
float source named ``<family>-fp32``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypeGuard

MODELS_DIR = Path(__file__).resolve().parent
DEFAULT_MODEL = "fast"


@dataclass(frozen=True)
class ModelInfo:
    """A bundled model and its PublicTest figures (3,589 faces; MODEL_CARD.md has the rest)."""

    name: str  # the name Engine(model=...) takes: "<family>" (INT8) or "<family>-fp32"
    file: str
    precision: str  # "int8" (Q/DQ) or "fp32"
    params: int
    mflops: float  # per face
    accuracy: float
    macro_f1: float
    disgust_recall: float
    aliases: tuple[str, ...] = ()  # other names Engine(model=...) takes for this file

    @property
    def family(self) -> str:
        """The network: "fast" or "accurate"."""
        return self.name.removesuffix("-fp32")

    @property
    def path(self) -> Path:
        """Where the file is in this installation."""
        return MODELS_DIR / self.file


# Measured with the model files themselves on FER2013 PublicTest (tests/test_models.py re-checks).
# The default comes first.
CATALOG: tuple[ModelInfo, ...] = (
    ModelInfo(
        "fast", "ferfast_int8.onnx", "int8", 1_174_439, 58.7, 0.6910, 0.6765, 0.643, ("int8",)
    ),
    ModelInfo(
        "fast-fp32", "ferfast_fp32.onnx", "fp32", 1_174_439, 58.7, 0.6913, 0.6774, 0.643, ("fp32",)
    ),
    # fast + the teacher t1_90 in one graph, each over the face and its mirror image (the mean of
    # the four probabilities): twice the members' FLOPs per face.
    ModelInfo(
        "accurate", "ferfast_accurate_int8.onnx", "int8", 5_144_206, 666.9, 0.7072, 0.6975, 0.661
    ),
    ModelInfo(
        "accurate-fp32",
        "ferfast_accurate_fp32.onnx",
        "fp32",
        5_144_206,
        666.9,
        0.7066,
        0.6948,
        0.643,
    ),
)


@dataclass(frozen=True)
class Target:
    """A model family's release goal: INT8 figures on FER2013 PublicTest (the release gate checks
    the same on faces kept out of this project) and INT8 latency per face on 2 CPU cores."""

    family: str
    accuracy: float
    macro_f1: float
    disgust_recall: float
    b1_ms: float  # batch 1
    b64_ms: float | None = None  # per face at batch 64, where the family has a goal there


TARGETS: tuple[Target, ...] = (
    Target("fast", 0.700, 0.69, 0.65, b1_ms=0.26, b64_ms=0.13),
    Target("accurate", 0.715, 0.705, 0.65, b1_ms=2.0),
)

BUNDLED: dict[str, str] = {m.name: m.file for m in CATALOG}  # canonical name -> file
ALIASES: dict[str, str] = {a: m.name for m in CATALOG for a in m.aliases}  # alias -> name
_BY_NAME: dict[str, ModelInfo] = {m.name: m for m in CATALOG}
_NAMES: frozenset[str] = frozenset(BUNDLED.keys() | ALIASES.keys())


def list_models() -> list[ModelInfo]:
    """The bundled models with their PublicTest figures, default first."""
    return list(CATALOG)


def names_text() -> str:
    """The accepted names for messages: ``fast, fast-fp32; aliases int8 = fast, ...``."""
    aliases = ", ".join(f"{a} = {n}" for a, n in ALIASES.items())
    return ", ".join(BUNDLED) + (f"; aliases {aliases}" if aliases else "")


def is_model_name(name: object) -> TypeGuard[str]:
    """Whether ``name`` is a bundled model's name or alias (any case)."""
    return isinstance(name, str) and name.lower() in _NAMES


def model_info(name: str) -> ModelInfo:
    """The catalog entry of ``name`` (a name or an alias, any case).

    Raises ValueError naming the accepted names for an unknown name.
    """
    if not isinstance(name, str):
        raise TypeError(f"model name must be a str, got {type(name).__name__}")
    key = name.lower()
    info = _BY_NAME.get(ALIASES.get(key, key))
    if info is not None:
        return info
    raise ValueError(f"unknown bundled model {name!r} (expected one of {names_text()})")


def model_path(name: str) -> Path:
    """Path of the bundled model ``name`` (e.g. "fast", "accurate-fp32", or an alias).

    Raises ValueError as ``model_info`` does, and FileNotFoundError (naming the file) when the
    model is not present in this installation.
    """
    info = model_info(name)
    if not info.path.is_file():
        raise FileNotFoundError(
            f"bundled model {info.name!r} not found: {info.path} is missing from this "
            "installation (train/export or calibrate it first, or pass the path of an "
            ".onnx/.engine file)"
        )
    return info.path
