"""Face records of image and video archives on a Ray cluster (``pip install "ferfast[ray]"``).

The same job as ``ferfast predict``, spread over Ray Data actors: the driver lists the inputs
(:func:`ferfast.files.collect_inputs`) and plans tasks of about ``task_frames`` frames (whole
files; a video longer than one actor's fair share is cut into frame ranges). Each actor owns one
:class:`~ferfast.engine.Engine` and reads its own files through
:func:`~ferfast.files.predict_files`, so no decoded frame leaves the node that decoded it. An
actor returns one row per frame: the :class:`~ferfast.records.FrameRecord` as its ``as_dict()``
(source, frame, time, faces), plus the read error, skipped undecodable frames and detector kind.
Tasks are planned in source order and Ray Data keeps their order, so the rows come sorted by
(source, frame), and the driver writes them as they come: Parquet holds the frame record
as it is (one row per frame, faces a list of structs, docs/scale.md); CSV, JSON Lines and the
table go through the sinks of ``ferfast predict``, row for row the same.

``import ferfast`` does not import this module or Ray.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

try:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    import ray
    import ray.data
    import ray.exceptions
except ImportError as exc:  # the extra is not installed
    raise ImportError(f'Ray is not installed ({exc}); pip install "ferfast[ray]"') from None

import numpy as np

from ferfast._types import PathLike
from ferfast.engine import Engine
from ferfast.faces import FaceResult
from ferfast.files import InputFile, collect_inputs, frame_count, predict_files
from ferfast.models import DEFAULT_MODEL
from ferfast.outpaths import OutputError, check_file, open_text
from ferfast.records import FrameRecord
from ferfast.sinks import open_sink

if TYPE_CHECKING:
    import argparse

__all__ = [
    "FORMATS",
    "TASK_FRAMES",
    "EngineOptions",
    "FrameRecords",
    "RayJobError",
    "RayRun",
    "Task",
    "connect",
    "plan_tasks",
    "predict_ray",
    "record_schema",
    "records_dataset",
    "tasks_dataset",
    "write_records",
]

#: Output formats: Parquet (the nested frame record) and the text sinks of ``ferfast predict``.
FORMATS = ("parquet", "csv", "jsonl", "table")

#: Frames per task at most: one model batch of ``predict_files``, small enough that the last
#: tasks of a job spread evenly over the actors.
TASK_FRAMES = 16

# The columns an actor adds to the frame record, for the driver's summary; not written.
_EXTRA = ("error", "undecodable", "detector")


class RayJobError(RuntimeError):
    """A Ray job failed (an actor could not start, a worker died); the message says why."""


@dataclass(frozen=True)
class EngineOptions:
    """The :class:`~ferfast.engine.Engine` arguments each actor builds its engine from.

    Paths (``model``, ``detector_model``) must be readable on every node. Without
    ``detector_model``, YuNet comes from the node's ``$FERFAST_YUNET`` or its cache, as for
    ``Engine()`` (docs/scale.md). ``threads`` (ONNX Runtime intra-op threads) is also the CPUs
    each actor reserves; one by default, so that one actor runs per CPU.
    """

    model: str = DEFAULT_MODEL
    backend: str = "auto"
    detector: str | None = "auto"
    detector_model: str | None = None
    detector_size: int = 320
    score_threshold: float = 0.6
    threads: int = 1

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> EngineOptions:
        """The options of ``argtypes.add_engine_arguments`` (``--threads`` default: 1)."""
        return cls(
            model=str(args.model),
            backend=args.backend,
            detector=args.detector,
            detector_model=args.detector_model,
            detector_size=args.detector_size,
            score_threshold=args.score_threshold,
            threads=args.threads or 1,
        )

    def engine(self) -> Engine:
        """A new Engine with these options."""
        return Engine(**asdict(self))


@dataclass(frozen=True)
class Task:
    """One actor call: inputs read in order, each a whole file or a video's frame range."""

    paths: list[str]  # absolute, as the workers open them
    sources: list[str]  # the paths as given, as the records name them
    kinds: list[str]  # InputFile.kind
    starts: list[int]  # first frame position (0 for a whole file)
    stops: list[int]  # frame position to stop before; -1: to the end

    @property
    def row(self) -> dict[str, list[Any]]:
        """The dataset row of this task."""
        return asdict(self)


