"""``ferfast-stream``: emotion recognition on camera, file and network streams.

Exit status: 0 when the file ended, --max-frames was reached or the window was closed; 130 after
Ctrl-C (SIGINT) and 143 after SIGTERM, as shells report a command stopped by those signals (the
outputs are complete up to the last frame either way); 1 when the source or the engine could not
be opened, a file source yielded no frame at all (not a video or image OpenCV can decode), a
live source could not be reconnected, or an output failed; 2 for bad arguments, output paths
included.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..argtypes import (
    add_engine_arguments,
    below_one,
    detector_fallback_note,
    engine_from_args,
    fraction,
    non_negative_int,
    plain_warnings,
    positive_int,
    seconds,
    size,
)
from ..sinks.mqtt import add_mqtt_arguments

if TYPE_CHECKING:
    # Deferred at run time (NumPy, OpenCV): the process reaches main(), and its Ctrl-C
    # handling, within milliseconds of starting.
    from .sources import FrameSource
    from .tracking import IouTracker

log = logging.getLogger("ferfast.stream")


def _fourcc(text: str) -> str:
    """argparse type of --fourcc: a four-character codec tag."""
    from .recorder import check_fourcc  # deferred: imports OpenCV

    try:
        return check_fourcc(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``ferfast-stream``."""
    from .tracking import DEFAULT_APPEARANCE_THRESHOLD, DEFAULT_DETECT_EVERY

    p = argparse.ArgumentParser(
        prog="ferfast-stream",
        description="Facial-emotion recognition on a camera, video file or network stream.",
    )
    from .. import __version__

    p.add_argument("--version", action="version", version=f"ferfast-stream {__version__}")
    src = p.add_argument_group("source")
    src.add_argument(
        "--source",
        required=True,
        action="append",
        help="camera index (0), V4L2 device (/dev/video0), video file, URL (rtsp://, "
        "http:// MJPEG, ...) or a GStreamer pipeline ending in appsink; repeat it to run "
        "several sources in one process (each record names its source)",
    )
    src.add_argument(
        "--realtime",
        action="store_true",
        help="play a video file at its own frame rate (as a camera would deliver it)",
    )
    src.add_argument("--camera-size", type=size, metavar="WxH", help="capture size for cameras")
    src.add_argument(
        "--decode-threads",
        type=non_negative_int,
        default=None,
        metavar="N",
        help="FFmpeg decoder threads for video files and URLs (0: FFmpeg's choice; default 1 "
        "on machines with up to 3 CPUs, where the capture, detector and classification threads "
        "already fill the cores, else 0)",
    )
    src.add_argument(
        "--timeout",
        type=seconds,
        default=5.0,
        metavar="S",
        help="open/read timeout of network sources (default 5)",
    )
    src.add_argument(
        "--reconnect-delay",
        type=seconds,
        default=0.5,
        metavar="S",
        help="first reconnect delay of a live source; doubles per failed attempt (default 0.5)",
    )
    src.add_argument(
        "--reconnect-max-delay",
        type=seconds,
        default=10.0,
        metavar="S",
        help="longest reconnect delay (default 10)",
    )
    src.add_argument(
        "--max-reconnects",
        type=non_negative_int,
        default=None,
        metavar="N",
        help="give up after N failed reconnect attempts in a row (default: never)",
    )

    out = p.add_argument_group(
        "output",
        "with none of --jsonl, --output, --display and --save-crops, the JSON Lines "
        "records go to standard output",
    )
    out.add_argument("--jsonl", metavar="FILE|-", help="write one JSON object per frame")
    out.add_argument(
        "--force",
        action="store_true",
        help="replace existing output files (--jsonl, --output, --summary-json) and crops in "
        "--save-crops; inputs are never replaced",
    )
    out.add_argument(
        "--append", action="store_true", help="add to an existing --jsonl file instead"
    )
    out.add_argument(
        "--output",
        metavar="OUT.mp4",
        help="write the annotated video (.mp4, .m4v, .mov, .avi or .mkv)",
    )
    out.add_argument(
        "--fourcc",
        type=_fourcc,
        metavar="CODE",
        help="codec of --output (default: avc1, i.e. H.264, for .mp4/.m4v/.mov, falling back to "
        "mp4v when this OpenCV build has no H.264 encoder; MJPG for .avi/.mkv)",
    )
    out.add_argument(
        "--save-crops", metavar="DIR", help="save face crops as JPEG (off by default: privacy)"
    )
    out.add_argument("--display", action="store_true", help="show the annotated video")
    out.add_argument(
        "--fullscreen", action="store_true", help="fullscreen kiosk view (implies --display)"
    )
    out.add_argument("--kiosk-size", type=size, metavar="WxH", help="kiosk canvas size")
    out.add_argument("--summary-json", metavar="FILE", help="write the end-of-run summary as JSON")
    out.add_argument("--no-progress", action="store_true", help="no progress bar for files")
    out.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")

    fleet = p.add_argument_group("fleet")
    add_mqtt_arguments(fleet)
    fleet.add_argument(
        "--metrics-port",
        type=non_negative_int,
        metavar="N",
        help="serve Prometheus metrics on http://HOST:N/metrics (frames, faces, drops, "
        "reconnects, detector runs, stage latency histograms, per source; 0: a free port, "
        "logged); needs prometheus-client (pip install 'ferfast[metrics]')",
    )
    fleet.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        metavar="HOST",
        help="address the metrics server binds (default 127.0.0.1; 0.0.0.0 for a scraper on "
        "another machine)",
    )

    run = p.add_argument_group("processing")
    run.add_argument("--max-frames", type=positive_int, metavar="N", help="stop after N frames")
    run.add_argument(
        "--detect-every",
        type=positive_int,
        default=DEFAULT_DETECT_EVERY,
        metavar="N",
        help="run the detector on every N-th frame and classify the faces at their last boxes "
        "in between; a face that no longer looks like itself is re-detected at once "
        f"(1 = every frame, default {DEFAULT_DETECT_EVERY})",
    )
    add_engine_arguments(
        run,
        threads=1,
        threads_why=": a frame's few faces gain nothing from more, and the capture thread and "
        "the detector need the other cores",
    )

    trk = p.add_argument_group("tracking")
    trk.add_argument(
        "--smoothing",
        type=fraction,
        default=0.5,
        metavar="A",
        help="EMA weight of the newest probabilities (1 = no smoothing, default 0.5)",
    )
    trk.add_argument("--no-smoothing", action="store_true", help="report raw probabilities")
    trk.add_argument("--no-tracking", action="store_true", help="new id for every detection")
    trk.add_argument(
        "--iou-threshold",
        type=fraction,
        default=0.3,
        metavar="F",
        help="minimum box overlap to keep a track id (default 0.3)",
    )
    trk.add_argument(
        "--max-missed",
        type=non_negative_int,
        default=10,
        metavar="N",
        help="frames a track survives without a detection (default 10)",
    )
    trk.add_argument(
        "--appearance-threshold",
        type=below_one,
        default=DEFAULT_APPEARANCE_THRESHOLD,
        metavar="S",
        help="minimum appearance similarity (correlation of the face crops) to keep a track "
        "id: a cut to another person starts a new id, and a face carried between detections "
        "that falls below it is re-detected at once "
        f"(0 = off, default {DEFAULT_APPEARANCE_THRESHOLD})",
    )
    return p


