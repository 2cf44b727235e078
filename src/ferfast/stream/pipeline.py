"""The stream loop: frames from one or more sources -> engine -> tracker -> sinks and outputs.

One loop serves one source and several alike: each source is a :class:`Lane` with its own
capture thread, detector thread (:class:`DetectAhead`), carried faces (:class:`Cadence`),
tracker, statistics and image outputs (annotated video, crops, window). A step takes the frame
each lane has ready (a lane with none, e.g. a camera that is reconnecting, is skipped, never
waited for) and classifies the faces of all of them in one ``Engine.predict_batch`` call; each
frame's record then goes to every sink (records name their source) and its image to its lane's
outputs.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from tqdm import tqdm

from ferfast.faces import Faces
from ferfast.outpaths import OutputError
from ferfast.records import FrameRecord
from ferfast.sinks import Sink

from .annotate import draw_faces, draw_fps
from .cadence import Cadence, DetectAhead, FrameFaces, Plan, Staged
from .crops import CropWriter
from .kiosk import Window, render_kiosk, status_screen
from .recorder import VideoRecorder
from .sources import FrameSource
from .stats import RunStats, RunSummary
from .tracking import DEFAULT_APPEARANCE_THRESHOLD, DEFAULT_DETECT_EVERY, IouTracker

log = logging.getLogger("ferfast.stream")


class EngineLike(Protocol):
    """What the stream loop needs from ``ferfast.Engine``."""

    emotions: tuple[str, ...]

    def detect(self, frame: np.ndarray) -> Faces: ...

    def predict(self, frame: np.ndarray, boxes: Faces, *, crops: bool = False) -> Faces: ...

    def predict_batch(
        self, frames: Sequence[np.ndarray], boxes: Sequence[Faces], *, crops: bool = False
    ) -> list[Faces]: ...


@dataclass
class LaneOutputs:
    """One lane's outputs that need the frame's image; every member is optional."""

    video: VideoRecorder | None = None
    crops: CropWriter | None = None
    window: Window | None = None
    kiosk_size: tuple[int, int] | None = None  # set for the fullscreen kiosk view
    progress: tqdm | None = None

    def close(self) -> None:
        """Close everything that was opened (safe to call more than once); the first
        OutputError (a video that could not be finished) is raised after all are closed."""
        failure: OutputError | None = None
        for item in (self.video, self.window, self.progress):
            if item is None:
                continue
            try:
                item.close()
            except OutputError as exc:
                failure = failure or exc
        if failure is not None:
            raise failure


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
class Lane:
    """One source's state in the :class:`StreamLoop`."""

    source: FrameSource
    tracker: IouTracker
    stats: RunStats = field(default_factory=RunStats)
    outputs: LaneOutputs = field(default_factory=LaneOutputs)
    ahead: DetectAhead | None = None  # set by the loop
    cadence: Cadence | None = None  # set by the loop
    done: bool = False
    position: int = 0  # 0-based order among the loop's sources (set by the loop)
    notice_shown: bool = False  # the window shows "camera lost" (while reconnecting)
    rolling: _RollingFps = field(default_factory=_RollingFps)


@dataclass(frozen=True)
class RunResult:
    """Why the loop ended, the totals, and each source's summary and error (None if fine)."""

    summary: RunSummary  # all sources together (frames, faces, fps over the run)
    sources: tuple[RunSummary, ...]
    errors: tuple[str | None, ...]
    # "end" | "max-frames" | "interrupted" | "window-closed" | "source-failed" (every source
    # gave up) | "output-failed"
    reason: str
    error: str | None = None  # why an output failed (reason "output-failed")


