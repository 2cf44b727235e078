"""The runner contract every model backend implements (docs/architecture.md, Runner contract).

A runner turns a float32 ``(n, 1, 48, 48)`` batch (the leading rows of a buffer obtained from
``new_input_buffer``) into ``(n, K)`` softmax probabilities. A runner that preprocesses frames
itself (GPU crops straight into its input) is also a :class:`FrameRunner`. Runners are safe to
share between threads.

The implementations live elsewhere and import this module, never the other way round:
``OrtRunner`` (:mod:`ferfast.ort`) and ``TensorRTRunner`` (:mod:`ferfast.tensorrt.runner`);
:mod:`ferfast.runtime` picks one for a model and a backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from ferfast.contract import SIDE

if TYPE_CHECKING:
    from ferfast.framing import Framing

Float32Array = npt.NDArray[np.float32]


class BackendUnavailableError(RuntimeError):
    """The requested backend cannot run here; the message says what is missing and how to get it."""


class Runner(Protocol):
    """What the Engine needs from a model backend."""

    emotions: tuple[str, ...]
    input_scale: float
    input_bias: float

    def new_input_buffer(self, n: int) -> Float32Array:
        """A C-contiguous float32 (n, 1, 48, 48) buffer that preprocess writes into."""
        ...

    def run(self, batch: Float32Array) -> Float32Array:
        """Probabilities (n, K) float32 for ``batch``, the leading rows of such a buffer."""
        ...


@runtime_checkable
class FrameRunner(Runner, Protocol):
    """A runner that crops faces from a frame itself (``TensorRTRunner`` with the CUDA kernel).

    ``gpu_preprocessing`` says whether ``run_frame`` preprocesses natively; only then does the
    Engine hand it frames instead of preprocessing on the CPU.
    """

    @property
    def gpu_preprocessing(self) -> bool:
        """True when ``run_frame`` preprocesses on the GPU straight into the model input."""
        ...

    def run_frame(
        self,
        frame: npt.NDArray[np.uint8],
        boxes: npt.ArrayLike,
        landmarks: npt.ArrayLike | None = None,
        framing: Framing | None = None,
    ) -> Float32Array:
        """Probabilities (n, K) float32 for the faces at ``boxes`` in ``frame``."""
        ...


def frame_runner(runner: Runner) -> FrameRunner | None:
    """``runner`` when it preprocesses frames on the GPU itself, else None."""
    if isinstance(runner, FrameRunner) and runner.gpu_preprocessing:
        return runner
    return None


def check_batch(batch: object, name: str = "batch") -> int:
    """Validate a model input batch (C-contiguous float32 (n,1,48,48)); return n."""
    if not isinstance(batch, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(batch).__name__}")
    if batch.dtype != np.float32:
        raise TypeError(f"{name} must be float32, got {batch.dtype}")
    if batch.ndim != 4 or batch.shape[1:] != (1, SIDE, SIDE):
        raise ValueError(f"{name} must have shape (n, 1, {SIDE}, {SIDE}), got {batch.shape}")
    if not batch.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (use leading rows of new_input_buffer)")
    return int(batch.shape[0])
