"""The ``ferfast`` command line: one argparse subcommand per job (see ``make_parser``)."""

from __future__ import annotations

import argparse
import glob
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .argtypes import (
    add_engine_arguments,
    detector_fallback_note,
    engine_from_args,
    non_negative_int,
    plain_warnings,
    positive_int,
)
from .models import names_text

if TYPE_CHECKING:
    from .files import InputFile
    from .tensorrt.header import EngineHeader

EXIT_OK, EXIT_ERROR, EXIT_UNAVAILABLE, EXIT_USAGE = 0, 1, 2, 2
EXIT_INTERRUPTED = 130  # as a shell reports a command stopped by Ctrl-C


def _shape(h: EngineHeader) -> str:
    """Precision and batch range of an engine, for the summary lines."""
    return f"{h.precision}, batch 1..{h.max_batch} opt {h.opt_batch}"


def _target(h: EngineHeader) -> str:
    """The GPU and TensorRT version an engine was built for."""
    return f"'{h.gpu_name}' sm {h.compute_capability}, TensorRT {h.trt_version}"


_DESCRIPTION = "Facial-emotion recognition: photos and videos, models, TensorRT engines."
_EPILOG = """examples:
  ferfast predict photo.jpg
  ferfast predict photos/ -o faces.csv
  ferfast build-engine fast -o ferfast.engine    (on the GPU that will run it)
  ferfast bench-engine ferfast.engine

'ferfast COMMAND --help' shows a command's options; cameras, video files and
network streams: 'ferfast-stream --help'."""