class _Interrupts:
    """SIGINT / SIGTERM set a stop event (a second SIGINT raises KeyboardInterrupt); ``signum``
    is the first signal received."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.signum: int | None = None
        self._saved: dict[int, Any] = {}

    def __enter__(self) -> _Interrupts:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._saved[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        log.info("%s received, stopping", signal.Signals(signum).name)
        if self.signum is None:
            self.signum = signum
        self.stop.set()

    def exit_status(self) -> int:
        """128 + the signal number, as a shell reports a command stopped by that signal."""
        return 128 + (self.signum or signal.SIGINT)

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)


def lane_path(path: str, position: int, count: int) -> Path:
    """Where source ``position`` of ``count`` writes a per-source output given as ``path``:
    ``path`` itself for one source, else ``<stem>-<position><suffix>`` beside it."""
    p = Path(path)
    return p if count == 1 else p.with_name(f"{p.stem}-{position}{p.suffix}")


def _error(message: object) -> int:
    """Print ``message`` as ferfast-stream's error line; returns exit status 1."""
    print(f"ferfast-stream: error: {message}", file=sys.stderr)
    return 1


def _open_source(args: argparse.Namespace, text: str, index: int | None = None) -> FrameSource:
    """Open ``--source`` ``text`` with the source flags of ``args`` (not started yet).

    ``index``: its position when several sources run; it then names the source in errors.
    """
    from .sources import FrameSource, SourceError, default_decode_threads, parse_source

    spec = parse_source(text)
    threads = default_decode_threads() if args.decode_threads is None else args.decode_threads
    name = "" if index is None else f" #{index}"
    try:
        source = FrameSource(
            spec,
            backoff=(args.reconnect_delay, args.reconnect_max_delay),
            max_reconnects=args.max_reconnects,
            timeout_s=args.timeout,
            size=args.camera_size,
            realtime=args.realtime,
            decode_threads=threads,
        ).open()
    except SourceError as exc:
        if index is None:
            raise
        raise SourceError(f"--source{name}: {exc}") from None
    log.info("opened %s source%s %s", spec.kind.value, name, spec.name)
    return source


