"""TensorRTRunner: the Runner protocol (docs/architecture.md) on a ferfast TensorRT engine.

Two backends, same behaviour:

- ``cpp``: ``ferfast._core.TrtRuntime`` (compiled when CMake found TensorRT and CUDA): pinned host
  buffers, one CUDA stream, the GIL released while the GPU runs.
- ``python``: ``tensorrt`` + ``pycuda`` with the name-based tensor API (set_input_shape /
  set_tensor_address / execute_async_v3) on one stream.

Both read the same engine file (:mod:`ferfast.tensorrt.header` here, ``cpp/trt/engine_file.cpp``
in C++) and refuse an engine built with another TensorRT version or for another GPU with the same
message. The Python backend serves installs whose extension was built without TensorRT (the pip
wheel); with the C++ runtime built with CUDA, :meth:`TensorRTRunner.run_frame` preprocesses on
the GPU, which is what ``Engine.predict`` uses.
"""

from __future__ import annotations

import importlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from .._types import PathLike
from ..contract import INPUT_SHAPE
from ..runner import check_batch
from ._compat import require_pycuda, require_tensorrt
from .gpu import gpu_info
from .header import EngineHeader, check_compatible, check_io, read_engine

if TYPE_CHECKING:
    from ..framing import Framing

BACKENDS = ("auto", "cpp", "python")


class _Backend(Protocol):
    @property
    def max_batch(self) -> int: ...

    def new_input_buffer(self, n: int) -> npt.NDArray[np.float32]: ...

    def run(self, batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]: ...


def _core_trt() -> Any | None:
    """``ferfast._core.TrtRuntime`` when the extension was built with TensorRT, else None."""
    try:
        core = importlib.import_module("ferfast._core")
    except ImportError:
        return None
    return getattr(core, "TrtRuntime", None)


