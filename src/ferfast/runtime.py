"""Model runners: ONNX Runtime on the CPU (IO binding, zero-copy input) and TensorRT (lazy).

A runner turns a float32 ``(n, 1, 48, 48)`` batch (the leading rows of a buffer obtained from
``new_input_buffer``) into ``(n, K)`` softmax probabilities. Runners are safe to share between
threads: ``run`` keeps its per-call state (IO bindings, output arrays) per thread.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ferfast.labels import EMOTIONS

if TYPE_CHECKING:
    import onnxruntime

INPUT_NAME = "input"
OUTPUT_NAME = "probs"
SIDE = 48
DEFAULT_SCALE = 1.0 / 255.0
DEFAULT_BIAS = 0.0
BACKENDS = ("auto", "onnxruntime", "tensorrt")

PathLike = str | os.PathLike


class Runner(Protocol):
    """What the Engine needs from a model backend."""

    emotions: tuple[str, ...]
    input_scale: float
    input_bias: float

    def new_input_buffer(self, n: int) -> np.ndarray:
        """A C-contiguous float32 (n, 1, 48, 48) buffer that preprocess writes into."""
        ...

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities (n, K) float32 for ``batch``, the leading rows of such a buffer."""
        ...


def parse_metadata(props: dict[str, str], num_classes: int, source: str) -> tuple:
    """(emotions, input_scale, input_bias) from ferfast ``metadata_props``, with contract defaults.

    Without ``ferfast.emotions`` a 7-class model uses EMOTIONS and a 6-class model EMOTIONS
    without "disgust". Raises ValueError naming ``source`` when the metadata is malformed.
    """
    raw = props.get("ferfast.emotions")
    if raw is not None:
        emotions = tuple(name.strip() for name in raw.split(",") if name.strip())
    elif num_classes == len(EMOTIONS):
        emotions = EMOTIONS
    elif num_classes == len(EMOTIONS) - 1:
        emotions = tuple(e for e in EMOTIONS if e != "disgust")
    else:
        raise ValueError(
            f"{source}: model has {num_classes} outputs and no 'ferfast.emotions' metadata"
        )
    if len(emotions) != num_classes:
        raise ValueError(
            f"{source}: 'ferfast.emotions' lists {len(emotions)} classes but the model "
            f"outputs {num_classes}"
        )
    if len(set(emotions)) != len(emotions):
        raise ValueError(f"{source}: duplicate names in 'ferfast.emotions': {raw!r}")
    values = []
    for key, default in (("ferfast.input_scale", DEFAULT_SCALE), ("ferfast.input_bias", 0.0)):
        text = props.get(key)
        try:
            value = default if text is None else float(text)
        except ValueError:
            raise ValueError(f"{source}: metadata {key}={text!r} is not a number") from None
        if not np.isfinite(value):
            raise ValueError(f"{source}: metadata {key}={text!r} is not finite")
        values.append(value)
    if values[0] == 0.0:
        raise ValueError(f"{source}: metadata ferfast.input_scale must be non-zero")
    return emotions, values[0], values[1]


def default_threads() -> int:
    """Default intra-op thread count: min(2, number of CPUs)."""
    return max(1, min(2, os.cpu_count() or 1))


def check_batch(batch: Any, name: str = "batch") -> int:
    """Validate a model input batch (C-contiguous float32 (n,1,48,48)); return n."""
    if not isinstance(batch, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(batch).__name__}")
    if batch.dtype != np.float32:
        raise TypeError(f"{name} must be float32, got {batch.dtype}")
    if batch.ndim != 4 or batch.shape[1:] != (1, SIDE, SIDE):
        raise ValueError(f"{name} must have shape (n, 1, {SIDE}, {SIDE}), got {batch.shape}")
    if not batch.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (use leading rows of new_input_buffer)")
    return batch.shape[0]