@dataclass
class StreamLoop:
    """Runs the engine over started sources until all have ended or the loop is stopped.

    The detector runs on every ``detect_every``-th frame of each source on a thread of its own;
    on the frames in between, the last detection's faces are classified at their carried boxes,
    with an early re-detect when one is lost (:class:`Cadence`, with ``redetect_threshold``).
    Each source's frames come out in order. ``max_frames`` counts processed frames over all
    sources. A source that ends or gives up reconnecting leaves the others running. Each
    frame's stages are recorded in its lane's stats and in the total; a step's one model run is
    split among its frames by their share of the faces.
    """

    engine: EngineLike
    lanes: Sequence[Lane]
    sinks: Sequence[Sink] = ()
    max_frames: int | None = None
    stats: RunStats = field(default_factory=RunStats)
    stop: threading.Event = field(default_factory=threading.Event)
    detect_every: int = DEFAULT_DETECT_EVERY
    redetect_threshold: float = DEFAULT_APPEARANCE_THRESHOLD

    def __post_init__(self) -> None:
        if not self.lanes:
            raise ValueError("StreamLoop needs at least one source")
        if self.detect_every < 1:
            raise ValueError(f"detect_every must be >= 1, got {self.detect_every}")
        self._emotions = tuple(self.engine.emotions)
        for i, lane in enumerate(self.lanes):
            lane.position = i
            lane.cadence = Cadence(
                self.engine.detect, (lane.stats, self.stats), self.redetect_threshold
            )
        # Crops only when an appearance check reads them: without them the Engine keeps its
        # fastest path (a GPU frame runner preprocesses on the device, no crop copies).
        self._crops = self.redetect_threshold > 0 or any(
            lane.tracker.uses_crops for lane in self.lanes
        )

    def run(self) -> RunResult:
        """Process frames; return the summaries and the reason the loop ended."""
        for lane in self.lanes:
            # Each lane its own phase: N sources' detector runs spread over the period.
            detect = _cadence(lane).detect
            ahead = DetectAhead(lane.source, detect, self.detect_every, phase=lane.position)
            lane.ahead = ahead.start()
        error = None
        try:
            try:
                reason = self._loop()
            except OutputError as exc:  # the run ends; what was written stays (summary says)
                reason, error = "output-failed", str(exc)
            self.stats.finish()
            for lane in self.lanes:
                lane.stats.finish()
        finally:
            for lane in self.lanes:
                if lane.ahead is not None:
                    lane.ahead.stop()
        per_source = tuple(
            lane.stats.summary(
                frames_read=lane.source.frames_read,
                dropped=lane.source.dropped,
                reconnects=lane.source.reconnects,
                undecodable=lane.source.undecodable,
            )
            for lane in self.lanes
        )
        total = self.stats.summary(
            frames_read=sum(s.frames_read for s in per_source),
            dropped=sum(s.dropped for s in per_source),
            reconnects=sum(s.reconnects for s in per_source),
            undecodable=sum(s.undecodable for s in per_source),
        )
        errors = tuple(
            None if lane.source.error is None else str(lane.source.error) for lane in self.lanes
        )
        return RunResult(total, per_source, errors, reason, error)

    def _loop(self) -> str:
        t_wait = time.perf_counter()
        while True:
            if self.stop.is_set():
                return "interrupted"
            if self.max_frames is not None and self.stats.frames >= self.max_frames:
                return "max-frames"
            active = [lane for lane in self.lanes if not lane.done and lane.ahead is not None]
            # One source: wait for its next frame; several: take whatever is ready.
            timeout = 0.1 if len(active) == 1 else 0.0
            ready: list[tuple[Lane, Staged]] = []
            for lane in active:
                assert lane.ahead is not None
                staged = lane.ahead.read(timeout=timeout)
                if staged is not None:
                    ready.append((lane, staged))
                elif lane.ahead.ended:
                    lane.done = True
                    lane.stats.finish()  # its CPU per frame: up to its own last frame
            if all(lane.done for lane in self.lanes):
                failed = all(lane.source.error is not None for lane in self.lanes)
                return "source-failed" if failed else "end"
            if not ready:
                if not self._idle():
                    return "window-closed"
                if len(active) > 1:
                    time.sleep(0.001)  # no source has a frame: poll again shortly
                continue
            if self.max_frames is not None:
                ready = ready[: self.max_frames - self.stats.frames]
            if not self._step(ready, t_wait):
                return "window-closed"
            t_wait = time.perf_counter()

    def _idle(self) -> bool:
        """Keep the windows responsive while no frame comes; False once one was closed."""
        for lane in self.lanes:
            window = lane.outputs.window
            if window is None:
                continue
            if lane.source.reconnecting and not lane.notice_shown:
                window.show(status_screen("camera lost - reconnecting", window.size))
                lane.notice_shown = True
            if not window.poll():
                return False
        return True

    def _predict(self, image: np.ndarray, boxes: Faces) -> Faces:
        return self.engine.predict(image, boxes=boxes, crops=self._crops)

    def _step(self, ready: list[tuple[Lane, Staged]], t_wait: float) -> bool:
        """Classify the faces of one frame per ready source in one model run; write the
        records and the images. ``t_wait``: when the previous step ended (the loop waited for
        frames since). False when a window was closed."""
        t0 = time.perf_counter()
        own = [0.0] * len(ready)  # classify time of each frame's own work, outside the batch
        plans: list[Plan] = []
        for i, (lane, staged) in enumerate(ready):
            for stats in (lane.stats, self.stats):
                stats.frame_started(t0)
                stats.record("wait", t0 - t_wait)
                stats.record("read", staged.frame.read_s)
            t = time.perf_counter()
            plans.append(_cadence(lane).plan(staged))
            own[i] += time.perf_counter() - t - plans[-1].early_s
        t = time.perf_counter()
        images = [staged.frame.image for _, staged in ready]
        results = self.engine.predict_batch(images, [p.boxes for p in plans], crops=self._crops)
        batch_s = time.perf_counter() - t
        done: list[FrameFaces] = []
        for i, (lane, staged) in enumerate(ready):
            t = time.perf_counter()
            faces = _cadence(lane).settle(staged, plans[i], results[i], self._predict)
            own[i] += time.perf_counter() - t - (faces.early_s - plans[i].early_s)
            done.append(faces)
        shares = _shares([len(p.boxes) for p in plans])
        keep_going = True
        for i, (lane, staged) in enumerate(ready):
            faces = done[i]
            classify_s = own[i] + shares[i] * batch_s
            t1 = time.perf_counter()
            # The tracker compares detected faces only (with the last detection of their track).
            tracked = lane.tracker.update(
                faces.results, faces.track_crops() if lane.tracker.uses_crops else None
            )
            produced = time.time()
            t2 = time.perf_counter()
            if self.sinks:
                record = FrameRecord(
                    lane.source.spec.name, staged.frame.index, produced, tracked, self._emotions
                )
                for sink in self.sinks:
                    sink.write(record)
            keep_going = self._show(lane, staged, tracked, t2) and keep_going
            t3 = time.perf_counter()
            for stats in (lane.stats, self.stats):
                stats.record("classify", classify_s)
                stats.record("infer", classify_s + faces.detect_s)
                stats.record("track", t2 - t1)
                stats.record("output", t3 - t2)
                stats.record("latency", t3 - staged.frame.captured)
                stats.frame_done(t3, len(tracked))
        return keep_going

    def _show(self, lane: Lane, staged: Staged, faces: Faces, now: float) -> bool:
        """The lane's image outputs for one frame; False when its window was closed."""
        out = lane.outputs
        frame = staged.frame
        lane.notice_shown = False
        if out.crops is not None:
            out.crops.write(frame.index, frame.image, faces)
        keep_going = True
        if out.window is not None or out.video is not None:
            fps = lane.rolling.tick(now)
            if out.window is not None and out.kiosk_size is not None:
                canvas = render_kiosk(frame.image, faces, self._emotions, fps, out.kiosk_size)
                keep_going = out.window.show(canvas)
            if out.video is not None or (out.window is not None and out.kiosk_size is None):
                image = frame.image  # owned by this frame: draw in place
                draw_faces(image, faces, self._emotions)
                draw_fps(image, fps)
                if out.video is not None:
                    out.video.write(image)
                if out.window is not None and out.kiosk_size is None:
                    keep_going = out.window.show(image)
        if out.progress is not None:
            out.progress.update(1)
        return keep_going


def _cadence(lane: Lane) -> Cadence:
    if lane.cadence is None:
        raise RuntimeError("the lane belongs to no StreamLoop")
    return lane.cadence


def _shares(faces: Sequence[int]) -> list[float]:
    """Each frame's share of a batch that classified ``faces[i]`` faces of frame ``i``
    (evenly split when there were none)."""
    total = sum(faces)
    if total == 0:
        return [1.0 / len(faces)] * len(faces)
    return [n / total for n in faces]


def progress_bar(total: int | None, enabled: bool) -> tqdm | None:
    """A tqdm bar on stderr (``total`` frames, None: unknown) when ``enabled``, else None."""
    if not enabled:
        return None
    return tqdm(total=total or None, unit="frame", file=sys.stderr, dynamic_ncols=True)