def _make_tracker(args: argparse.Namespace, emotions: Sequence[str]) -> IouTracker:
    """The tracker the tracking flags of ``args`` ask for."""
    from .tracking import IouTracker

    return IouTracker(
        emotions,
        iou_threshold=args.iou_threshold,
        smoothing=1.0 if args.no_smoothing else args.smoothing,
        max_missed=args.max_missed,
        enabled=not args.no_tracking,
        appearance_threshold=args.appearance_threshold,
    )


def _write_summary(path: str, data: dict[str, object]) -> bool:
    """Write ``--summary-json``; False (after printing the error) when it cannot be written."""
    try:
        Path(path).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        _error(f"cannot write --summary-json {path}: {exc.strerror or exc}")
        return False
    return True


def _check_outputs(args: argparse.Namespace) -> None:
    """Check every output path before a source opens (OutputPathError names the problem).

    With no output chosen the records go to standard output.
    """
    from ..outpaths import OutputPathError, check_file

    chosen = (args.jsonl, args.output, args.display, args.fullscreen, args.save_crops, args.mqtt)
    if not any(chosen):
        args.jsonl = "-"
    inputs = [text for text in args.source if Path(text).is_file()]
    n = len(args.source)
    files: list[tuple[str, str | Path | None]] = [
        ("--jsonl", args.jsonl if args.jsonl != "-" else None),
        ("--summary-json", args.summary_json),
    ]
    if args.output:
        files += [("--output", lane_path(args.output, i, n)) for i in range(n)]
    seen: dict[Path, str] = {}
    for option, path in files:
        if not path:
            continue
        append = args.append if option == "--jsonl" else None
        check_file(path, option, inputs=inputs, force=args.force, append=append)
        key = Path(path).resolve()
        if key in seen:
            raise OutputPathError(f"{seen[key]} and {option} name the same file {path}")
        seen[key] = option
    if args.append and not (args.jsonl and args.jsonl != "-"):
        raise OutputPathError("--append adds to a --jsonl file; give --jsonl FILE")
    if args.save_crops:
        from .crops import CropWriter

        for i in range(n):  # creates the folders, refuses crops of an earlier run
            CropWriter(_crops_dir(args.save_crops, i, n), force=args.force)


def _crops_dir(folder: str, position: int, count: int) -> Path:
    """--save-crops of source ``position``: the folder itself, or a subfolder per source."""
    return Path(folder) if count == 1 else Path(folder) / str(position)


def _notes(engine: Any, args: argparse.Namespace) -> list[str]:
    """Lines that the final summary repeats (the detector fallback)."""
    note = detector_fallback_note(engine, args.detector)
    return [note] if note else []


def _close(outputs: Any, failure: str | None) -> str | None:
    """Close the outputs; the first failure (the run's own, else a close's)."""
    from ..outpaths import OutputError

    try:
        outputs.close()
    except OutputError as exc:
        return failure or str(exc)
    return failure


def _lane_outputs(args: argparse.Namespace, source: FrameSource, position: int) -> Any:
    """The image outputs of source ``position`` (annotated video, crops, window, progress)."""
    from .crops import CropWriter
    from .kiosk import Window
    from .pipeline import LaneOutputs, progress_bar
    from .recorder import VideoRecorder

    n = len(args.source)
    out = LaneOutputs()
    if args.output:
        path = lane_path(args.output, position, n)
        out.video = VideoRecorder(path, source.fps, fourcc=args.fourcc, force=args.force)
    if args.save_crops:
        # Checked (and created) before the sources opened; crops of this run are welcome.
        out.crops = CropWriter(_crops_dir(args.save_crops, position, n), force=True)
    if args.display or args.fullscreen:
        title = "ferfast" if n == 1 else f"ferfast #{position} {source.spec.name}"
        out.window = Window(title, fullscreen=args.fullscreen, size=args.kiosk_size)
        if args.fullscreen:
            out.kiosk_size = out.window.size
    total = source.frame_count
    if args.max_frames is not None:
        total = min(total, args.max_frames) if total else args.max_frames
    out.progress = progress_bar(
        total, n == 1 and not source.spec.live and not args.no_progress and sys.stderr.isatty()
    )
    return out