def _check_paths(
    command: str,
    outputs: Sequence[tuple[str, Path | None, bool]],
    inputs: Sequence[Path],
    force: bool,
) -> int:
    """Check (option, path, updated in place) output paths before any work; EXIT_USAGE after
    printing the problem, else 0. A file updated in place (a cache) may exist already."""
    from .outpaths import OutputPathError, check_file

    try:
        for option, path, in_place in outputs:
            if path is not None:
                check_file(path, option, inputs=inputs, force=force or in_place)
    except OutputPathError as exc:
        print(f"ferfast {command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return 0


def resolve_onnx_model(value: str) -> Path:
    """The ONNX model of build-engine / wrap-engine: a bundled model name or a path.

    Raises ValueError for a value that is neither, FileNotFoundError for a missing file.
    """
    from .runtime import resolve_model

    return resolve_model(value, suffixes=(".onnx",))


def _add_build_engine(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    from .tensorrt import build_engine
    from .tensorrt._compat import require_tensorrt

    model = resolve_onnx_model(args.model)
    problem = _check_paths(
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


def _add_wrap_engine(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    from .tensorrt.wrap import wrap_plan

    model = resolve_onnx_model(args.model)
    problem = _check_paths(
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


def _add_bench_engine(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    from .measure import measure_latency
    from .tensorrt import TensorRTRunner

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


def _add_predict(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "predict",
        help="emotions of the faces in photos, folders of photos and video files",
        description=(
            "Detect the faces in image files, folders (searched recursively) and video files, and "
            "print one row per face: source, frame, face index, box, detector score, emotion, "
            "confidence and the probability of each emotion. Files that cannot be read are "
            "reported and skipped; the exit status is 1 only when nothing could be processed."
        ),
        epilog=(
            "examples:\n"
            "  ferfast predict photo.jpg\n"
            "  ferfast predict photos/ -o faces.csv\n"
            "  ferfast predict clip.mp4 --every 10 --format jsonl\n"
            "  ferfast predict photos/ --annotate annotated/"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="image, video or folder")
    p.add_argument(
        "-o", "--output", metavar="FILE", help="write the rows to FILE instead of stdout"
    )
    p.add_argument(
        "--format",
        choices=("table", "csv", "jsonl"),
        help="table (aligned columns), csv, or jsonl (one JSON object per face); default: from "
        "the --output suffix (.csv, .jsonl), else table",
    )
    p.add_argument(
        "--every", type=positive_int, default=1, metavar="N", help="in videos, every N-th frame"
    )
    p.add_argument(
        "--annotate",
        metavar="DIR",
        help="write annotated copies of the images and frames to DIR, named <name>.ferfast.<ext> "
        "(video frames <name>_<frame>.ferfast.jpg) so that they never replace an input",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="replace an existing --output file and earlier annotated copies (inputs are never "
        "replaced)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_ray_arguments(p.add_argument_group("ray (pip install 'ferfast[ray]'; docs/scale.md)"))
    add_engine_arguments(p.add_argument_group("engine"))
    p.set_defaults(func=_cmd_predict)


def _ray_address(text: str) -> str:
    """A --ray value: "local", "auto", HOST:PORT or ray://HOST:PORT (not a path taken as one)."""
    if text in ("local", "auto") or text.startswith("ray://") or text.rpartition(":")[2].isdigit():
        return text
    raise argparse.ArgumentTypeError(
        f"{text!r} is not a Ray address (auto, HOST:PORT, ray://HOST:PORT); give the paths "
        "before --ray, or write --ray=ADDRESS"
    )


def _add_ray_arguments(group: argparse._ActionsContainer) -> None:
    group.add_argument(
        "--ray",
        nargs="?",
        const="local",
        type=_ray_address,
        metavar="ADDRESS",
        help="run on Ray: a new local instance, or the cluster at ADDRESS (auto, HOST:PORT, "
        "ray://HOST:PORT); each actor reads its own files; -o FILE.parquet (one row per frame), "
        ".csv or .jsonl: the same records, sorted by source and frame",
    )
    group.add_argument(
        "--actors",
        type=positive_int,
        metavar="N",
        help="with --ray: Engine actors, each on --threads CPUs (default 1) (default: as many "
        "as the cluster's CPUs hold)",
    )


def _annotated_path(root: Path, item: InputFile, frame: int) -> Path:
    """Where --annotate writes a frame of ``item``: the input's path below its folder argument,
    named as an annotated copy (files.annotated_name; a video's frames as
    <name>_<frame>.ferfast.jpg), so that it cannot be an input's name."""
    from .files import ANNOTATED_MARK, annotated_name

    rel = item.relative
    if item.kind == "video":
        return root / rel.with_name(f"{rel.stem}_{frame:06d}{ANNOTATED_MARK}.jpg")
    return root / rel.with_name(annotated_name(rel.name))


def _check_annotate(folder: str, inputs: Sequence[InputFile], force: bool) -> Path:
    """The --annotate folder, after checking that no copy would replace an input or (unless
    ``force``) an existing file, and that no two inputs map to one copy."""
    from .files import ANNOTATED_MARK
    from .outpaths import OutputPathError, check_dir, same_file

    root = check_dir(folder, "--annotate")
    planned: dict[Path, Path] = {}
    existing: list[Path] = []
    for item in inputs:
        targets = []
        if item.kind in ("image", "unknown"):
            targets.append(_annotated_path(root, item, 0))
        if item.kind in ("video", "unknown"):
            rel = item.relative
            frames = (root / rel).parent.glob(f"{glob.escape(rel.stem)}_*{ANNOTATED_MARK}.jpg")
            existing.extend(frames)
        for out in targets:
            if out in planned:
                raise OutputPathError(
                    f"--annotate: {planned[out]} and {item.path} would both be written to {out}; "
                    "annotate them in separate runs or folders"
                )
            planned[out] = item.path
            if any(same_file(out, i.path) for i in inputs):
                raise OutputPathError(f"--annotate: {out} is an input of this run")
            if out.exists() or out.is_symlink():
                existing.append(out)
    if existing and not force:
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise OutputPathError(
            f"--annotate: {existing[0]}{more} exist(s) from an earlier run; use --force to "
            "replace annotated copies"
        )
    return root


def _summary(counts: dict[str, int], notes: Sequence[str]) -> str:
    line = (
        f"ferfast predict: {counts['frames']} images/frames, {counts['faces']} faces, "
        f"{counts['errors']} unreadable"
    )
    if counts["undecodable"]:
        line += f", {counts['undecodable']} undecodable video frames skipped"
    return "; ".join([line, *notes])


def _cmd_predict(args: argparse.Namespace) -> int:
    import cv2

    from .files import collect_inputs, predict_files
    from .outpaths import OutputError, OutputPathError, check_file
    from .records import FrameRecord
    from .sinks import open_sink
    from .stream.annotate import draw_faces

    fmt = args.format
    if fmt is None:
        suffix = Path(args.output).suffix.lower() if args.output else ""
        fmt = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(suffix, "table")
    inputs, missing = collect_inputs(args.paths)
    # Every output is checked before anything is read or loaded: a bad path costs nothing.
    try:
        if args.output:
            check_file(args.output, "-o", inputs=[i.path for i in inputs], force=args.force)
        annotate = _check_annotate(args.annotate, inputs, args.force) if args.annotate else None
    except OutputPathError as exc:
        print(f"ferfast predict: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for pred in missing:
        print(f"ferfast predict: skipped {pred.source}: {pred.error}", file=sys.stderr)
    if args.ray is not None:
        return _predict_ray(args, inputs, fmt, len(missing))
    counts = {"frames": 0, "faces": 0, "errors": len(missing), "undecodable": 0}
    notes: list[str] = []
    small: list[str] = []
    failure: str | None = None
    interrupted = False
    if inputs:
        engine = engine_from_args(args)  # only when there is something to read: loading costs
        emotions = tuple(engine.emotions)
        fallback = detector_fallback_note(engine, args.detector)
        if fallback:
            notes.append(fallback)
        try:
            sink = open_sink(fmt, args.output or "-", emotions, force=args.force)
        except OutputPathError as exc:
            print(f"ferfast predict: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        try:
            preds = predict_files(
                inputs,
                engine,
                every=args.every,
                progress=not args.no_progress and sys.stderr.isatty(),
                keep_images=annotate is not None,
            )
            for pred in preds:
                if pred.error is not None:
                    counts["errors"] += 1
                    print(f"ferfast predict: skipped {pred.source}: {pred.error}", file=sys.stderr)
                    continue
                sink.write(FrameRecord(pred.source, pred.frame, time.time(), pred.faces, emotions))
                if annotate is not None and pred.image is not None and pred.input is not None:
                    out = _annotated_path(annotate, pred.input, pred.frame)
                    draw_faces(pred.image, pred.faces, engine.emotions)
                    _write_image(out, pred.image, cv2)
                # Counted once written: the summary says what the outputs hold.
                counts["frames"] += 1
                counts["faces"] += len(pred.faces)
                counts["undecodable"] += pred.undecodable
                if not pred.faces and pred.size is not None and min(pred.size) < MIN_IMAGE_SIDE:
                    small.append(f"{pred.source} ({pred.size[0]}x{pred.size[1]})")
        except KeyboardInterrupt:
            interrupted = True
        except OutputError as exc:
            failure = str(exc)
        finally:
            try:
                sink.close()
            except OutputError as exc:
                failure = failure or str(exc)
    if small:
        more = f" and {len(small) - 1} more" if len(small) > 1 else ""
        notes.append(
            f"{small[0]}{more}: too small for the face detector (images under {MIN_IMAGE_SIDE} "
            "px a side hold no face it can find)"
        )
    print(_summary(counts, notes), file=sys.stderr)
    if interrupted:
        print("ferfast predict: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    if failure is not None:
        print(f"ferfast predict: error: {failure}", file=sys.stderr)
        return EXIT_ERROR
    if counts["frames"] == 0:
        print("ferfast predict: error: nothing could be processed", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def _predict_ray(args: argparse.Namespace, inputs: list[InputFile], fmt: str, missing: int) -> int:
    """``ferfast predict --ray``: the same records from Ray actors (ferfast.ray), after the
    output checks of _cmd_predict."""
    from .outpaths import OutputError

    if args.annotate:
        print("ferfast predict: error: --annotate does not work with --ray", file=sys.stderr)
        return EXIT_USAGE
    if args.format is None and Path(args.output or "").suffix.lower() == ".parquet":
        fmt = "parquet"
    try:
        from . import ray as fray
    except ImportError:
        print(
            'ferfast predict: error: --ray needs Ray (not installed): pip install "ferfast[ray]"',
            file=sys.stderr,
        )
        return EXIT_UNAVAILABLE
    counts = {"frames": 0, "faces": 0, "errors": missing, "undecodable": 0}
    notes: list[str] = []
    if inputs:
        try:
            with fray.connect(args.ray, quiet=True):
                run = fray.predict_ray(
                    inputs,
                    args.output or "-",
                    fray.EngineOptions.from_args(args),
                    fmt=fmt,
                    every=args.every,
                    actors=args.actors,
                    force=args.force,
                    progress=not args.no_progress and sys.stderr.isatty(),
                )
        except OutputError as exc:
            print(f"ferfast predict: error: {exc}", file=sys.stderr)
            return EXIT_ERROR
        for source, why in run.errors:
            print(f"ferfast predict: skipped {source}: {why}", file=sys.stderr)
        counts.update(frames=run.frames, faces=run.faces, undecodable=run.undecodable)
        counts["errors"] += len(run.errors)
        haar = run.detectors.get("haar", 0)
        if haar and args.detector == "auto":
            notes.append(
                f"detector: the Haar fallback on {haar} frames, YuNet could not be had on a node "
                "(docs/scale.md)"
            )
        notes.append(f"Ray: {run.actors} actors, {run.tasks} tasks, {run.seconds:.1f} s")
    print(_summary(counts, notes), file=sys.stderr)
    if counts["frames"] == 0:
        print("ferfast predict: error: nothing could be processed", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


# Smaller images hold no face the detectors can find (YuNet's smallest anchor is 10 px at the
# detector's input size; FER2013's 48 px faces are found, a few pixels are not a face).
MIN_IMAGE_SIDE = 24


def _write_image(path: Path, image: Any, cv2: Any) -> None:
    """Write an annotated copy; OutputError naming the file when it cannot be written."""
    from .outpaths import OutputError

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        ok = cv2.imwrite(str(path), image)
    except (OSError, cv2.error) as exc:
        raise OutputError(f"cannot write the annotated image {path}: {exc}") from exc
    if not ok:
        raise OutputError(f"cannot write the annotated image {path} (disk full or no permission?)")


def _add_download(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "download",
        help="fetch the third-party model files (YuNet) into the cache ahead of time",
        description=(
            "Download and verify (size, SHA-256) every pinned third-party model file, so that "
            "later runs need no network (kiosks, containers). Files already present and valid "
            "are kept. $FERFAST_MODEL_URL names a mirror serving the files under their names."
        ),
    )
    p.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="folder to download into (default: $FERFAST_HOME, else ~/.cache/ferfast)",
    )
    p.add_argument("--force", action="store_true", help="download again even if already valid")
    p.add_argument(
        "--from",
        dest="source",
        metavar="FILE_OR_URL",
        help="take YuNet from a local file or a URL (http, https, file) instead of upstream; it "
        "is verified (size, SHA-256) before it is cached",
    )
    p.set_defaults(func=_cmd_download)


def _cmd_download(args: argparse.Namespace) -> int:
    from . import assets
    from .outpaths import OutputPathError, check_dir

    folder = (args.dir or assets.cache_dir()).expanduser()
    try:
        check_dir(folder, "--dir")
    except OutputPathError as exc:
        print(f"ferfast download: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.source is not None:
        path = assets.install_from(assets.YUNET, args.source, folder)
        print(f"yunet: {path} ({assets.YUNET.size} bytes, SHA-256 verified, from {args.source})")
    for key, asset in assets.ASSETS.items():
        if args.source is not None and asset is assets.YUNET:
            continue
        present = None if args.force else assets.cached(asset, folder)
        # Not present (or --force): download without checking the cache again. AssetError (a
        # RuntimeError) names the cause and the fix; main() prints it, exit 1.
        path = present or assets.fetch(asset, folder, force=True)
        state = "already present" if present else "downloaded"
        print(f"{key}: {path} ({asset.size} bytes, SHA-256 verified, {state}; {asset.licence})")
    if args.dir is not None and folder.resolve() != assets.cache_dir().resolve():
        print(f"set {assets.HOME_ENV}={folder} so that ferfast uses these files")
    return EXIT_OK


def _add_info(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "info",
        help="versions, execution providers, CPU features, detector cache and bundled models",
        description="Print what this installation has: versions of ferfast and its runtime "
        "libraries, ONNX Runtime execution providers, the CPU features ONNX Runtime can use, "
        "the native extension's GPU parts, the face-detector cache, and the bundled models "
        "with their PublicTest figures.",
    )
    p.set_defaults(func=_cmd_info)


# x86 SIMD flags (/proc/cpuinfo names) that decide which ONNX Runtime int8 kernels run.
_CPU_FLAGS = ("sse4_1", "avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "amx_bf16")


def _cpu_line() -> str:
    """CPU model, cores and the SIMD features that matter for inference (Linux /proc/cpuinfo)."""
    import os

    from .sysinfo import cpu_info

    cpu = cpu_info()
    flags = cpu.flags
    found = [f for f in _CPU_FLAGS if f in flags] or (["asimd"] if "asimd" in flags else [])
    return f"{cpu.model}, {os.cpu_count()} CPUs; features: {' '.join(found) or 'unknown'}"


def _cmd_info(args: argparse.Namespace) -> int:
    import os
    import platform

    import cv2
    import numpy as np
    import onnxruntime

    from . import __version__, _core, assets
    from .detectors import YUNET_ENV
    from .models import list_models
    from .stream.kiosk import gui_backend

    cuda = "not compiled in"
    if _core.WITH_CUDA:
        cuda = f"compiled in, {_core.cuda_device_count()} GPU(s) visible"
    lines = [
        f"ferfast {__version__} ({Path(__file__).resolve().parent})",
        f"python {platform.python_version()} ({platform.platform()})",
        f"cpu: {_cpu_line()}",
        f"numpy {np.__version__}",
        f"opencv {cv2.__version__} (GUI: {gui_backend(cv2.getBuildInformation())})",
        f"onnxruntime {onnxruntime.__version__}: providers "
        + ", ".join(onnxruntime.get_available_providers()),
        f"native extension: CUDA preprocess {cuda}, TensorRT runtime "
        + ("compiled in" if _core.WITH_TENSORRT else "not compiled in"),
    ]
    home = assets.cache_dir()
    yunet_env = os.environ.get(YUNET_ENV)  # read as detectors.make_detector reads it
    for key, asset in assets.ASSETS.items():
        found = assets.cached(asset)
        if asset is assets.YUNET and yunet_env:
            state = f"{YUNET_ENV}={yunet_env} (used instead of the cache)"
        elif found:
            state = f"cached at {found}"
        else:
            state = f"not cached (ferfast download puts it in {home})"
        lines.append(f"{key}: {asset.name}, {state}")
    lines.append("bundled models, default first (FER2013 PublicTest, 3,589 faces):")
    models = list_models()
    width = max(len(m.name) for m in models)
    aliases = {m.name: "alias " + ", ".join(m.aliases) if m.aliases else "" for m in models}
    alias_width = max(len(a) for a in aliases.values())
    file_width = max(len(m.file) for m in models)
    for m in models:
        present = "" if m.path.is_file() else "  [file missing]"
        lines.append(
            f"  {m.name:<{width}} {aliases[m.name]:<{alias_width}} {m.file:<{file_width}} "
            f"{m.precision:<4} {m.params / 1e6:5.2f}M params "
            f"{m.mflops:5.1f} MFLOPs  accuracy {m.accuracy:.4f}  macro-F1 {m.macro_f1:.4f}  "
            f"disgust recall {m.disgust_recall:.3f}{present}"
        )
    print("\n".join(lines))
    return EXIT_OK


def make_parser() -> argparse.ArgumentParser:
    """The argument parser with all subcommands."""
    parser = argparse.ArgumentParser(
        prog="ferfast",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"ferfast {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_build_engine(sub)
    _add_wrap_engine(sub)
    _add_bench_engine(sub)
    _add_download(sub)
    _add_predict(sub)
    _add_info(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ferfast`` console script; returns the exit code."""
    parser = make_parser()
    args = parser.parse_args(argv)

    def warn(message: str) -> None:
        print(f"ferfast {args.command}: warning: {message}", file=sys.stderr)

    try:
        with plain_warnings(warn):
            code: int = args.func(args)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"ferfast {args.command}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"ferfast {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return code


if __name__ == "__main__":
    sys.exit(main())
