"""Model runners under the Engine: ONNX Runtime (CPU, CUDA or TensorRT execution provider) and
the native TensorRT runtime for ``.engine`` files (``ferfast.tensorrt``, imported lazily).

A runner turns a float32 ``(n, 1, 48, 48)`` batch (the leading rows of a buffer obtained from
``new_input_buffer``) into ``(n, K)`` softmax probabilities. A runner that preprocesses frames
itself (GPU crops straight into its input) is also a :class:`FrameRunner`. Runners are safe to
share between threads: ``run`` keeps its per-call state (IO bindings, output arrays) per thread.

``run_batches`` runs a whole split through any runner in chunks; ``measure_latency`` times one
batch size (training, calibration and ``ferfast bench-engine`` share it).
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from ferfast._types import PathLike
from ferfast.contract import INPUT_NAME, KEY_VERSION, OUTPUT_NAME, SIDE, parse_metadata

if TYPE_CHECKING:
    import onnxruntime

    from ferfast.framing import Framing

Float32Array = npt.NDArray[np.float32]

# "onnxruntime" is the older name of "cpu" and stays accepted.
BACKENDS = ("auto", "cpu", "cuda", "tensorrt", "onnxruntime")
_ALIASES = {"onnxruntime": "cpu"}

# ONNX Runtime execution providers per ferfast backend, in ONNX Runtime's priority order (nodes
# an accelerator cannot run fall back to the next provider).
PROVIDERS: dict[str, tuple[str, ...]] = {
    "cpu": ("CPUExecutionProvider",),
    "cuda": ("CUDAExecutionProvider", "CPUExecutionProvider"),
    "tensorrt": ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"),
}

GPU_INSTALL = (
    "pip install 'ferfast[gpu]' (onnxruntime-gpu; it shares the onnxruntime package folder, so "
    "then run: pip uninstall -y onnxruntime && pip install --force-reinstall --no-deps "
    "onnxruntime-gpu)"
)


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


def default_threads() -> int:
    """Default intra-op thread count: min(2, number of CPUs)."""
    return max(1, min(2, os.cpu_count() or 1))


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


class OrtRunner:
    """ONNX Runtime runner on one execution provider: ``"cpu"`` (default), ``"cuda"`` or
    ``"tensorrt"`` (``PROVIDERS``; the GPU providers need onnxruntime-gpu and an NVIDIA GPU).

    The session uses full graph optimisation, ``threads`` intra-op threads (default
    ``min(2, os.cpu_count())``), one inter-op thread and sequential execution; ``spin=False``
    stops idle worker threads from spinning between runs (for a runner that shares its cores
    with other busy work, e.g. a training loop). ``run`` binds the caller's buffer directly as
    the model input (an OrtValue over the numpy memory, so preprocess output is consumed without
    a copy; a GPU provider uploads it) and the output to a preallocated array; the bindings are
    cached per thread and per (buffer, n), so repeated calls re-use them. A GPU provider that
    ONNX Runtime cannot start (libraries, driver) raises BackendUnavailableError instead of
    silently running on the CPU.
    """

    _CACHE_SIZE = 8

    def __init__(
        self,
        path: PathLike,
        threads: int | None = None,
        spin: bool = True,
        provider: str = "cpu",
    ) -> None:
        import onnxruntime as ort

        if provider not in PROVIDERS:
            raise ValueError(f"provider must be one of {', '.join(PROVIDERS)}, got {provider!r}")
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {self.path}")
        if threads is None:
            threads = default_threads()
        if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)):
            raise TypeError(f"threads must be an int or None, got {type(threads).__name__}")
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.threads = int(threads)
        self.provider = provider
        if provider != "cpu":
            _require_gpu_provider(provider)
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
                str(self.path), options, providers=_provider_list(provider)
            )
        except Exception as exc:  # ORT raises its own exception types (InvalidProtobuf, Fail...)
            raise ValueError(f"cannot load ONNX model {self.path}: {exc}") from exc
        active = self.session.get_providers()
        if active[0] != PROVIDERS[provider][0]:
            raise BackendUnavailableError(_fallback_message(provider, active))
        self.num_classes = self._check_io(self.session)
        props = dict(self.session.get_modelmeta().custom_metadata_map)
        self.emotions, self.input_scale, self.input_bias = parse_metadata(
            props, self.num_classes, str(self.path)
        )
        self.version = props.get(KEY_VERSION)
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
            raise ValueError(f"{src}: input must have shape (N, 1, {SIDE}, {SIDE}), got {shape}")
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

    def new_input_buffer(self, n: int) -> Float32Array:
        """A new C-contiguous float32 (n, 1, 48, 48) buffer (plain host memory)."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        return np.empty((n, 1, SIDE, SIDE), dtype=np.float32)

    def _binding(self, batch: Float32Array, n: int) -> tuple[Any, Float32Array]:
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

    def run(self, batch: Float32Array) -> Float32Array:
        """Probabilities (n, K) float32 for a C-contiguous float32 (n, 1, 48, 48) batch."""
        n = check_batch(batch)
        if n == 0:
            return np.empty((0, self.num_classes), dtype=np.float32)
        binding, out = self._binding(batch, n)
        self.session.run_with_iobinding(binding)
        return np.array(out, dtype=np.float32, copy=True)

    def __repr__(self) -> str:
        return (
            f"OrtRunner({str(self.path)!r}, provider={self.provider!r}, threads={self.threads}, "
            f"classes={self.num_classes})"
        )


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


