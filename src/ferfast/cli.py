"""The ``ferfast`` command line: argparse subcommands build-engine, wrap-engine, bench-engine."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .argtypes import non_negative_int, positive_int

if TYPE_CHECKING:
    from .tensorrt.header import EngineHeader

EXIT_OK, EXIT_ERROR, EXIT_UNAVAILABLE = 0, 1, 2


def _shape(h: EngineHeader) -> str:
    """Precision and batch range of an engine, for the summary lines."""
    return f"{h.precision}, batch 1..{h.max_batch} opt {h.opt_batch}"


def _target(h: EngineHeader) -> str:
    """The GPU and TensorRT version an engine was built for."""
    return f"'{h.gpu_name}' sm {h.compute_capability}, TensorRT {h.trt_version}"


def _add_build_engine(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "build-engine",
        help="build a TensorRT engine from a ferfast ONNX model (on the target GPU)",
        description=(
            "Build a TensorRT engine for this GPU. Engines only run with the TensorRT version and "
            "GPU model that built them, so build on the device that will run it."
        ),
    )
    p.add_argument("model", type=Path, help="ferfast ONNX model (int8 needs the Q/DQ model)")
    p.add_argument("-o", "--output", type=Path, required=True, help="engine file to write")
    p.add_argument("--precision", choices=("int8", "fp16", "fp32"), default="int8")
    p.add_argument("--max-batch", type=positive_int, default=64, help="largest batch (default 64)")
    p.add_argument("--opt-batch", type=positive_int, help="batch to tune for (default 8)")
    p.add_argument("--timing-cache", type=Path, default=None, help="timing cache file (read+write)")
    p.add_argument(
        "--workspace-mb", type=positive_int, default=1024, help="builder workspace in MiB"
    )
    p.add_argument("-v", "--verbose", action="store_true", help="TensorRT verbose log")
    p.set_defaults(func=_cmd_build_engine)


def _cmd_build_engine(args: argparse.Namespace) -> int:
    from .tensorrt import build_engine
    from .tensorrt._compat import require_tensorrt

    try:
        require_tensorrt()
    except ImportError as exc:
        print(f"ferfast build-engine: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    result = build_engine(
        args.model,
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


def _add_wrap_engine(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "wrap-engine",
        help="add the ferfast header to a plan built by trtexec (no TensorRT Python needed)",
        description=(
            "Wrap a serialized TensorRT plan (e.g. `trtexec --saveEngine=m.plan`) built on this "
            "device into a ferfast engine file. Give the precision and batch range it was built "
            "with; metadata (emotions, input scale/bias) comes from the ONNX model."
        ),
    )
    p.add_argument("plan", type=Path, help="raw TensorRT plan (trtexec --saveEngine)")
    p.add_argument("--model", type=Path, required=True, help="the ONNX model the plan came from")
    p.add_argument("-o", "--output", type=Path, required=True, help="engine file to write")
    p.add_argument("--precision", choices=("int8", "fp16", "fp32"), required=True)
    p.add_argument(
        "--max-batch", type=positive_int, required=True, help="trtexec --maxShapes batch"
    )
    p.add_argument("--opt-batch", type=positive_int, help="trtexec --optShapes batch")
    p.add_argument("--trt-version", default=None, help="default: read from libnvinfer")
    p.set_defaults(func=_cmd_wrap_engine)


def _cmd_wrap_engine(args: argparse.Namespace) -> int:
    from .tensorrt.wrap import wrap_plan

    h = wrap_plan(
        args.plan,
        args.model,
        args.output,
        precision=args.precision,
        max_batch=args.max_batch,
        opt_batch=args.opt_batch,
        trt_version=args.trt_version,
    )
    print(f"wrote {args.output} ({_shape(h)}) for {_target(h)}")
    return EXIT_OK


def _add_bench_engine(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "bench-engine",
        help="time a ferfast TensorRT engine (per batch and per face)",
        description="Time TensorRTRunner.run on random input (pinned buffer, after warm-up).",
    )
    p.add_argument("engine", type=Path, help="ferfast engine file")
    p.add_argument(
        "--batch", type=positive_int, action="append", help="batch size(s), default 1 and 64"
    )
    p.add_argument("--iters", type=positive_int, default=200, help="timed runs per batch size")
    p.add_argument("--warmup", type=non_negative_int, default=20, help="untimed runs first")
    p.add_argument("--backend", choices=("auto", "cpp", "python"), default="auto")
    p.set_defaults(func=_cmd_bench_engine)


def _cmd_bench_engine(args: argparse.Namespace) -> int:
    import time

    import numpy as np

    from .tensorrt import TensorRTRunner

    try:
        runner = TensorRTRunner(args.engine, backend=args.backend)
    except ImportError as exc:
        print(f"ferfast bench-engine: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    batches = args.batch or [1, min(64, runner.max_batch)]
    buf = runner.new_input_buffer(max(batches))
    buf[:] = np.random.default_rng(0).random(buf.shape, dtype=np.float32)
    print(
        f"{args.engine}: {_shape(runner.header)} for {_target(runner.header)}, "
        f"backend {runner.backend}"
    )
    for b in batches:
        for _ in range(args.warmup):
            runner.run(buf[:b])
        times = []
        for _ in range(args.iters):
            t0 = time.perf_counter()
            runner.run(buf[:b])
            times.append(time.perf_counter() - t0)
        med = float(np.median(times)) * 1e3
        print(
            f"batch {b:4d}: median {med:.3f} ms per batch, {med / b:.4f} ms per face "
            f"(p90 {float(np.percentile(times, 90)) * 1e3:.3f} ms, {args.iters} runs)"
        )
    return EXIT_OK


def make_parser() -> argparse.ArgumentParser:
    """The argument parser with all subcommands."""
    parser = argparse.ArgumentParser(prog="ferfast", description=__doc__)
    from . import __version__

    parser.add_argument("--version", action="version", version=f"ferfast {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_build_engine(sub)
    _add_wrap_engine(sub)
    _add_bench_engine(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ferfast`` console script; returns the exit code."""
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"ferfast {args.command}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return code


if __name__ == "__main__":
    sys.exit(main())
