"""Backend selection: which runner runs a model (``make_runner``, ``select_backend``) and which
file a model name means (``resolve_model``).

An ``.onnx`` model runs on ONNX Runtime (:class:`~ferfast.ort.OrtRunner`, CPU, CUDA or TensorRT
provider), a ``.engine`` file on the native TensorRT runtime (``ferfast.tensorrt``, imported
only for engine files). The runner contract itself is :mod:`ferfast.runner`.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from ferfast._types import PathLike
from ferfast.ort import OrtRunner
from ferfast.runner import BackendUnavailableError, Runner

# "onnxruntime" is the older name of "cpu" and stays accepted.
BACKENDS = ("auto", "cpu", "cuda", "tensorrt", "onnxruntime")
_ALIASES = {"onnxruntime": "cpu"}


def resolve_model(model: PathLike, suffixes: tuple[str, ...] = (".onnx", ".engine")) -> Path:
    """Path of ``model``: a bundled model name ("fast", "accurate", "fast-fp32",
    "accurate-fp32", or an alias: "int8", "fp32") or the path of a file ending in one of
    ``suffixes`` (lower case; default .onnx or .engine).

    Raises TypeError for a value that is neither a str nor a path, ValueError for a name or
    suffix that is neither (or a model this version does not bundle), FileNotFoundError for a
    missing file.
    """
    from ferfast.models import is_model_name, model_path, names_text

    if is_model_name(model):
        return model_path(model)
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model must be a bundled model name or a path, got {type(model).__name__}")
    path = Path(model)
    # The messages name both spellings: the CLI flag and the Python argument.
    if path.suffix.lower() not in suffixes:
        kinds = " or ".join(suffixes)
        raise ValueError(
            f"model {str(model)!r} is neither a bundled model name ({names_text()}) nor the path "
            f"of an {kinds} file (--model / model=)"
        )
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path} (--model / model=)")
    return path


def select_backend(backend: str, path: Path) -> str:
    """The backend that runs ``path``: "cpu", "cuda" or "tensorrt" (see :func:`make_runner`)."""
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(
            f"backend (--backend / backend=) must be one of {', '.join(BACKENDS)}, got {backend!r}"
        )
    is_engine = path.suffix.lower() == ".engine"
    if is_engine:
        if backend not in ("auto", "tensorrt"):
            raise ValueError(
                f"backend {backend!r} (--backend / backend=) cannot run the TensorRT engine file "
                f"{path}; use backend 'auto' or 'tensorrt', or pass an .onnx model"
            )
        return "tensorrt"
    if backend != "auto":
        return _ALIASES.get(backend, backend)
    import onnxruntime as ort

    from ferfast.tensorrt.gpu import cuda_device_count

    if "CUDAExecutionProvider" in ort.get_available_providers() and cuda_device_count() > 0:
        return "cuda"
    return "cpu"


def make_runner(
    model: PathLike = "fast", backend: str = "auto", threads: int | None = None
) -> Runner:
    """Create the Runner for ``model`` on ``backend``.

    ``"auto"``: a ``.engine`` file runs on the native TensorRT runtime; an ``.onnx`` model on
    ONNX Runtime's CUDA provider when onnxruntime-gpu offers it and an NVIDIA GPU is present
    (falling back to the CPU, with a warning, when the provider cannot start), else on the CPU.
    ``"cpu"`` (alias ``"onnxruntime"``), ``"cuda"``: ONNX Runtime on that provider.
    ``"tensorrt"``: a ``.engine`` file on the native TensorRT runtime, an ``.onnx`` model on
    ONNX Runtime's TensorRT provider. A backend that cannot run here raises
    BackendUnavailableError naming what is missing.
    """
    path = resolve_model(model)
    chosen = select_backend(backend, path)
    if path.suffix.lower() == ".engine":
        return _tensorrt_runner(path)
    if backend == "auto" and chosen == "cuda":
        try:
            return OrtRunner(path, threads=threads, provider="cuda")
        except BackendUnavailableError as exc:
            warnings.warn(f"{exc}; running on the CPU", RuntimeWarning, stacklevel=2)
            chosen = "cpu"
    return OrtRunner(path, threads=threads, provider=chosen)


def _tensorrt_runner(path: Path) -> Runner:
    """The TensorRT runner for an engine file, with clear errors when TensorRT is missing."""
    from ferfast.tensorrt.runner import TensorRTRunner

    try:
        return TensorRTRunner(path)
    except ImportError as exc:
        raise BackendUnavailableError(
            f"the TensorRT backend is unavailable ({exc}); install the 'tensorrt' extra "
            "(tensorrt, pycuda) on a machine with an NVIDIA GPU, or build ferfast with its C++ "
            "TensorRT runtime (docs/jetson.md), or pass an .onnx model or a bundled model name "
            "(--model / model=)"
        ) from exc
    except ValueError as exc:
        if str(path) in str(exc):
            raise
        raise ValueError(f"cannot load TensorRT engine {path}: {exc}") from exc
