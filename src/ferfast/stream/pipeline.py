"""The stream loop: frames from a source -> engine -> tracker -> sinks / video / window."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np
from tqdm import tqdm

from ferfast.detect import Detection
from ferfast.outpaths import OutputError
from ferfast.records import FrameRecord
from ferfast.sinks import Sink

from .annotate import draw_faces, draw_fps
from .cadence import Cadence, DetectAhead, Staged
from .crops import CropWriter
from .kiosk import Window, render_kiosk, status_screen
from .recorder import VideoRecorder
from .sources import FrameSource
from .stats import RunStats, RunSummary
from .tracking import DEFAULT_APPEARANCE_THRESHOLD, DEFAULT_DETECT_EVERY, IouTracker

if TYPE_CHECKING:
    from ferfast.engine import FaceResult

log = logging.getLogger("ferfast.stream")


class EngineLike(Protocol):
    """What the stream loops need from ``ferfast.Engine``."""

    emotions: tuple[str, ...]

    def detect(self, frame: np.ndarray) -> list[Detection]: ...

    def predict(
        self, frame: np.ndarray, boxes: Sequence[Detection] | None = None, *, crops: bool = False
    ) -> list[FaceResult]: ...

    def predict_batch(
        self,
        frames: Sequence[np.ndarray],
        boxes: Sequence[Sequence[Detection]],
        *,
        crops: bool = False,
    ) -> list[list[FaceResult]]: ...


@dataclass
class Outputs:
    """Where results go; every member is optional."""

    sinks: list[Sink] = field(default_factory=list)  # frame records (JSON Lines, ...)
    video: VideoRecorder | None = None
    crops: CropWriter | None = None
    window: Window | None = None
    kiosk_size: tuple[int, int] | None = None  # set for the fullscreen kiosk view
    progress: tqdm | None = None

    def close(self) -> None:
        """Close everything that was opened (safe to call more than once)."""
        for item in (*self.sinks, self.video, self.window, self.progress):
            if item is not None:
                item.close()


@dataclass
class RunResult:
    """Why the loop ended and what it did."""

    summary: RunSummary
    # "end" | "max-frames" | "interrupted" | "window-closed" | "source-failed" | "output-failed"
    reason: str
    error: str | None = None


class _RollingFps:
    """Frames per second over the last ~``n`` frames (for the on-screen counter)."""

    def __init__(self, n: int = 30) -> None:
        self._times: list[float] = []
        self._n = n

    def tick(self, now: float) -> float:
        self._times.append(now)
        if len(self._times) > self._n:
            del self._times[0]
        if len(self._times) < 2:
            return 0.0
        return (len(self._times) - 1) / max(self._times[-1] - self._times[0], 1e-9)


@dataclass
class StreamLoop:
    """Runs the engine over a started :class:`FrameSource` until it ends or is stopped.

    The detector runs on every ``detect_every``-th frame on a thread of its own
    (:class:`DetectAhead`); on the frames in between, the last detection's faces are classified
    at their carried boxes, with an early re-detect when one is lost (:class:`Cadence`, with
    ``redetect_threshold``). Frames come out in source order.
    """

    engine: EngineLike
    source: FrameSource
    tracker: IouTracker
    outputs: Outputs = field(default_factory=Outputs)
    max_frames: int | None = None
    stats: RunStats = field(default_factory=RunStats)
    stop: threading.Event = field(default_factory=threading.Event)
    detect_every: int = DEFAULT_DETECT_EVERY
    redetect_threshold: float = DEFAULT_APPEARANCE_THRESHOLD

    def __post_init__(self) -> None:
        if self.detect_every < 1:
            raise ValueError(f"detect_every must be >= 1, got {self.detect_every}")
        self._cadence = Cadence(self.engine.detect, (self.stats,), self.redetect_threshold)
        # Crops only when an appearance check reads them: without them the Engine keeps its
        # fastest path (a GPU frame runner preprocesses on the device, no crop copies).
        self._crops = self.redetect_threshold > 0 or self.tracker.uses_crops

    def run(self) -> RunResult:
        """Process frames; return the summary and the reason the loop ended."""
        ahead = DetectAhead(self.source, self._cadence.detect, self.detect_every).start()
        error = None
        try:
            try:
                reason = self._loop(ahead)
            except OutputError as exc:  # the run ends; what was written stays (summary says)
                reason, error = "output-failed", str(exc)
            self.stats.finish()
        finally:
            ahead.stop()
        if reason == "source-failed":
            error = str(self.source.error)
        summary = self.stats.summary(
            frames_read=self.source.frames_read,
            undecodable=self.source.undecodable,
            dropped=self.source.dropped,
            reconnects=self.source.reconnects,
        )
        return RunResult(summary, reason, error)

    def _predict(self, image: np.ndarray, boxes: Sequence[Detection]) -> list[FaceResult]:
        return self.engine.predict(image, boxes=boxes, crops=self._crops)

    def _loop(self, ahead: DetectAhead) -> str:
        emotions = tuple(self.engine.emotions)
        rolling = _RollingFps()
        t_wait = time.perf_counter()
        notice_shown = False
        while True:
            if self.stop.is_set():
                return "interrupted"
            if self.max_frames is not None and self.stats.frames >= self.max_frames:
                return "max-frames"
            staged = ahead.read(timeout=0.1)
            if staged is None:
                if ahead.ended:
                    return "source-failed" if self.source.error else "end"
                window = self.outputs.window
                if window is not None:  # keep the window responsive while no frames come
                    if self.source.reconnecting and not notice_shown:
                        window.show(status_screen("camera lost - reconnecting", window.size))
                        notice_shown = True
                    if not window.poll():
                        return "window-closed"
                continue
            notice_shown = False
            t0 = time.perf_counter()
            self.stats.frame_started(t0)
            self.stats.record("wait", t0 - t_wait)
            self.stats.record("read", staged.frame.read_s)
            if not self._process(staged, emotions, rolling):
                return "window-closed"
            t_wait = time.perf_counter()

    def _process(self, staged: Staged, emotions: tuple[str, ...], rolling: _RollingFps) -> bool:
        frame = staged.frame
        t0 = time.perf_counter()
        faces_now = self._cadence.classify(staged, self._predict)
        results = faces_now.results
        t1 = time.perf_counter()
        # The tracker compares detected faces only (with the last detection of their track).
        faces = self.tracker.update(
            results, faces_now.track_crops() if self.tracker.uses_crops else None
        )
        produced = time.time()
        t2 = time.perf_counter()
        classify_s = t1 - t0 - faces_now.early_s
        self.stats.record("classify", classify_s)
        self.stats.record("infer", classify_s + faces_now.detect_s)
        self.stats.record("track", t2 - t1)

        out = self.outputs
        if out.sinks:
            record = FrameRecord(self.source.spec.name, frame.index, produced, faces, emotions)
            for sink in out.sinks:
                sink.write(record)
        if out.crops is not None:
            out.crops.write(frame.index, frame.image, faces)
        fps = rolling.tick(t2)
        keep_going = True
        if out.window is not None and out.kiosk_size is not None:
            canvas = render_kiosk(frame.image, faces, emotions, fps, out.kiosk_size)
            keep_going = out.window.show(canvas)
        if out.video is not None or (out.window is not None and out.kiosk_size is None):
            image = frame.image  # owned by this frame: draw in place
            draw_faces(image, faces, emotions)
            draw_fps(image, fps)
            if out.video is not None:
                out.video.write(image)
            if out.window is not None and out.kiosk_size is None:
                keep_going = out.window.show(image)
        if out.progress is not None:
            out.progress.update(1)
        t3 = time.perf_counter()
        self.stats.record("output", t3 - t2)
        self.stats.record("latency", t3 - frame.captured)
        self.stats.frame_done(t3, len(faces))
        return keep_going


def progress_bar(total: int | None, enabled: bool) -> tqdm | None:
    """A tqdm bar on stderr (``total`` frames, None: unknown) when ``enabled``, else None."""
    if not enabled:
        return None
    return tqdm(total=total or None, unit="frame", file=sys.stderr, dynamic_ncols=True)