def _source_name(text: str) -> str:
    """A ``--source`` as messages name it (a URL without its password)."""
    from .sources import parse_source

    return parse_source(text).name


def _print_summary(args: argparse.Namespace, result: Any, notes: list[str]) -> None:
    """The run's summary on stderr: per source and in all when there are several."""
    print(f"ferfast-stream: stopped ({result.reason})", file=sys.stderr)
    if len(result.sources) == 1:  # its error, if any, is the run's error line
        print(result.summary.format(), file=sys.stderr)
        indent = ""
    else:
        for i, (summary, error) in enumerate(zip(result.sources, result.errors, strict=True)):
            print(f"source #{i} {_source_name(args.source[i])}:", file=sys.stderr)
            print("  " + summary.format().replace("\n", "\n  "), file=sys.stderr)
            if error:
                print(f"  error: {error}", file=sys.stderr)
        print(f"all {len(result.sources)} sources:", file=sys.stderr)
        print("  " + result.summary.format().replace("\n", "\n  "), file=sys.stderr)
        indent = "  "
    for note in notes:
        print(f"{indent}{note}", file=sys.stderr)


def _main(args: argparse.Namespace, launched: float, interrupts: _Interrupts) -> int:
    """Open the sources, the engine and the outputs, run the loop, report; the exit status."""
    from ..sinks import JsonlSink
    from ..sinks.mqtt import mqtt_sink_from_args
    from .kiosk import display_available, require_gui, x_display_reachable
    from .pipeline import Lane, StreamLoop
    from .stats import RunStats

    sources: list[FrameSource] = []
    lanes: list[Lane] = []
    sinks: list[Any] = []
    notes: list[str] = []
    metrics = None
    mqtt = None
    several = len(args.source) > 1
    try:
        for i, text in enumerate(args.source):
            sources.append(_open_source(args, text, i if several else None))
        mqtt = mqtt_sink_from_args(args, args.source)  # a bad broker fails before the model
        if mqtt is not None:
            sinks.append(mqtt)
        if args.display or args.fullscreen:
            require_gui()  # before the model loads: a headless OpenCV cannot open windows
            if not display_available():
                raise RuntimeError("--display needs a graphical session; DISPLAY is not set")
            if not x_display_reachable():
                raise RuntimeError(f"cannot connect to X display {os.environ['DISPLAY']}")
        engine = engine_from_args(args)
        notes = _notes(engine, args)
        emotions = tuple(engine.emotions)
        if args.jsonl:
            sinks.append(
                JsonlSink(
                    args.jsonl, emotions, option="--jsonl", force=args.force, append=args.append
                )
            )
        for i, source in enumerate(sources):
            lane = Lane(source, _make_tracker(args, emotions), RunStats(launched))
            lanes.append(lane)
            lane.outputs = _lane_outputs(args, source, i)
        if args.metrics_port is not None:
            metrics = _serve_metrics(args, engine, lanes, mqtt)
        for source in sources:
            source.start()
        loop = StreamLoop(
            engine,
            lanes,
            sinks,
            max_frames=args.max_frames,
            stats=RunStats(launched),
            stop=interrupts.stop,
            detect_every=args.detect_every,
            redetect_threshold=args.appearance_threshold,
        )
        result = loop.run()
    except BaseException:
        _close_all(lanes, sinks, None)  # the error in flight is the one to report
        raise
    finally:
        for source in sources:
            source.stop()
        if metrics is not None:
            metrics.shutdown()
    if mqtt is not None:  # the run summary stays in each source's retained status topic
        for lane, summary in zip(lanes, result.sources, strict=True):
            mqtt.publish_summary(
                summary.as_dict() | {"reason": result.reason}, lane.source.spec.name
            )
    failure = _close_all(lanes, sinks, result.error)

    if mqtt is not None:
        notes.append(mqtt.summary_line())
    _print_summary(args, result, notes)
    if args.summary_json:
        data = result.summary.as_dict() | {"reason": result.reason}
        if mqtt is not None:
            data["mqtt"] = mqtt.stats().as_dict()
        if several:
            data["sources"] = [
                s.as_dict() | {"source": _source_name(text), "error": err}
                for s, text, err in zip(result.sources, args.source, result.errors, strict=True)
            ]
        if not _write_summary(args.summary_json, data):
            return 1
    if failure:
        return _error(failure)
    failed = [(i, err) for i, err in enumerate(result.errors) if err]
    if failed:
        if not several:
            return _error(failed[0][1])
        return _error("source " + "; ".join(f"#{i}: {err}" for i, err in failed))
    if result.reason == "interrupted":
        return interrupts.exit_status()
    return 0