class OrtRunner:
    """ONNX Runtime CPU runner.

    The session uses full graph optimisation, ``threads`` intra-op threads (default
    ``min(2, os.cpu_count())``), one inter-op thread and sequential execution; ``spin=False``
    stops idle worker threads from spinning between runs (for a runner that shares its cores
    with other busy work, e.g. a training loop). ``run`` binds
    the caller's buffer directly as the model input (an OrtValue over the numpy memory, so
    preprocess output is consumed without a copy) and the output to a preallocated array; the
    bindings are cached per thread and per (buffer, n), so repeated calls re-use them.
    """

    _CACHE_SIZE = 8

    def __init__(self, path: PathLike, threads: int | None = None, spin: bool = True) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {self.path}")
        if threads is None:
            threads = default_threads()
        if not isinstance(threads, (int, np.integer)) or isinstance(threads, bool) or threads < 1:
            raise ValueError(f"threads must be a positive int or None, got {threads!r}")
        self.threads = int(threads)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        if not spin:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(
                str(self.path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # ORT raises its own exception types (InvalidProtobuf, Fail...)
            raise ValueError(f"cannot load ONNX model {self.path}: {exc}") from exc
        self.num_classes = self._check_io(self.session)
        props = dict(self.session.get_modelmeta().custom_metadata_map)
        self.emotions, self.input_scale, self.input_bias = parse_metadata(
            props, self.num_classes, str(self.path)
        )
        self.version = props.get("ferfast.version")
        self._ortvalue = ort.OrtValue
        self._local = threading.local()

    def _check_io(self, session: onnxruntime.InferenceSession) -> int:
        """Check the model I/O contract; return the number of classes K."""
        inputs, outputs = session.get_inputs(), session.get_outputs()
        src = str(self.path)
        if len(inputs) != 1 or inputs[0].name != INPUT_NAME:
            raise ValueError(
                f"{src}: expected one input named {INPUT_NAME!r}, got {[i.name for i in inputs]}"
            )
        inp = inputs[0]
        if inp.type != "tensor(float)":
            raise ValueError(f"{src}: input {INPUT_NAME!r} must be float32, got {inp.type}")
        shape = list(inp.shape)
        if len(shape) != 4 or shape[1:] != [1, SIDE, SIDE]:
            raise ValueError(f"{src}: input must have shape (N, 1, 48, 48), got {shape}")
        if isinstance(shape[0], int) and shape[0] != -1:
            raise ValueError(f"{src}: input batch dimension must be dynamic, got {shape[0]}")
        out = {o.name: o for o in outputs}.get(OUTPUT_NAME)
        if out is None:
            raise ValueError(
                f"{src}: no output named {OUTPUT_NAME!r} (outputs: {[o.name for o in outputs]})"
            )
        if out.type != "tensor(float)":
            raise ValueError(f"{src}: output {OUTPUT_NAME!r} must be float32, got {out.type}")
        oshape = list(out.shape)
        if len(oshape) != 2 or not isinstance(oshape[1], int) or oshape[1] < 2:
            raise ValueError(f"{src}: output {OUTPUT_NAME!r} must have shape (N, K), got {oshape}")
        return oshape[1]

    def new_input_buffer(self, n: int) -> np.ndarray:
        """A new C-contiguous float32 (n, 1, 48, 48) buffer (plain host memory)."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        return np.empty((n, 1, SIDE, SIDE), dtype=np.float32)

    def _binding(self, batch: np.ndarray, n: int) -> tuple[Any, np.ndarray]:
        cache = getattr(self._local, "cache", None)
        if cache is None:
            cache = self._local.cache = OrderedDict()
        key = (batch.ctypes.data, n)
        hit = cache.get(key)
        if hit is not None:
            cache.move_to_end(key)
            return hit[0], hit[1]
        binding = self.session.io_binding()
        value = self._ortvalue.ortvalue_from_numpy(batch)  # shares batch's memory
        binding.bind_ortvalue_input(INPUT_NAME, value)
        out = np.empty((n, self.num_classes), dtype=np.float32)
        binding.bind_output(OUTPUT_NAME, "cpu", 0, np.float32, out.shape, out.ctypes.data)
        # Keep batch, value and out alive with the binding: the cache key stays unique.
        cache[key] = (binding, out, value, batch)
        if len(cache) > self._CACHE_SIZE:
            cache.popitem(last=False)
        return binding, out

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities (n, K) float32 for a C-contiguous float32 (n, 1, 48, 48) batch."""
        n = check_batch(batch)
        if n == 0:
            return np.empty((0, self.num_classes), dtype=np.float32)
        binding, out = self._binding(batch, n)
        self.session.run_with_iobinding(binding)
        return out.copy()

    def __repr__(self) -> str:
        return f"OrtRunner({str(self.path)!r}, threads={self.threads}, classes={self.num_classes})"


def resolve_model(model: PathLike) -> Path:
    """Path of ``model``: "int8"/"fp32" (bundled) or a path to an .onnx or .engine file."""
    from ferfast.models import BUNDLED, model_path

    if isinstance(model, str) and model.lower() in BUNDLED:
        return model_path(model)
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model must be 'int8', 'fp32' or a path, got {type(model).__name__}")
    path = Path(model)
    # The messages name both spellings: the CLI flag and the Python argument.
    if path.suffix.lower() not in (".onnx", ".engine"):
        raise ValueError(
            f"model {str(model)!r} is neither a bundled model name (int8, fp32) nor the path of "
            "an .onnx or .engine file (--model / model=)"
        )
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path} (--model / model=)")
    return path


def make_runner(model: PathLike = "int8", backend: str = "auto", threads: int | None = None):
    """Create the Runner for ``model``.

    ``backend="auto"`` uses TensorRT for a ``.engine`` file and ONNX Runtime (CPU) for an
    ``.onnx`` file; ``"tensorrt"`` needs an ``.engine`` file and the optional ``tensorrt`` extra.
    """
    if backend not in BACKENDS:
        raise ValueError(
            f"backend (--backend / backend=) must be one of {', '.join(BACKENDS)}, got {backend!r}"
        )
    path = resolve_model(model)
    is_engine = path.suffix.lower() == ".engine"
    if backend == "onnxruntime" and is_engine:
        raise ValueError(
            f"backend 'onnxruntime' (--backend / backend=) cannot run the TensorRT engine file "
            f"{path}; use backend 'auto' or 'tensorrt'"
        )
    if backend == "tensorrt" and not is_engine:
        from ferfast.models import BUNDLED

        name = model if isinstance(model, str) and model.lower() in BUNDLED else path
        raise ValueError(
            f"backend 'tensorrt' (--backend / backend=) runs TensorRT engine files (.engine), "
            f"not {path}; build one on the target GPU with: ferfast build-engine {name} "
            "-o MODEL.engine"
        )
    if is_engine:
        try:  # lazy: tensorrt/pycuda are optional and only exist on GPU machines
            from ferfast.tensorrt.runner import TensorRTRunner

            return TensorRTRunner(path)
        except ImportError as exc:
            raise RuntimeError(
                f"the TensorRT backend is unavailable ({exc}); install the 'tensorrt' extra "
                "(tensorrt, pycuda) on a machine with an NVIDIA GPU, or pass an .onnx model or "
                "a bundled model name (--model / model=)"
            ) from exc
        except ValueError as exc:
            if str(path) in str(exc):
                raise
            raise ValueError(f"cannot load TensorRT engine {path}: {exc}") from exc
    return OrtRunner(path, threads=threads)
