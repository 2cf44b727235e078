"""Build a TensorRT engine from a ferfast ONNX model (TensorRT Python API, 8.6 / 10.x / 11).

Precision:

- ``int8``: explicit quantization from the Q/DQ ONNX model (``ferfast_int8.onnx``); no
  calibrator. TensorRT 8.x needs the INT8 builder flag to honour Q/DQ; 10.x builds the network
  strongly typed (the Q/DQ nodes fix the precision); in 11.x strong typing is the only mode.
- ``fp16``: the FP16 builder flag (TensorRT 8.6 / 10.x). TensorRT 11 removed it: convert the
  ONNX model to mixed precision first (ModelOpt AutoCast) and build that with ``fp32``.
- ``fp32``: full precision (TF32 disabled).

The engine gets an optimisation profile (1, opt, max) for the dynamic batch and is written with
the ferfast header (see :mod:`ferfast.tensorrt.header`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from .._types import PathLike
from ..contract import INPUT_SHAPE, KEY_VERSION, OUTPUT_NAME, parse_metadata
from ._compat import require_tensorrt, trt_major
from .gpu import GpuInfo, gpu_info
from .header import PRECISIONS, EngineHeader, check_io, write_engine

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OnnxInfo:
    """What build-engine needs from a ferfast ONNX model."""

    emotions: tuple[str, ...]
    input_scale: float
    input_bias: float
    model_version: str
    has_qdq: bool | None  # None when the onnx package is not installed to look


@dataclass(frozen=True)
class BuildResult:
    """Outcome of :func:`build_engine`."""

    path: Path
    header: EngineHeader
    plan_bytes: int
    seconds: float
    timing_cache: Path | None


def _num_classes(shape: list[object], path: Path) -> int:
    """K of an output shape ``(N, K)``; ValueError when it is not a fixed width."""
    k = shape[-1] if len(shape) == 2 else None
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"{path}: output {OUTPUT_NAME!r} must have shape (N, K), got {shape}")
    return k


def read_onnx_info(onnx_path: PathLike) -> OnnxInfo:
    """Read the ferfast metadata (emotions, input scale/bias) and whether the graph has Q/DQ.

    The metadata is parsed by :func:`ferfast.contract.parse_metadata` (the same defaults and
    checks as the ONNX Runtime runner).
    """
    path = Path(onnx_path)
    if not path.is_file():
        raise FileNotFoundError(f"ONNX model not found: {path}")
    meta: dict[str, str]
    has_qdq: bool | None
    try:
        import onnx
    except ImportError:
        from ferfast.ort import make_session

        sess = make_session(path)
        meta = dict(sess.get_modelmeta().custom_metadata_map)
        outputs = {o.name: list(o.shape) for o in sess.get_outputs()}
        has_qdq = None
    else:
        model = onnx.load(str(path), load_external_data=False)
        meta = {p.key: p.value for p in model.metadata_props}
        outputs = {
            o.name: [d.dim_value if d.HasField("dim_value") else d.dim_param for d in dims]
            for o in model.graph.output
            for dims in [o.type.tensor_type.shape.dim]
        }
        has_qdq = any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node)
    if OUTPUT_NAME not in outputs:
        raise ValueError(f"{path}: no output named {OUTPUT_NAME!r} (outputs: {list(outputs)})")
    k = _num_classes(outputs[OUTPUT_NAME], path)
    emotions, scale, bias = parse_metadata(meta, k, str(path))
    return OnnxInfo(emotions, scale, bias, meta.get(KEY_VERSION, ""), has_qdq)


def make_header(
    info: OnnxInfo,
    onnx_path: PathLike,
    *,
    trt_version: str,
    precision: str,
    max_batch: int,
    opt_batch: int,
    gpu: GpuInfo | None = None,
    **extra: str,
) -> EngineHeader:
    """The ferfast header of an engine built from ``onnx_path`` on ``gpu`` (default: GPU 0)."""
    if gpu is None:
        gpu = gpu_info(0)
    return EngineHeader(
        trt_version=trt_version,
        gpu_name=gpu.name,
        compute_capability=gpu.compute_capability,
        precision=precision,
        emotions=info.emotions,
        input_scale=info.input_scale,
        input_bias=info.input_bias,
        max_batch=max_batch,
        opt_batch=opt_batch,
        extra={
            "ferfast_version": __version__,
            "model_version": info.model_version,
            "source": Path(onnx_path).name,
            **extra,
        },
    )


def _check_args(precision: str, max_batch: int, opt_batch: int, workspace: int) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    for name, value in (("max_batch", max_batch), ("opt_batch", opt_batch)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if opt_batch > max_batch:
        raise ValueError(f"opt_batch ({opt_batch}) must not exceed max_batch ({max_batch})")
    if not isinstance(workspace, int) or workspace < (1 << 20):
        raise ValueError(f"workspace must be an int of at least 1 MiB (bytes), got {workspace!r}")


def build_engine(
    onnx_path: PathLike,
    out_path: PathLike,
    precision: str = "int8",
    max_batch: int = 64,
    opt_batch: int | None = None,
    timing_cache: PathLike | None = None,
    workspace: int = 1 << 30,
    verbose: bool = False,
) -> BuildResult:
    """Build a TensorRT engine for the current GPU (CUDA device 0; pick with CUDA_VISIBLE_DEVICES).

    Args:
        onnx_path: ferfast ONNX model (``int8`` needs the Q/DQ model).
        out_path: engine file to write (ferfast header + TensorRT plan).
        precision: ``"int8"``, ``"fp16"`` or ``"fp32"``.
        max_batch: largest batch the engine accepts (optimisation profile max).
        opt_batch: batch TensorRT tunes for (default ``min(8, max_batch)``).
        timing_cache: timing cache file, read if present and written back (speeds up rebuilds).
        workspace: builder workspace memory pool limit in bytes.
        verbose: TensorRT verbose logging.
    """
    opt = min(8, max_batch) if opt_batch is None else opt_batch
    _check_args(precision, max_batch, opt, workspace)
    info = read_onnx_info(onnx_path)
    if precision == "int8" and info.has_qdq is False:
        raise ValueError(
            f"{onnx_path} has no QuantizeLinear/DequantizeLinear nodes: int8 engines are built "
            "from the explicitly quantized model (ferfast_int8.onnx); use --precision fp16/fp32 "
            "for a float model"
        )
    version = require_tensorrt()
    import tensorrt as trt

    major = trt_major(version)
    gpu = gpu_info(0)
    started = time.perf_counter()

    logger = trt.Logger(trt.Logger.VERBOSE if verbose else trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if major < 10:  # explicit batch is implicit (and the flag deprecated) from 10.0 on
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    if precision == "int8" and major >= 10:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_path}: {errors}")
    if network.num_inputs != 1 or network.num_outputs != 1:
        raise ValueError(
            f"{onnx_path}: expected 1 input and 1 output, got "
            f"{network.num_inputs} and {network.num_outputs}"
        )
    inp = network.get_input(0)
    out = network.get_output(0)
    if len(inp.shape) != 4 or tuple(inp.shape[1:]) != INPUT_SHAPE:
        want = ", ".join(map(str, INPUT_SHAPE))
        raise ValueError(f"{onnx_path}: input shape {inp.shape} is not (N, {want})")
    check_io(info.emotions, int(out.shape[len(out.shape) - 1]))

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace)
    if precision == "int8" and major < 10:
        # TensorRT 8.x: Q/DQ (explicit quantization) needs the INT8 flag, but no calibrator.
        config.set_flag(trt.BuilderFlag.INT8)
    elif precision == "fp16":
        if not hasattr(trt.BuilderFlag, "FP16"):
            raise RuntimeError(
                f"TensorRT {version} has no FP16 builder flag (strong typing only): convert the "
                "model to FP16 first (ModelOpt AutoCast) and build it with --precision fp32"
            )
        config.set_flag(trt.BuilderFlag.FP16)
    elif precision == "fp32" and hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)

    profile = builder.create_optimization_profile()
    profile.set_shape(
        inp.name,
        trt.Dims([1, *INPUT_SHAPE]),
        trt.Dims([opt, *INPUT_SHAPE]),
        trt.Dims([max_batch, *INPUT_SHAPE]),
    )
    config.add_optimization_profile(profile)

    cache_path = Path(timing_cache) if timing_cache is not None else None
    if cache_path is not None:
        data = cache_path.read_bytes() if cache_path.is_file() else b""
        cache = config.create_timing_cache(data)
        if not config.set_timing_cache(cache, False):
            log.warning("timing cache %s does not fit here; starting afresh", cache_path)
            config.set_timing_cache(config.create_timing_cache(b""), False)

    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise RuntimeError(
            f"TensorRT failed to build a {precision} engine from {onnx_path} (see the log above)"
        )
    plan_bytes = bytes(memoryview(plan))
    if cache_path is not None:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        cache_path.write_bytes(bytes(memoryview(config.get_timing_cache().serialize())))

    header = make_header(
        info,
        onnx_path,
        trt_version=version,
        precision=precision,
        max_batch=max_batch,
        opt_batch=opt,
        gpu=gpu,
    )
    path = write_engine(out_path, header, plan_bytes)
    seconds = time.perf_counter() - started
    log.info("built %s (%s, %d bytes) in %.1f s", path, precision, len(plan_bytes), seconds)
    return BuildResult(path, header, len(plan_bytes), seconds, cache_path)
