"""``OrtRunner``: the ONNX Runtime runner (CPU, CUDA or TensorRT execution provider).

It implements the runner contract of :mod:`ferfast.runner` for ``.onnx`` models; a GPU provider
that ONNX Runtime cannot start raises :class:`~ferfast.runner.BackendUnavailableError` instead of
quietly running on the CPU. ``run`` keeps its per-call state (IO bindings, output arrays) per
thread, so one runner can be shared between threads.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ferfast._types import PathLike
from ferfast.contract import INPUT_NAME, KEY_VERSION, OUTPUT_NAME, SIDE, parse_metadata
from ferfast.runner import BackendUnavailableError, Float32Array, check_batch

if TYPE_CHECKING:
    import onnxruntime

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


def default_threads() -> int:
    """Default intra-op thread count: min(2, number of CPUs)."""
    return max(1, min(2, os.cpu_count() or 1))


def make_session(
    path: PathLike, *, provider: str = "cpu", threads: int = 1, spin: bool = True
) -> onnxruntime.InferenceSession:
    """An ONNX Runtime session for ``path``: the one place ferfast sets session options.

    Full graph optimisation, ``threads`` intra-op threads, one inter-op thread, sequential
    execution, quiet logs; ``spin=False`` stops idle worker threads from spinning between runs
    (for a model that shares its cores with other busy threads). ``provider``: a key of
    ``PROVIDERS``. Raises ValueError for a file ONNX Runtime cannot load.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), options, providers=_provider_list(provider))
    except Exception as exc:  # ORT raises its own exception types (InvalidProtobuf, Fail...)
        raise ValueError(f"cannot load ONNX model {path}: {exc}") from exc


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
        self.session = make_session(self.path, provider=provider, threads=self.threads, spin=spin)
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