def _serve_metrics(
    args: argparse.Namespace, engine: Any, lanes: Sequence[Any], mqtt: Any | None
) -> Any:
    """Start the Prometheus endpoint of ``--metrics-port`` (with ``mqtt``'s queue, if any);
    returns its server."""
    from .. import __version__
    from .metrics import QueueStats, StreamCollector, serve

    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        raise ImportError(
            "--metrics-port needs prometheus-client: pip install 'ferfast[metrics]'"
        ) from None
    info = {
        "version": __version__,
        "model": str(args.model),
        "backend": str(getattr(engine.runner, "provider", "tensorrt")),
    }
    queues = []
    if mqtt is not None:

        def mqtt_queues() -> dict[str, QueueStats]:
            return {
                source: QueueStats(s.published, s.dropped, s.queued)
                for source, s in mqtt.source_stats().items()
            }

        queues.append(mqtt_queues)
    collector = StreamCollector(lanes, info, queues)
    try:
        server = serve(collector, args.metrics_port, args.metrics_host)
    except OSError as exc:
        raise OSError(
            f"--metrics-port: cannot serve on {args.metrics_host}:{args.metrics_port}: "
            f"{exc.strerror or exc}"
        ) from None
    host, port = server.server_address[:2]
    log.info("metrics on http://%s:%d/metrics", host, port)
    return server


def _close_all(lanes: Sequence[Any], sinks: Sequence[Any], failure: str | None) -> str | None:
    """Close every lane's outputs and every sink; the first failure (the run's own, else a
    close's)."""
    for item in (*(lane.outputs for lane in lanes), *sinks):
        failure = _close(item, failure)
    return failure


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``ferfast-stream``; returns the exit status."""
    try:
        with plain_warnings(log.warning):
            return _run(argv)
    except KeyboardInterrupt:  # Ctrl-C before the handlers are in place, or a second one
        print("ferfast-stream: interrupted", file=sys.stderr)
        return 130


def _run(argv: Sequence[str] | None) -> int:
    """Parse the arguments, run the stream(s), print the summary; returns the exit status."""
    from .stats import launch_perf_counter

    # Time to first result: from process launch for the console script, else from this call.
    launched = launch_perf_counter() if argv is None else time.perf_counter()
    parser = build_parser()
    args = parser.parse_args(argv)
    if len(args.source) > 1 and args.fullscreen:
        # A kiosk screen shows one camera; --display opens a window per source instead.
        parser.error(f"--fullscreen takes one --source; got {len(args.source)}")
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.WARNING if args.quiet else logging.INFO,
        format="ferfast-stream: %(levelname)s: %(message)s",
    )
    if args.reconnect_max_delay < args.reconnect_delay:
        args.reconnect_max_delay = args.reconnect_delay

    from ..outpaths import OutputPathError

    # Every output path is checked before a source or the model opens: a bad one costs nothing.
    try:
        _check_outputs(args)
    except OutputPathError as exc:
        print(f"ferfast-stream: error: {exc}", file=sys.stderr)
        return 2

    import cv2  # deferred (like every heavy import here): --help and bad arguments stay fast

    stop = threading.Event()
    # SourceError is a RuntimeError; every failure to open or run prints one line, no traceback.
    try:
        with _Interrupts(stop) as interrupts:
            return _main(args, launched, interrupts)
    except OutputPathError as exc:
        print(f"ferfast-stream: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError, TypeError, RuntimeError, ImportError, cv2.error) as exc:
        return _error(exc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
