"""Lazy, checked imports of the optional GPU packages (tensorrt, pycuda)."""

from __future__ import annotations

import importlib

INSTALL_HINT = (
    "TensorRT is not available: install the NVIDIA TensorRT Python package on a machine with an "
    "NVIDIA GPU (`pip install ferfast[tensorrt]`; on Jetson it ships with JetPack: "
    "`sudo apt install python3-libnvinfer`)"
)


def require_tensorrt() -> str:
    """Import tensorrt once to check it is the real package; return its version.

    Raises ImportError with an install hint when it is missing. Type stubs alone (the
    ``tensorrt-stubs`` package installs a bare ``tensorrt/`` folder) do not count.
    """
    try:
        trt = importlib.import_module("tensorrt")
    except ImportError as exc:  # also OSError-like failures of libnvinfer show up as ImportError
        raise ImportError(f"{INSTALL_HINT} ({exc})") from exc
    version = getattr(trt, "__version__", None)
    if not isinstance(version, str) or not hasattr(trt, "Builder"):
        raise ImportError(f"{INSTALL_HINT} (found only type stubs or a broken install)")
    return version


def trt_major(version: str) -> int:
    """Major version number of a TensorRT version string such as '8.6.2.3' or '10.13.0.35'."""
    try:
        return int(version.split(".")[0])
    except ValueError as exc:
        raise ValueError(f"unrecognised TensorRT version {version!r}") from exc


def require_pycuda() -> None:
    """Check that pycuda imports (the Python TensorRT runner needs it)."""
    try:
        importlib.import_module("pycuda.driver")
    except ImportError as exc:
        raise ImportError(
            "the Python TensorRT runner needs pycuda (`pip install pycuda`), or build ferfast with "
            f"the C++ TensorRT runtime (see docs/jetson.md) ({exc})"
        ) from exc