class TensorRTRunner:
    """Runs a ferfast TensorRT engine file (see ``ferfast build-engine``).

    Args:
        path: engine file written by :func:`ferfast.tensorrt.build_engine`.
        device: CUDA device index.
        backend: ``"auto"`` (C++ runtime if compiled in, else Python), ``"cpp"`` or ``"python"``.
    """

    def __init__(self, path: PathLike, device: int = 0, backend: str = "auto") -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if isinstance(device, bool) or not isinstance(device, int):
            raise TypeError(f"device must be an int, got {type(device).__name__}")
        if device < 0:
            raise ValueError(f"device must be >= 0, got {device}")
        self.path = Path(path)
        header, plan = read_engine(self.path)  # FileNotFoundError / ValueError on a bad file
        self.header: EngineHeader = header
        self.emotions: tuple[str, ...] = header.emotions
        self.input_scale: float = header.input_scale
        self.input_bias: float = header.input_bias
        cpp = _core_trt() if backend in ("auto", "cpp") else None
        if backend == "cpp" and cpp is None:
            raise RuntimeError(
                "ferfast._core was built without TensorRT (no TrtRuntime); rebuild with TensorRT "
                "and CUDA installed (see docs/jetson.md) or use backend='python'"
            )
        self._impl: _Backend
        if cpp is not None:
            self._impl = cpp(str(self.path), device)  # validates the header itself (C++)
            self.backend = "cpp"
        else:
            self._impl = _PyCudaBackend(header, plan, device, self.path)
            self.backend = "python"
        self.max_batch: int = int(self._impl.max_batch)  # the engine's optimisation profile max

    def new_input_buffer(self, n: int) -> npt.NDArray[np.float32]:
        """C-contiguous float32 (n, 1, 48, 48) in pinned (page-locked) host memory."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise TypeError(f"n must be an int, got {type(n).__name__}")
        if n < 1:
            raise ValueError(f"n must be a positive int, got {n}")
        return self._impl.new_input_buffer(int(n))

    def run(self, batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """C-contiguous (n, 1, 48, 48) float32 -> (n, K) float32 probs; batches over max_batch
        are split. A wrong type or dtype raises TypeError, a wrong shape or layout ValueError."""
        n = check_batch(batch)
        if n == 0:
            return np.empty((0, len(self.emotions)), np.float32)
        if n <= self.max_batch:
            return self._impl.run(batch)
        parts = [self._impl.run(batch[i : i + self.max_batch]) for i in range(0, n, self.max_batch)]
        return np.concatenate(parts, axis=0)

    @property
    def gpu_preprocessing(self) -> bool:
        """True when :meth:`run_frame` preprocesses on the GPU (C++ runtime built with CUDA)."""
        return hasattr(self._impl, "run_frame")

    def run_frame(
        self,
        frame: npt.NDArray[np.uint8],
        boxes: npt.ArrayLike,
        landmarks: npt.ArrayLike | None = None,
        framing: Framing | None = None,
    ) -> npt.NDArray[np.float32]:
        """frame + face boxes -> (n, K) probs, preprocessing straight into the engine input.

        With the C++ runtime built with CUDA the crops are made on the GPU in one native call
        per ``max_batch`` faces with the GIL released (``TrtRuntime.run_frame``: mapped frame
        memory on Jetson, no host copy of the crops); otherwise :func:`ferfast.preprocess` fills
        a pinned buffer and :meth:`run` runs it. Input scale and bias come from the engine
        header; ``framing`` gives the geometry (default ``ferfast.framing.FRAMING``).
        """
        from ..framing import FRAMING
        from ..preprocess import preprocess

        geometry = (framing or FRAMING).with_input(self.input_scale, self.input_bias)
        box_arr = np.asarray(boxes, dtype=np.float64)
        if box_arr.size == 0:
            return np.empty((0, len(self.emotions)), np.float32)
        if box_arr.ndim != 2 or box_arr.shape[1] != 4:
            raise ValueError(f"boxes must have shape (N, 4), got {box_arr.shape}")
        lm_arr = None if landmarks is None else np.asarray(landmarks, dtype=np.float64)
        n = box_arr.shape[0]
        if not self.gpu_preprocessing:
            batch = preprocess(frame, box_arr, landmarks=lm_arr, framing=geometry)
            return self.run(np.ascontiguousarray(batch))
        parts = []
        for i in range(0, n, self.max_batch):
            sl = slice(i, i + self.max_batch)
            parts.append(
                self._impl.run_frame(  # type: ignore[attr-defined]
                    frame,
                    box_arr[sl],
                    None if lm_arr is None else lm_arr[sl],
                    geometry.margin,
                    geometry.offset_x,
                    geometry.offset_y,
                    tuple(geometry.eye_left),
                    tuple(geometry.eye_right),
                )
            )
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)

    def __repr__(self) -> str:
        h = self.header
        return (
            f"TensorRTRunner({str(self.path)!r}, {h.precision}, max_batch={h.max_batch}, "
            f"backend={self.backend!r}, gpu={h.gpu_name!r})"
        )


class _PyCudaBackend:
    """tensorrt + pycuda implementation (used when the C++ runtime is not compiled in)."""

    def __init__(self, header: EngineHeader, plan: bytes, device: int, path: Path) -> None:
        version = require_tensorrt()
        require_pycuda()
        import pycuda.driver as cuda
        import tensorrt as trt

        gpu = gpu_info(device)
        check_compatible(header, version, gpu.name, gpu.compute_capability, path)

        cuda.init()
        self._cuda = cuda
        self._ctx = cuda.Device(device).retain_primary_context()
        self._lock = threading.Lock()
        self._ctx.push()
        try:
            self._logger = trt.Logger(trt.Logger.WARNING)
            self._runtime = trt.Runtime(self._logger)
            engine = self._runtime.deserialize_cuda_engine(plan)
            if engine is None:
                raise RuntimeError(f"TensorRT could not deserialize the engine in {path}")
            self._engine = engine
            self._context = engine.create_execution_context()
            names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
            inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
            outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
            if len(inputs) != 1 or len(outputs) != 1:
                raise ValueError(f"{path}: expected 1 input and 1 output tensor, got {names}")
            self._in, self._out = inputs[0], outputs[0]
            self._k = int(engine.get_tensor_shape(self._out)[-1])
            check_io(header.emotions, self._k)
            self._max = int(engine.get_tensor_profile_shape(self._in, 0)[2][0])
            self._stream = cuda.Stream()
            self._d_in = cuda.mem_alloc(self._max * int(np.prod(INPUT_SHAPE)) * 4)
            self._d_out = cuda.mem_alloc(self._max * self._k * 4)
            self._h_out = cuda.pagelocked_empty((self._max, self._k), np.float32)
            self._context.set_tensor_address(self._in, int(self._d_in))
            self._context.set_tensor_address(self._out, int(self._d_out))
        finally:
            cuda.Context.pop()

    @property
    def max_batch(self) -> int:
        return self._max

    def new_input_buffer(self, n: int) -> np.ndarray:
        with self._lock:
            self._ctx.push()
            try:
                buf = self._cuda.pagelocked_empty((n, *INPUT_SHAPE), np.float32)
            finally:
                self._cuda.Context.pop()
        return np.asarray(buf)

    def run(self, batch: np.ndarray) -> np.ndarray:
        n = batch.shape[0]
        if n > self._max:
            raise ValueError(f"batch of {n} exceeds the engine's max batch {self._max}")
        cuda = self._cuda
        with self._lock:
            self._ctx.push()
            try:
                if not self._context.set_input_shape(self._in, (n, *INPUT_SHAPE)):
                    raise RuntimeError(f"TensorRT rejected input shape {(n, *INPUT_SHAPE)}")
                cuda.memcpy_htod_async(self._d_in, batch, self._stream)
                if not self._context.execute_async_v3(self._stream.handle):
                    raise RuntimeError("TensorRT execute_async_v3 failed")
                cuda.memcpy_dtoh_async(self._h_out[:n], self._d_out, self._stream)
                self._stream.synchronize()
                return np.array(self._h_out[:n], dtype=np.float32, copy=True)
            finally:
                cuda.Context.pop()
