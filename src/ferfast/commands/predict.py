"""``ferfast predict``: emotions of the faces in photos, folders and videos, as rows."""

from __future__ import annotations

import argparse
import glob
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ferfast.argtypes import (
    add_engine_arguments,
    detector_fallback_note,
    engine_from_args,
    positive_int,
)
from ferfast.commands.common import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
)

if TYPE_CHECKING:
    from ferfast.files import InputFile


def add_predict(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    from ferfast.files import ANNOTATED_MARK, annotated_name

    rel = item.relative
    if item.kind == "video":
        return root / rel.with_name(f"{rel.stem}_{frame:06d}{ANNOTATED_MARK}.jpg")
    return root / rel.with_name(annotated_name(rel.name))


def _check_annotate(folder: str, inputs: Sequence[InputFile], force: bool) -> Path:
    """The --annotate folder, after checking that no copy would replace an input or (unless
    ``force``) an existing file, and that no two inputs map to one copy."""
    from ferfast.files import ANNOTATED_MARK
    from ferfast.outpaths import OutputPathError, check_dir, same_file

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
    from ferfast.files import collect_inputs, predict_files
    from ferfast.outpaths import OutputError, OutputPathError, check_file
    from ferfast.records import FrameRecord
    from ferfast.sinks import open_sink
    from ferfast.stream.annotate import draw_faces

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
                    _write_image(out, pred.image)
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
    from ferfast.outpaths import OutputError

    if args.annotate:
        print("ferfast predict: error: --annotate does not work with --ray", file=sys.stderr)
        return EXIT_USAGE
    if args.format is None and Path(args.output or "").suffix.lower() == ".parquet":
        fmt = "parquet"
    try:
        from ferfast import ray as fray
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


def _write_image(path: Path, image: Any) -> None:
    """Write an annotated copy; OutputError naming the file when it cannot be written."""
    import cv2

    from ferfast.outpaths import OutputError

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        ok = cv2.imwrite(str(path), image)
    except (OSError, cv2.error) as exc:
        raise OutputError(f"cannot write the annotated image {path}: {exc}") from exc
    if not ok:
        raise OutputError(f"cannot write the annotated image {path} (disk full or no permission?)")
