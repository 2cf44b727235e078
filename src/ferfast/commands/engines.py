"""``ferfast build-engine``, ``wrap-engine`` and ``bench-engine``: TensorRT engine files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ferfast.argtypes import non_negative_int, positive_int
from ferfast.commands.common import EXIT_OK, EXIT_UNAVAILABLE, check_paths
from ferfast.models import names_text

if TYPE_CHECKING:
    from ferfast.tensorrt.header import EngineHeader


def _shape(h: EngineHeader) -> str:
    """Precision and batch range of an engine, for the summary lines."""
    return f"{h.precision}, batch 1..{h.max_batch} opt {h.opt_batch}"


def _target(h: EngineHeader) -> str:
    """The GPU and TensorRT version an engine was built for."""
    return f"'{h.gpu_name}' sm {h.compute_capability}, TensorRT {h.trt_version}"


def resolve_onnx_model(value: str) -> Path:
    """The ONNX model of build-engine / wrap-engine: a bundled model name or a path.

    Raises ValueError for a value that is neither, FileNotFoundError for a missing file.
    """
    from ferfast.runtime import resolve_model

    return resolve_model(value, suffixes=(".onnx",))


def add_build_engine(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "build-engine",
        help="build a TensorRT engine from a ferfast ONNX model (on the target GPU)",
        description=(
            "Build a TensorRT engine for this GPU. Engines only run with the TensorRT version and "
            "GPU model that built them, so build on the device that will run it."
        ),
    )
    p.add_argument(
        "model",
        metavar="MODEL",
        help=f"a bundled model ({names_text()}) or the path of a ferfast ONNX model; "
        "--precision int8 needs an INT8 (Q/DQ) model",
    )
    p.add_argument(
        "-o", "--output", type=Path, required=True, metavar="ENGINE", help="engine file to write"
    )
    p.add_argument(
        "--precision",
        choices=("int8", "fp16", "fp32"),
        default="int8",
        help="engine precision (default int8)",
    )
    p.add_argument(
        "--max-batch",
        type=positive_int,
        default=64,
        metavar="N",
        help="largest batch (default 64)",
    )
    p.add_argument(
        "--opt-batch", type=positive_int, metavar="N", help="batch to tune for (default 8)"
    )
    p.add_argument(
        "--timing-cache",
        type=Path,
        default=None,
        metavar="FILE",
        help="timing cache file, read and updated (speeds up rebuilds)",
    )
    p.add_argument(
        "--workspace-mb",
        type=positive_int,
        default=1024,
        metavar="MIB",
        help="builder workspace in MiB (default 1024)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="TensorRT verbose log")
    p.add_argument("--force", action="store_true", help="replace an existing ENGINE file")
    p.set_defaults(func=_cmd_build_engine)


def _cmd_build_engine(args: argparse.Namespace) -> int:
    from ferfast.tensorrt import build_engine
    from ferfast.tensorrt._compat import require_tensorrt

    model = resolve_onnx_model(args.model)
    problem = check_paths(
        "build-engine",
        [("-o", args.output, False), ("--timing-cache", args.timing_cache, True)],
        [model],
        args.force,
    )
    if problem:
        return problem
    try:
        require_tensorrt()
    except ImportError as exc:
        print(f"ferfast build-engine: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    result = build_engine(
        model,
        args.output,
        precision=args.precision,
        max_batch=args.max_batch,
        opt_batch=args.opt_batch,
        timing_cache=args.timing_cache,
        workspace=args.workspace_mb << 20,
        verbose=args.verbose,
    )
    print(
        f"wrote {result.path} ({_shape(result.header)}, {result.plan_bytes / 1e6:.2f} MB) "
        f"for {_target(result.header)}, in {result.seconds:.1f} s"
    )
    return EXIT_OK


def add_wrap_engine(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "wrap-engine",
        help="add the ferfast header to a plan built by trtexec (no TensorRT Python needed)",
        description=(
            "Wrap a serialized TensorRT plan (from trtexec --saveEngine=m.plan) built on this "
            "device into a ferfast engine file. Give the precision and batch range it was built "
            "with; metadata (emotions, input scale/bias) comes from the ONNX model."
        ),
    )
    p.add_argument("plan", type=Path, help="raw TensorRT plan (trtexec --saveEngine)")
    p.add_argument(
        "--model",
        required=True,
        help=f"the ONNX model the plan came from: a bundled model ({names_text()}) or its path",
    )
    p.add_argument(
        "-o", "--output", type=Path, required=True, metavar="ENGINE", help="engine file to write"
    )
    p.add_argument(
        "--precision",
        choices=("int8", "fp16", "fp32"),
        required=True,
        help="the precision the plan was built with",
    )
    p.add_argument(
        "--max-batch",
        type=positive_int,
        required=True,
        metavar="N",
        help="the batch of trtexec --maxShapes",
    )
    p.add_argument(
        "--opt-batch", type=positive_int, metavar="N", help="the batch of trtexec --optShapes"
    )
    p.add_argument(
        "--trt-version",
        default=None,
        metavar="X.Y.Z",
        help="TensorRT version that built the plan (default: read from libnvinfer)",
    )
    p.add_argument("--force", action="store_true", help="replace an existing ENGINE file")
    p.set_defaults(func=_cmd_wrap_engine)


def _cmd_wrap_engine(args: argparse.Namespace) -> int:
    from ferfast.tensorrt.wrap import wrap_plan

    model = resolve_onnx_model(args.model)
    problem = check_paths(
        "wrap-engine", [("-o", args.output, False)], [model, args.plan], args.force
    )
    if problem:
        return problem
    h = wrap_plan(
        args.plan,
        model,
        args.output,
        precision=args.precision,
        max_batch=args.max_batch,
        opt_batch=args.opt_batch,
        trt_version=args.trt_version,
    )
    print(f"wrote {args.output} ({_shape(h)}) for {_target(h)}")
    return EXIT_OK


def add_bench_engine(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "bench-engine",
        help="time a ferfast TensorRT engine (per batch and per face)",
        description="Time TensorRTRunner.run on random input (pinned buffer, after warm-up).",
    )
    p.add_argument("engine", type=Path, help="ferfast engine file")
    p.add_argument(
        "--batch",
        type=positive_int,
        action="append",
        metavar="N",
        help="batch size, repeatable (default: 1 and min(64, the engine's max batch))",
    )
    p.add_argument(
        "--iters",
        type=positive_int,
        default=200,
        metavar="N",
        help="timed runs per batch size (default 200)",
    )
    p.add_argument(
        "--warmup",
        type=non_negative_int,
        default=20,
        metavar="N",
        help="untimed runs before timing each batch size (default 20)",
    )
    p.add_argument(
        "--backend",
        choices=("auto", "cpp", "python"),
        default="auto",
        help="TensorRT runtime: auto (C++ if compiled in, else Python), cpp (ferfast._core) or "
        "python (tensorrt + pycuda); default auto",
    )
    p.set_defaults(func=_cmd_bench_engine)


def _cmd_bench_engine(args: argparse.Namespace) -> int:
    from ferfast.measure import measure_latency
    from ferfast.tensorrt import TensorRTRunner

    try:
        runner = TensorRTRunner(args.engine, backend=args.backend)
    except ImportError as exc:
        print(f"ferfast bench-engine: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    batches = args.batch or [1, min(64, runner.max_batch)]
    print(
        f"{args.engine}: {_shape(runner.header)} for {_target(runner.header)}, "
        f"backend {runner.backend}"
    )
    for b in batches:
        lat = measure_latency(runner, b, repeats=args.iters, warmup=args.warmup)
        print(
            f"batch {b:4d}: median {lat.median_ms:.3f} ms per batch, "
            f"{lat.median_ms_per_face:.4f} ms per face "
            f"(p90 {lat.p90_ms:.3f} ms, {lat.repeats} runs)"
        )
    return EXIT_OK