def _estimate(item: InputFile, every: int) -> int:
    """Frames ``predict_files`` processes in ``item`` (an unknown kind counts as one)."""
    return frame_count(item, every) if item.kind == "video" else 1


def plan_tasks(
    inputs: Sequence[InputFile], *, every: int = 1, actors: int = 1, task_frames: int = TASK_FRAMES
) -> list[Task]:
    """The tasks of a job: files in the order of their source (``str(path)``, the order of the
    records), grouped into tasks of about ``task_frames`` processed frames (fewer when that
    leaves an actor without a task).

    A video longer than one actor's fair share of all frames is cut into at most ``actors``
    frame ranges (multiples of ``every`` frames; the last one reads to the end, since frame
    counts are estimates). Each range reads, without decoding, the frames before its start, so
    frame positions are those of a whole read; that grabbing is the price of a cut.
    """
    if every < 1 or actors < 1 or task_frames < 1:
        raise ValueError("every, actors and task_frames must be >= 1")
    ordered = sorted(inputs, key=lambda item: str(item.path))
    sized = [(item, _estimate(item, every)) for item in ordered]
    fair = max(1, math.ceil(sum(n for _, n in sized) / actors))
    task_frames = min(task_frames, fair)
    shares: list[tuple[InputFile, int]] = []
    for item, n in sized:
        cuts = min(actors, math.ceil(n / fair), math.ceil(n / task_frames))
        if item.kind != "video" or cuts <= 1:
            shares.append((item, n))
            continue
        step = math.ceil(n / cuts)  # processed frames per range
        for k in range(cuts):
            stop = None if k == cuts - 1 else (k + 1) * step * every
            shares.append(
                (InputFile(item.path, item.kind, item.root, k * step * every, stop), step)
            )
    tasks: list[Task] = []
    current: list[InputFile] = []
    weight = 0
    for item, n in shares:
        current.append(item)
        weight += n
        if weight >= task_frames:
            tasks.append(_task(current))
            current, weight = [], 0
    if current:
        tasks.append(_task(current))
    return tasks


def _task(items: Sequence[InputFile]) -> Task:
    return Task(
        paths=[os.path.abspath(i.path) for i in items],
        sources=[str(i.path) for i in items],
        kinds=[i.kind for i in items],
        starts=[i.start for i in items],
        stops=[-1 if i.stop is None else i.stop for i in items],
    )


def record_schema(emotions: Sequence[str]) -> pa.Schema:
    """The Arrow schema of the frame record (docs/record.schema.json) for ``emotions``: source,
    frame, time, and faces as a list of {box, score, emotion, confidence, probs{emotion: p}}."""
    face = pa.struct(
        [
            ("box", pa.list_(pa.float64())),
            ("score", pa.float64()),
            ("emotion", pa.string()),
            ("confidence", pa.float64()),
            ("probs", pa.struct([(name, pa.float64()) for name in emotions])),
        ]
    )
    return pa.schema(
        [
            ("source", pa.string()),
            ("frame", pa.int64()),
            ("time", pa.float64()),
            ("faces", pa.list_(face)),
        ]
    )


def _row_schema(emotions: Sequence[str]) -> pa.Schema:
    """An actor's output: the frame record and the columns of ``_EXTRA``."""
    extra = [("error", pa.string()), ("undecodable", pa.int64()), ("detector", pa.string())]
    return pa.schema(list(record_schema(emotions)) + [pa.field(n, t) for n, t in extra])