def _provider_list(provider: str) -> list[Any]:
    """The ``providers`` argument of InferenceSession for a ferfast provider name."""
    if provider != "tensorrt":
        return list(PROVIDERS[provider])
    from ferfast.assets import cache_dir

    # TensorRT builds an engine per model on the first session (minutes); the cache keeps it.
    trt_options = {
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": str(cache_dir().expanduser() / "ort-tensorrt"),
    }
    return [("TensorrtExecutionProvider", trt_options), *PROVIDERS["tensorrt"][1:]]


def _ort_distributions() -> list[str]:
    """The installed ONNX Runtime wheels (onnxruntime, onnxruntime-gpu) by name."""
    found = []
    for name in ("onnxruntime", "onnxruntime-gpu"):
        try:
            metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        found.append(name)
    return found


def _require_gpu_provider(provider: str) -> None:
    """Raise BackendUnavailableError unless ONNX Runtime has ``provider`` and a GPU is present."""
    import onnxruntime as ort

    from ferfast.tensorrt.gpu import cuda_device_count

    name = PROVIDERS[provider][0]
    available = list(ort.get_available_providers())
    if name not in available:
        wheels = _ort_distributions()
        if wheels == ["onnxruntime", "onnxruntime-gpu"]:
            fix = (
                "both onnxruntime and onnxruntime-gpu are installed and the CPU wheel's files "
                "won; run: pip uninstall -y onnxruntime && pip install --force-reinstall "
                "--no-deps onnxruntime-gpu"
            )
        else:
            fix = f"install the GPU build of ONNX Runtime: {GPU_INSTALL}"
        raise BackendUnavailableError(
            f"backend {provider!r} (--backend / backend=) needs ONNX Runtime's {name}, which "
            f"this ONNX Runtime lacks (providers: {', '.join(available)}); {fix}"
        )
    if cuda_device_count() == 0:
        raise BackendUnavailableError(
            f"backend {provider!r} (--backend / backend=) needs an NVIDIA GPU with its driver "
            "(libcuda), and none was found; use backend 'cpu'"
        )
    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:  # CUDA/cuDNN from the nvidia-* wheels of onnxruntime-gpu[cuda,cudnn]
        preload()


def _fallback_message(provider: str, active: list[str]) -> str:
    """Why a GPU session came up on another provider, and how to fix it."""
    libraries = {
        "cuda": "the CUDA 12 and cuDNN 9 libraries (pip install 'onnxruntime-gpu[cuda,cudnn]')",
        "tensorrt": "the TensorRT libraries (pip install 'ferfast[tensorrt]') and the CUDA 12 "
        "and cuDNN 9 libraries (pip install 'onnxruntime-gpu[cuda,cudnn]')",
    }[provider]
    return (
        f"ONNX Runtime could not start {PROVIDERS[provider][0]} for backend {provider!r} "
        f"(--backend / backend=) and fell back to {', '.join(active)}: it needs {libraries} "
        "and a working NVIDIA driver; use backend 'cpu' to run on the CPU"
    )


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


def _count(value: object, name: str, minimum: int) -> int:
    """``value`` as an int >= ``minimum``: TypeError for a non-int, ValueError below it."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def run_batches(runner: Runner, x: npt.ArrayLike, batch: int = 256) -> Float32Array:
    """Probabilities (N, K) of model input ``x`` ((N, 1, 48, 48), made C-contiguous float32),
    run through ``runner`` in chunks of ``batch`` rows (a whole split in bounded memory)."""
    batch = _count(batch, "batch", 1)
    faces = np.ascontiguousarray(x, dtype=np.float32)
    if len(faces) == 0:
        return runner.run(faces)
    parts = [runner.run(faces[i : i + batch]) for i in range(0, len(faces), batch)]
    return np.concatenate(parts)


@dataclass(frozen=True)
class Latency:
    """Wall time of ``runner.run`` on one batch size: the seconds of each timed run."""

    batch: int
    seconds: tuple[float, ...]

    @property
    def repeats(self) -> int:
        """Number of timed runs."""
        return len(self.seconds)

    @property
    def median_ms(self) -> float:
        """Median milliseconds per run (per batch)."""
        return float(np.median(self.seconds)) * 1e3

    @property
    def p90_ms(self) -> float:
        """90th-percentile milliseconds per run (per batch)."""
        return float(np.percentile(self.seconds, 90)) * 1e3

    @property
    def median_ms_per_face(self) -> float:
        """Median milliseconds per face."""
        return self.median_ms / self.batch

    @property
    def min_ms_per_face(self) -> float:
        """Best milliseconds per face."""
        return min(self.seconds) * 1e3 / self.batch


def measure_latency(
    runner: Runner,
    batch: int,
    repeats: int = 50,
    warmup: int = 5,
    data: npt.ArrayLike | None = None,
) -> Latency:
    """Time ``runner.run`` on one ``new_input_buffer(batch)``: ``warmup`` untimed runs, then
    ``repeats`` timed ones. The buffer holds the first ``batch`` rows of ``data`` when it has
    that many (model input), else random faces (fixed seed)."""
    batch = _count(batch, "batch", 1)
    repeats = _count(repeats, "repeats", 1)
    warmup = _count(warmup, "warmup", 0)
    x = runner.new_input_buffer(batch)
    rows = None if data is None else np.asarray(data, dtype=np.float32)
    if rows is not None and len(rows) >= batch:
        x[...] = rows[:batch]
    else:
        gray = np.random.default_rng(0).integers(0, 256, x.shape).astype(np.float32)
        x[...] = gray * np.float32(runner.input_scale) + np.float32(runner.input_bias)
    for _ in range(warmup):
        runner.run(x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        runner.run(x)
        times.append(time.perf_counter() - t0)
    return Latency(batch, tuple(times))
