"""GPU name and compute capability through the CUDA driver API (ctypes; no pycuda needed)."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from dataclasses import dataclass

_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75
_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76


@dataclass(frozen=True)
class GpuInfo:
    """One CUDA device as the engine header records it."""

    index: int
    name: str
    compute_capability: str  # "major.minor", e.g. "8.7" for Jetson Orin


def _load_driver() -> ctypes.CDLL:
    names = ["nvcuda.dll"] if sys.platform == "win32" else ["libcuda.so.1", "libcuda.so"]
    found = ctypes.util.find_library("cuda")
    if found:
        names.append(found)
    for name in names:
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    raise RuntimeError("no NVIDIA driver found (libcuda could not be loaded): TensorRT needs a GPU")


def cuda_device_count() -> int:
    """Number of CUDA devices the NVIDIA driver reports; 0 without a driver or a GPU."""
    try:
        cuda = _load_driver()
    except RuntimeError:
        return 0
    count = ctypes.c_int(0)
    if cuda.cuInit(0) != 0 or cuda.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return 0
    return int(count.value)


def gpu_info(device: int = 0) -> GpuInfo:
    """Return name and compute capability of CUDA device ``device``; RuntimeError without one."""
    if isinstance(device, bool) or not isinstance(device, int):
        raise TypeError(f"device must be an int, got {type(device).__name__}")
    if device < 0:
        raise ValueError(f"device must be >= 0, got {device}")
    cuda = _load_driver()

    def check(status: int, what: str) -> None:
        if status != 0:
            raise RuntimeError(f"CUDA driver call {what} failed with error {status}")

    check(cuda.cuInit(0), "cuInit")
    count = ctypes.c_int(0)
    check(cuda.cuDeviceGetCount(ctypes.byref(count)), "cuDeviceGetCount")
    if device >= count.value:
        raise RuntimeError(f"CUDA device {device} requested but {count.value} device(s) present")
    handle = ctypes.c_int(0)
    check(cuda.cuDeviceGet(ctypes.byref(handle), device), "cuDeviceGet")
    buf = ctypes.create_string_buffer(256)
    check(cuda.cuDeviceGetName(buf, len(buf), handle), "cuDeviceGetName")
    major, minor = ctypes.c_int(0), ctypes.c_int(0)
    check(
        cuda.cuDeviceGetAttribute(
            ctypes.byref(major), _CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, handle
        ),
        "cuDeviceGetAttribute",
    )
    check(
        cuda.cuDeviceGetAttribute(
            ctypes.byref(minor), _CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, handle
        ),
        "cuDeviceGetAttribute",
    )
    return GpuInfo(device, buf.value.decode("utf-8", "replace"), f"{major.value}.{minor.value}")