class FrameRecords:
    """A callable class for ``ray.data.Dataset.map_batches``: one Engine per actor, tasks in,
    frame records out.

    A batch holds :class:`Task` rows; each task's files are read and classified by
    :func:`~ferfast.files.predict_files` (frames batched across files), and every frame or
    unreadable file becomes one row of :func:`_row_schema`.
    """

    def __init__(self, options: EngineOptions, every: int = 1) -> None:
        self.engine = options.engine()
        self.every = every
        self.emotions = tuple(self.engine.emotions)
        self.schema = _row_schema(self.emotions)
        kind = type(self.engine.detector).__name__ if self.engine.detector else "none"
        self.detector = kind.removesuffix("Detector").lower()

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows: list[dict[str, Any]] = []
        for task in batch.to_pylist():
            inputs = [
                InputFile(Path(p), kind, start=start, stop=None if stop < 0 else stop)
                for p, kind, start, stop in zip(
                    task["paths"], task["kinds"], task["starts"], task["stops"], strict=True
                )
            ]
            names = {str(Path(p)): s for p, s in zip(task["paths"], task["sources"], strict=True)}
            for pred in predict_files(inputs, self.engine, every=self.every):
                source = names[pred.source]
                record = FrameRecord(source, pred.frame, time.time(), pred.faces, self.emotions)
                rows.append(
                    record.as_dict()
                    | {
                        "error": pred.error,
                        "undecodable": pred.undecodable,
                        "detector": self.detector,
                    }
                )
        return pa.Table.from_pylist(rows, schema=self.schema)


