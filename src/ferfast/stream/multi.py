"""Several sources in one process: per-source detection and tracking, one model run per step.

Each source keeps its own capture thread, detector thread (:class:`DetectAhead`, the same
cadence as a single stream), carried faces and tracker. A step takes the frame each source has
ready (a source with none, e.g. one that is reconnecting, is skipped, never waited for) and
classifies the faces of all of them in one ``Engine.predict_batch`` call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .events import JsonlWriter
from .pipeline import DetectAhead, Staged, _Carried
from .sources import FrameSource
from .stats import RunStats, RunSummary
from .tracking import DEFAULT_APPEARANCE_THRESHOLD, DEFAULT_DETECT_EVERY, IouTracker


@dataclass
class Lane:
    """One source's state in a :class:`MultiStreamLoop`."""

    source: FrameSource
    tracker: IouTracker
    stats: RunStats = field(default_factory=RunStats)
    ahead: DetectAhead | None = None
    carried: _Carried | None = None
    done: bool = False
    position: int = 0  # 0-based order among the loop's sources (set by the loop)


@dataclass(frozen=True)
class MultiRunResult:
    """Why the loop ended, the totals, and each source's summary and error (None if fine)."""

    summary: RunSummary  # all sources together (frames, faces, fps over the run)
    sources: tuple[RunSummary, ...]
    errors: tuple[str | None, ...]
    reason: str  # "end" | "max-frames" | "interrupted"


@dataclass
class MultiStreamLoop:
    """Runs the engine over several started sources until all have ended or it is stopped.

    ``max_frames`` counts processed frames over all sources. Events go to ``jsonl`` with a
    ``"source"`` field (the lane's position). A source that ends or gives up reconnecting
    leaves the others running.
    """

    engine: Any
    lanes: Sequence[Lane]
    jsonl: JsonlWriter | None = None
    max_frames: int | None = None
    stats: RunStats = field(default_factory=RunStats)
    stop: threading.Event = field(default_factory=threading.Event)
    detect_every: int = DEFAULT_DETECT_EVERY
    redetect_threshold: float = DEFAULT_APPEARANCE_THRESHOLD

    def __post_init__(self) -> None:
        if not self.lanes:
            raise ValueError("MultiStreamLoop needs at least one source")
        if self.detect_every < 1:
            raise ValueError(f"detect_every must be >= 1, got {self.detect_every}")
        for i, lane in enumerate(self.lanes):
            lane.position = i

    def run(self) -> MultiRunResult:
        """Process frames; return the summaries and the reason the loop ended."""
        for lane in self.lanes:
            lane.ahead = DetectAhead(
                lane.source, lambda image, lane=lane: self._detect(lane, image), self.detect_every
            ).start()
        try:
            reason = self._loop()
        finally:
            for lane in self.lanes:
                if lane.ahead is not None:
                    lane.ahead.stop()
        per_source = tuple(
            lane.stats.summary(
                frames_read=lane.source.frames_read,
                dropped=lane.source.dropped,
                reconnects=lane.source.reconnects,
            )
            for lane in self.lanes
        )
        total = self.stats.summary(
            frames_read=sum(s.frames_read for s in per_source),
            dropped=sum(s.dropped for s in per_source),
            reconnects=sum(s.reconnects for s in per_source),
        )
        errors = tuple(
            None if lane.source.error is None else str(lane.source.error) for lane in self.lanes
        )
        return MultiRunResult(total, per_source, errors, reason)

    def _detect(self, lane: Lane, image: Any) -> list[Any]:
        t0 = time.perf_counter()
        dets: list[Any] = list(self.engine.detect(image))
        spent = time.perf_counter() - t0
        for stats in (lane.stats, self.stats):
            stats.record("detect", spent)
            stats.detected()
        return dets

    def _loop(self) -> str:
        while True:
            if self.stop.is_set():
                return "interrupted"
            if self.max_frames is not None and self.stats.frames >= self.max_frames:
                return "max-frames"
            ready: list[tuple[Lane, Staged]] = []
            for lane in self.lanes:
                if lane.done or lane.ahead is None:
                    continue
                staged = lane.ahead.read(timeout=0.0)
                if staged is not None:
                    ready.append((lane, staged))
                elif lane.ahead.ended:
                    lane.done = True
            if all(lane.done for lane in self.lanes):
                return "end"
            if not ready:
                time.sleep(0.001)  # no source has a frame: poll again shortly
                continue
            if self.max_frames is not None:
                ready = ready[: self.max_frames - self.stats.frames]
            self._step(ready)

    def _step(self, ready: list[tuple[Lane, Staged]]) -> None:
        """Classify the faces of one frame per ready source in one model run; emit events."""
        t0 = time.perf_counter()
        for lane, staged in ready:
            for stats in (lane.stats, self.stats):
                stats.frame_started(t0)
                stats.record("read", staged.frame.read_s)
        boxes: list[list[Any]] = []
        detected: list[bool] = []
        for lane, staged in ready:
            faces, fresh = self._faces(lane, staged)
            boxes.append(faces)
            detected.append(fresh)
        images = [staged.frame.image for _, staged in ready]
        results = self.engine.predict_batch(images, boxes, crops=True)
        for i, (lane, staged) in enumerate(ready):
            carried = lane.carried
            if not detected[i] and carried is not None and results[i]:
                if carried.lost(results[i], self.redetect_threshold):
                    dets = self._detect(lane, staged.frame.image)
                    lane.stats.redetected()
                    self.stats.redetected()
                    results[i] = self.engine.predict(staged.frame.image, boxes=dets, crops=True)
                    detected[i] = True
            if detected[i]:
                lane.carried = _Carried.detected(results[i], staged.frame.index, carried)
        t1 = time.perf_counter()
        for i, (lane, staged) in enumerate(ready):
            crops = None
            if lane.tracker.uses_crops and results[i] and detected[i]:
                crops = [r.crop for r in results[i]]
            faces = lane.tracker.update(results[i], None if crops is None else np.stack(crops))
            if self.jsonl is not None:
                self.jsonl.write(staged.frame.index, time.time(), faces, source=lane.position)
            t2 = time.perf_counter()
            for stats in (lane.stats, self.stats):
                stats.record("classify", t1 - t0)
                stats.record("latency", t2 - staged.frame.captured)
                stats.frame_done(t2, len(faces))

    def _faces(self, lane: Lane, staged: Staged) -> tuple[list[Any], bool]:
        """The boxes to classify on this frame and whether the detector found them on it."""
        if staged.detections is not None:
            return list(staged.detections), True
        carried = lane.carried
        if carried is None or not carried.faces:
            return [], False
        moved = carried.at(staged.frame.index, staged.frame.image.shape)
        if moved is not None:
            return moved, False
        lane.stats.redetected()
        self.stats.redetected()
        return self._detect(lane, staged.frame.image), True
