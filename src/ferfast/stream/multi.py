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
from typing import TYPE_CHECKING

import numpy as np

from ferfast.detect import Detection
from ferfast.outpaths import OutputError
from ferfast.records import FrameRecord
from ferfast.sinks import Sink

from .cadence import Cadence, DetectAhead, FrameFaces, Plan, Staged
from .pipeline import EngineLike
from .sources import FrameSource
from .stats import RunStats, RunSummary
from .tracking import DEFAULT_APPEARANCE_THRESHOLD, DEFAULT_DETECT_EVERY, IouTracker

if TYPE_CHECKING:
    from ferfast.engine import FaceResult


@dataclass
class Lane:
    """One source's state in a :class:`MultiStreamLoop`."""

    source: FrameSource
    tracker: IouTracker
    stats: RunStats = field(default_factory=RunStats)
    ahead: DetectAhead | None = None  # set by the loop
    cadence: Cadence | None = None  # set by the loop
    done: bool = False
    position: int = 0  # 0-based order among the loop's sources (set by the loop)


@dataclass(frozen=True)
class MultiRunResult:
    """Why the loop ended, the totals, and each source's summary and error (None if fine)."""

    summary: RunSummary  # all sources together (frames, faces, fps over the run)
    sources: tuple[RunSummary, ...]
    errors: tuple[str | None, ...]
    reason: str  # "end" | "max-frames" | "interrupted" | "output-failed"
    error: str | None = None  # why an output failed (reason "output-failed")


@dataclass
class MultiStreamLoop:
    """Runs the engine over several started sources until all have ended or it is stopped.

    ``max_frames`` counts processed frames over all sources. Frame records go to ``sinks``,
    each naming its source. A source that ends or gives up reconnecting
    leaves the others running. Each frame's stages are recorded in its lane's stats and in the
    total; the step's one model run is split among its frames by their share of the faces.
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
            raise ValueError("MultiStreamLoop needs at least one source")
        if self.detect_every < 1:
            raise ValueError(f"detect_every must be >= 1, got {self.detect_every}")
        for i, lane in enumerate(self.lanes):
            lane.position = i
            lane.cadence = Cadence(
                self.engine.detect, (lane.stats, self.stats), self.redetect_threshold
            )
        self._emotions = tuple(self.engine.emotions)
        # Crops only when an appearance check reads them (see StreamLoop).
        self._crops = self.redetect_threshold > 0 or any(
            lane.tracker.uses_crops for lane in self.lanes
        )

    def run(self) -> MultiRunResult:
        """Process frames; return the summaries and the reason the loop ended."""
        for lane in self.lanes:
            lane.ahead = DetectAhead(lane.source, _cadence(lane).detect, self.detect_every).start()
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
                undecodable=lane.source.undecodable,
                dropped=lane.source.dropped,
                reconnects=lane.source.reconnects,
            )
            for lane in self.lanes
        )
        total = self.stats.summary(
            frames_read=sum(s.frames_read for s in per_source),
            undecodable=sum(s.undecodable for s in per_source),
            dropped=sum(s.dropped for s in per_source),
            reconnects=sum(s.reconnects for s in per_source),
        )
        errors = tuple(
            None if lane.source.error is None else str(lane.source.error) for lane in self.lanes
        )
        return MultiRunResult(total, per_source, errors, reason, error)

    def _loop(self) -> str:
        t_wait = time.perf_counter()
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
                    lane.stats.finish()  # its CPU per frame: up to its own last frame
            if all(lane.done for lane in self.lanes):
                return "end"
            if not ready:
                time.sleep(0.001)  # no source has a frame: poll again shortly
                continue
            if self.max_frames is not None:
                ready = ready[: self.max_frames - self.stats.frames]
            self._step(ready, t_wait)
            t_wait = time.perf_counter()

    def _predict(self, image: np.ndarray, boxes: Sequence[Detection]) -> list[FaceResult]:
        return self.engine.predict(image, boxes=boxes, crops=self._crops)

    def _step(self, ready: list[tuple[Lane, Staged]], t_wait: float) -> None:
        """Classify the faces of one frame per ready source in one model run; write the records.

        ``t_wait``: when the previous step ended (the loop waited for frames since).
        """
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
        results = self.engine.predict_batch(
            [staged.frame.image for _, staged in ready], [p.boxes for p in plans], crops=self._crops
        )
        batch_s = time.perf_counter() - t
        done: list[FrameFaces] = []
        for i, (lane, staged) in enumerate(ready):
            t = time.perf_counter()
            faces = _cadence(lane).settle(staged, plans[i], results[i], self._predict)
            own[i] += time.perf_counter() - t - (faces.early_s - plans[i].early_s)
            done.append(faces)
        shares = _shares([len(p.boxes) for p in plans])
        for i, (lane, staged) in enumerate(ready):
            faces = done[i]
            classify_s = own[i] + shares[i] * batch_s
            t1 = time.perf_counter()
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
            t3 = time.perf_counter()
            for stats in (lane.stats, self.stats):
                stats.record("classify", classify_s)
                stats.record("infer", classify_s + faces.detect_s)
                stats.record("track", t2 - t1)
                stats.record("output", t3 - t2)
                stats.record("latency", t3 - staged.frame.captured)
                stats.frame_done(t3, len(tracked))


def _cadence(lane: Lane) -> Cadence:
    if lane.cadence is None:
        raise RuntimeError("the lane belongs to no MultiStreamLoop")
    return lane.cadence


def _shares(faces: Sequence[int]) -> list[float]:
    """Each frame's share of a batch that classified ``faces[i]`` faces of frame ``i``
    (evenly split when there were none)."""
    total = sum(faces)
    if total == 0:
        return [1.0 / len(faces)] * len(faces)
    return [n / total for n in faces]