def _split(
    paths: PathLike | Sequence[PathLike | InputFile],
) -> tuple[list[InputFile], list[tuple[str, str]]]:
    """Input files (``collect_inputs``; InputFiles as they are) and (path, why) of bad paths.

    A path that is not valid UTF-8 is a bad one here: records travel as Arrow strings.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    inputs: list[InputFile] = []
    errors: list[tuple[str, str]] = []
    for item in paths:
        if isinstance(item, InputFile):
            found = [item]
        else:
            found, missing = collect_inputs([item])
            errors.extend((m.source, m.error or "") for m in missing)
        for i in found:
            try:
                os.path.abspath(i.path).encode("utf-8")
            except UnicodeEncodeError:
                errors.append(
                    (str(i.path), "the path is not UTF-8 (use ferfast predict without --ray)")
                )
            else:
                inputs.append(i)
    return inputs, errors


def tasks_dataset(
    tasks: Sequence[Task],
    options: EngineOptions = EngineOptions(),  # noqa: B008 - frozen, never mutated
    *,
    every: int = 1,
    actors: int = 1,
    gpus_per_actor: float = 0,
) -> ray.data.Dataset:
    """The frame records of ``tasks`` (:func:`plan_tasks`), in the tasks' order: sorted by
    (source, frame).

    ``actors`` actors (at most one per task) each build one Engine from ``options`` and
    reserve ``options.threads`` CPUs (and ``gpus_per_actor`` GPUs). Rows follow
    :func:`_row_schema`: the frame record plus ``error`` (set for an unreadable file, whose row
    has no faces), ``undecodable`` and ``detector``. Lazy: nothing runs until the dataset is
    consumed.
    """
    actors = max(1, min(actors, len(tasks)))
    # One block per task: blocks are what the actor pool hands out.
    items = [t.row for t in tasks]
    ds: ray.data.Dataset = ray.data.from_items(items, override_num_blocks=max(1, len(tasks)))
    ds = ds.map_batches(
        FrameRecords,
        fn_constructor_kwargs={"options": options, "every": every},
        batch_size=1,
        batch_format="pyarrow",
        # Two tasks in flight: an actor never waits for its next task, and the rest stay free
        # for whichever actor finishes first.
        compute=ray.data.ActorPoolStrategy(size=actors, max_tasks_in_flight_per_actor=2),
        num_cpus=options.threads,
        num_gpus=gpus_per_actor,
    )
    # The tasks come sorted by source and each reads its frames in order, so keeping the
    # order sorts the records; a distributed sort would cost seconds of shuffle tasks.
    ds.context.execution_options.preserve_order = True
    return ds


def records_dataset(
    paths: PathLike | Sequence[PathLike | InputFile],
    options: EngineOptions = EngineOptions(),  # noqa: B008 - frozen, never mutated
    *,
    every: int = 1,
    actors: int = 1,
    task_frames: int = TASK_FRAMES,
    gpus_per_actor: float = 0,
) -> ray.data.Dataset:
    """The frame records of image and video files and folders (``ferfast predict``'s inputs;
    paths that do not exist are left out) as a dataset sorted by (source, frame): see
    :func:`plan_tasks` and :func:`tasks_dataset`. E.g. ``records_dataset(["archive/"],
    actors=8).drop_columns(["error", "undecodable", "detector"]).write_parquet(folder)``.
    """
    inputs, _ = _split(paths)
    tasks = plan_tasks(inputs, every=every, actors=actors, task_frames=task_frames)
    return tasks_dataset(tasks, options, every=every, actors=actors, gpus_per_actor=gpus_per_actor)


@dataclass
class RayRun:
    """What a Ray job wrote."""

    output: str
    format: str
    actors: int
    tasks: int
    frames: int = 0  # frame records written
    faces: int = 0
    undecodable: int = 0  # video frames skipped because they did not decode
    errors: list[tuple[str, str]] = field(default_factory=list)  # (source, why) per bad file
    detectors: dict[str, int] = field(default_factory=dict)  # frames per detector kind
    seconds: float = 0.0  # planning, running and writing (not connecting to Ray)


def _face(rec: dict[str, Any], emotions: tuple[str, ...]) -> FaceResult:
    """A face of a frame record back as a FaceResult (no landmarks: records carry none).

    Its record is the same: rounding the rounded values again changes nothing, and the float64
    probabilities keep them exactly.
    """
    probs = np.array([rec["probs"][name] for name in emotions], dtype=np.float64)
    x, y, w, h = rec["box"]
    return FaceResult((x, y, w, h), rec["score"], None, probs, rec["emotion"], emotions)


def _emotions(schema: pa.Schema) -> tuple[str, ...]:
    probs = schema.field("faces").type.value_type.field("probs").type
    return tuple(probs.field(i).name for i in range(probs.num_fields))


def write_records(
    ds: ray.data.Dataset,
    output: PathLike,
    fmt: str,
    *,
    force: bool = False,
    run: RayRun | None = None,
) -> RayRun:
    """Write the rows of :func:`records_dataset` to ``output`` (a file, or ``"-"`` for the
    text formats) in their order, and count them into ``run``.

    Parquet: the frame records (:func:`record_schema`), one row per frame. ``csv``, ``jsonl``,
    ``table``: the sinks of ``ferfast predict``. Unreadable files are counted, not written.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    run = run or RayRun(str(output), fmt, actors=0, tasks=0)
    writer: Any = None  # the Parquet writer or the text sink, opened with the first batch
    fh = None
    try:
        for block in ds.iter_batches(batch_format="pyarrow", batch_size=None):
            batch = cast(pa.Table, block)
            emotions = _emotions(batch.schema)
            if writer is None:
                if fmt == "parquet":
                    fh = open_text(output, "-o", force=force)
                    writer = pq.ParquetWriter(fh.buffer, record_schema(emotions))
                else:
                    writer = open_sink(fmt, str(output), emotions, force=force)
            good = batch.filter(pc.is_null(batch["error"]))
            for row in batch.select(list(_EXTRA) + ["source"]).to_pylist():
                if row["error"] is not None:
                    run.errors.append((row["source"], row["error"]))
                else:
                    run.detectors[row["detector"]] = run.detectors.get(row["detector"], 0) + 1
                run.undecodable += row["undecodable"]
            records = good.drop_columns(list(_EXTRA))
            if fmt == "parquet":
                try:
                    writer.write_table(records)
                except OSError as exc:
                    raise OutputError(f"cannot write {output}: {exc}") from exc
            else:
                for rec in records.to_pylist():
                    faces = [_face(f, emotions) for f in rec["faces"]]
                    writer.write(
                        FrameRecord(rec["source"], rec["frame"], rec["time"], faces, emotions)
                    )
            run.frames += records.num_rows
            run.faces += sum(len(f) for f in records.column("faces").to_pylist())
    except ray.exceptions.RayError as exc:
        raise RayJobError(_why(exc)) from exc
    finally:
        if writer is not None:
            writer.close()
        if fh is not None:
            fh.close()
    return run


