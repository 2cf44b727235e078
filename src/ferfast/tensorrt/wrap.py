"""Wrap a plan built elsewhere (e.g. by ``trtexec``) into a ferfast engine file.

For machines where the TensorRT Python bindings do not match the interpreter ferfast runs in
(JetPack 5 ships them for the system Python 3.8 only): build the plan with ``trtexec`` on the
device, then add the ferfast header here. The TensorRT version is read from ``libnvinfer``
itself (``getInferLibVersion`` through ctypes) and the GPU from the CUDA driver.
"""

from __future__ import annotations

import ctypes
import sys
from pathlib import Path

from .._types import PathLike
from .build import make_header, read_onnx_info
from .gpu import gpu_info
from .header import MAGIC, EngineHeader, write_engine

_LIBS = (
    ("nvinfer_10.dll", "nvinfer.dll")
    if sys.platform == "win32"
    else ("libnvinfer.so.11", "libnvinfer.so.10", "libnvinfer.so.8", "libnvinfer.so")
)


def decode_lib_version(v: int) -> str:
    """getInferLibVersion() -> "major.minor.patch" (8.x: 8601 -> 8.6.1; 10.x: 101300 -> 10.13.0)."""
    if v >= 100000:
        return f"{v // 10000}.{(v // 100) % 100}.{v % 100}"
    return f"{v // 1000}.{(v // 100) % 10}.{v % 100}"


def libnvinfer_version() -> str:
    """TensorRT version of the installed libnvinfer; RuntimeError when none loads."""
    for name in _LIBS:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        fn = lib.getInferLibVersion
        fn.restype = ctypes.c_int32
        return decode_lib_version(int(fn()))
    raise RuntimeError(
        "libnvinfer (TensorRT) not found: install TensorRT or pass the version explicitly"
    )


def wrap_plan(
    plan_path: PathLike,
    onnx_path: PathLike,
    out_path: PathLike,
    precision: str,
    max_batch: int,
    opt_batch: int | None = None,
    trt_version: str | None = None,
) -> EngineHeader:
    """Write ``out_path`` = ferfast header (metadata from ``onnx_path``) + the raw plan.

    ``precision``/``max_batch``/``opt_batch`` must be what the plan was built with (trtexec's
    ``--int8``/``--fp16`` and ``--maxShapes``/``--optShapes``).
    """
    plan = Path(plan_path)
    if not plan.is_file():
        raise FileNotFoundError(f"plan file not found: {plan}")
    data = plan.read_bytes()
    if data.startswith(MAGIC):
        raise ValueError(f"{plan} is already a ferfast engine file")
    if not data:
        raise ValueError(f"{plan} is empty")
    header = make_header(
        read_onnx_info(onnx_path),
        onnx_path,
        trt_version=trt_version or libnvinfer_version(),
        precision=precision,
        max_batch=max_batch,
        opt_batch=min(8, max_batch) if opt_batch is None else opt_batch,
        gpu=gpu_info(0),
        built_by="wrap-engine",
    )
    write_engine(out_path, header, data)
    return header
