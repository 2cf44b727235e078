"""Type stub of the compiled extension ferfast._core (cpp/module.cpp; GPU parts when built in).

preprocess_cuda, cuda_* and TrtRuntime exist only when the extension was built with CUDA /
TensorRT (WITH_CUDA / WITH_TENSORRT tell); calling them otherwise is an AttributeError.
Framing defaults (``...`` here) are ferfast.framing.FRAMING's, OUT_SIDE is ferfast.contract.SIDE
(compiled from the contract.hpp that CMake generates from them).
"""

import numpy as np
import numpy.typing as npt

OUT_SIDE: int
MAX_SIDE_FACTOR: int
WITH_CUDA: bool
WITH_TENSORRT: bool

_Float32 = npt.NDArray[np.float32]

def preprocess(
    frame: npt.NDArray[np.uint8],
    boxes: npt.ArrayLike,
    out: _Float32 | None = None,
    landmarks: npt.ArrayLike | None = None,
    margin: float = ...,
    offset_x: float = ...,
    offset_y: float = ...,
    eye_left: tuple[float, float] = ...,
    eye_right: tuple[float, float] = ...,
    scale: float = ...,
    bias: float = ...,
) -> _Float32: ...
def preprocess_cuda(
    frame: npt.NDArray[np.uint8],
    boxes: npt.ArrayLike,
    out: _Float32 | None = None,
    landmarks: npt.ArrayLike | None = None,
    margin: float = ...,
    offset_x: float = ...,
    offset_y: float = ...,
    eye_left: tuple[float, float] = ...,
    eye_right: tuple[float, float] = ...,
    scale: float = ...,
    bias: float = ...,
) -> _Float32: ...
def _preprocess_cuda_emulated(
    frame: npt.NDArray[np.uint8],
    boxes: npt.ArrayLike,
    out: _Float32 | None = None,
    landmarks: npt.ArrayLike | None = None,
    margin: float = ...,
    offset_x: float = ...,
    offset_y: float = ...,
    eye_left: tuple[float, float] = ...,
    eye_right: tuple[float, float] = ...,
    scale: float = ...,
    bias: float = ...,
) -> _Float32: ...
def cuda_uses_mapped_frames() -> bool: ...
def cuda_device_count() -> int: ...

class TrtRuntime:
    def __init__(self, path: str, device: int = 0) -> None: ...
    @property
    def emotions(self) -> tuple[str, ...]: ...
    @property
    def input_scale(self) -> float: ...
    @property
    def input_bias(self) -> float: ...
    @property
    def max_batch(self) -> int: ...
    @property
    def header(self) -> dict[str, str]: ...
    @property
    def trt_version(self) -> str: ...
    @property
    def gpu_name(self) -> str: ...
    def new_input_buffer(self, n: int) -> _Float32: ...
    def run(self, batch: _Float32) -> _Float32: ...
    def run_frame(
        self,
        frame: npt.NDArray[np.uint8],
        boxes: npt.ArrayLike,
        landmarks: npt.ArrayLike | None = None,
        margin: float = ...,
        offset_x: float = ...,
        offset_y: float = ...,
        eye_left: tuple[float, float] = ...,
        eye_right: tuple[float, float] = ...,
    ) -> _Float32: ...
