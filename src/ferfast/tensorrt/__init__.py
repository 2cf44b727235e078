"""TensorRT backend: build-engine and the TensorRT runner. tensorrt/pycuda are imported lazily."""

from __future__ import annotations

from .build import BuildResult, OnnxInfo, build_engine, read_onnx_info
from .gpu import GpuInfo, gpu_info
from .header import (
    EngineHeader,
    EngineMismatchError,
    check_compatible,
    pack_engine,
    read_engine,
    unpack_engine,
    write_engine,
)
from .runner import TensorRTRunner

__all__ = [
    "BuildResult",
    "EngineHeader",
    "EngineMismatchError",
    "GpuInfo",
    "OnnxInfo",
    "TensorRTRunner",
    "build_engine",
    "check_compatible",
    "gpu_info",
    "pack_engine",
    "read_engine",
    "read_onnx_info",
    "unpack_engine",
    "write_engine",
]


def tensorrt_available() -> bool:
    """True when the real tensorrt package imports (stubs alone do not count)."""
    from ._compat import require_tensorrt

    try:
        require_tensorrt()
    except ImportError:
        return False
    return True