def _why(exc: BaseException) -> str:
    """The last line of a Ray error (its cause), for a one-line message."""
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return f"the Ray job failed: {lines[-1].strip() if lines else type(exc).__name__}"


@contextlib.contextmanager
def connect(
    address: str | None = None, *, num_cpus: int | None = None, quiet: bool = False
) -> Iterator[None]:
    """Ray for the block: a new local instance (``address`` None or ``"local"``, with
    ``num_cpus`` CPUs, default all) or the cluster at ``address`` (``"auto"``,
    ``HOST:PORT``, ``ray://HOST:PORT``); disconnected (a local instance shut down) after.
    Already connected: that connection is used and kept. ``quiet``: Ray Data's progress
    messages are not logged (a command line's output stays its own)."""
    if quiet:
        logging.getLogger("ray.data").setLevel(logging.ERROR)
    if ray.is_initialized():
        yield
        return
    local = address in (None, "local")
    if not local and address is not None:
        _check_reachable(address)
    try:
        ray.init(
            address="local" if local else address,
            num_cpus=num_cpus if local else None,
            include_dashboard=False,
            logging_level=logging.WARNING,
        )
    except (ConnectionError, OSError) as exc:
        raise RayJobError(f"cannot connect to Ray at {address}: {exc}") from exc
    try:
        yield
    finally:
        ray.shutdown()


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Refuse a HOST:PORT (or ray://HOST:PORT) address nothing listens on, at once: Ray itself
    retries for minutes."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", or a form Ray resolves itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        why = exc.strerror or str(exc) or type(exc).__name__
        raise RayJobError(f"cannot reach the Ray head at {address}: {why}") from None


def _cluster_actors(threads: int) -> int:
    """Actors of ``threads`` CPUs that the connected cluster holds (at least one)."""
    resources = cast(Callable[[], dict[str, float]], ray.cluster_resources)()
    cpus = int(resources.get("CPU", 1))
    return max(1, cpus // threads)


def predict_ray(
    paths: PathLike | Sequence[PathLike | InputFile],
    output: PathLike,
    options: EngineOptions = EngineOptions(),  # noqa: B008 - frozen, never mutated
    *,
    fmt: str | None = None,
    every: int = 1,
    actors: int | None = None,
    task_frames: int = TASK_FRAMES,
    force: bool = False,
    progress: bool = False,
) -> RayRun:
    """``ferfast predict`` on Ray: the frame records of ``paths`` written to ``output``.

    ``paths``: files and folders, or the InputFiles of ``collect_inputs`` (used as they are).
    Runs on the Ray connection in place (:func:`connect`; else a new local instance for the
    call). ``fmt``: from the suffix of ``output`` (.parquet, .csv, .jsonl) when None.
    ``actors``: one per ``options.threads`` CPUs of the cluster when None. Paths that do not
    exist are counted as errors. The output is checked before Ray starts.
    """
    if fmt is None:
        suffix = Path(output).suffix.lower()
        fmt = {".parquet": "parquet", ".csv": "csv", ".jsonl": "jsonl"}.get(suffix)
        if fmt is None:
            raise ValueError(f"cannot tell the format of {output}; give fmt ({', '.join(FORMATS)})")
    if fmt == "parquet" and str(output) == "-":
        raise ValueError("Parquet needs an output file")
    inputs, errors = _split(paths)
    if str(output) != "-":
        check_file(output, "-o", inputs=[i.path for i in inputs], force=force)
    with connect():
        start = time.perf_counter()
        ray.data.DataContext.get_current().enable_progress_bars = progress
        actors = actors or _cluster_actors(options.threads)
        run = RayRun(str(output), fmt, actors=actors, tasks=0, errors=errors)
        if inputs:
            tasks = plan_tasks(inputs, every=every, actors=actors, task_frames=task_frames)
            run.tasks = len(tasks)
            run.actors = min(actors, len(tasks))
            ds = tasks_dataset(tasks, options, every=every, actors=actors)
            write_records(ds, output, fmt, force=force, run=run)
        run.seconds = time.perf_counter() - start
    return run
