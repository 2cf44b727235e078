"""The stream loop: frames from a source -> engine -> tracker -> events / video / window."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ferfast.preprocess import preprocess

from .annotate import draw_faces, draw_fps
from .crops import CropWriter
from .events import JsonlWriter
from .kiosk import Window, render_kiosk, status_screen
from .recorder import VideoRecorder
from .sources import Frame, FrameSource
from .stats import RunStats, RunSummary
from .tracking import IouTracker

log = logging.getLogger("ferfast.stream")


class EngineLike(Protocol):
    """What the loop needs from ``ferfast.Engine``."""

    emotions: tuple[str, ...]

    def predict(self, frame: np.ndarray, boxes: Any = None) -> list[Any]: ...


@dataclass
class Outputs:
    """Where results go; every member is optional."""

    jsonl: JsonlWriter | None = None
    video: VideoRecorder | None = None
    crops: CropWriter | None = None
    window: Window | None = None
    kiosk_size: tuple[int, int] | None = None  # set for the fullscreen kiosk view
    progress: Any = None  # a tqdm bar, or None

    def close(self) -> None:
        """Close everything that was opened (safe to call more than once)."""
        for item in (self.jsonl, self.video, self.window, self.progress):
            if item is not None:
                item.close()


@dataclass
class RunResult:
    """Why the loop ended and what it did."""

    summary: RunSummary
    reason: str  # "end" | "max-frames" | "interrupted" | "window-closed" | "source-failed"
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


class _TimedDetector:
    """Wraps an engine's detector to time ``detect`` (other attributes pass through)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.last_s: float | None = None

    def detect(self, frame: np.ndarray) -> Any:
        t0 = time.perf_counter()
        try:
            return self._inner.detect(frame)
        finally:
            self.last_s = time.perf_counter() - t0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@dataclass
class StreamLoop:
    """Runs the engine over a started :class:`FrameSource` until it ends or is stopped."""

    engine: EngineLike
    source: FrameSource
    tracker: IouTracker
    outputs: Outputs = field(default_factory=Outputs)
    max_frames: int | None = None
    stats: RunStats = field(default_factory=RunStats)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> RunResult:
        """Process frames; return the summary and the reason the loop ended."""
        # Time detection separately when the engine exposes its detector (ferfast.Engine does).
        inner = getattr(self.engine, "detector", None)
        timed = None
        if callable(getattr(inner, "detect", None)):
            timed = _TimedDetector(inner)
            self.engine.detector = timed  # type: ignore[attr-defined]
        try:
            reason = self._loop(timed)
        finally:
            if timed is not None:
                self.engine.detector = inner  # type: ignore[attr-defined]
        error = str(self.source.error) if reason == "source-failed" else None
        summary = self.stats.summary(
            frames_read=self.source.frames_read,
            dropped=self.source.dropped,
            reconnects=self.source.reconnects,
        )
        return RunResult(summary, reason, error)

    def _loop(self, timed: _TimedDetector | None) -> str:
        emotions: Sequence[str] = tuple(self.engine.emotions)
        rolling = _RollingFps()
        t_wait = time.perf_counter()
        notice_shown = False
        while True:
            if self.stop.is_set():
                return "interrupted"
            if self.max_frames is not None and self.stats.frames >= self.max_frames:
                return "max-frames"
            frame = self.source.read(timeout=0.1)
            if frame is None:
                if self.source.ended:
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
            self.stats.record("read", frame.read_s)
            if not self._process(frame, emotions, rolling, timed):
                return "window-closed"
            t_wait = time.perf_counter()

    def _process(
        self,
        frame: Frame,
        emotions: Sequence[str],
        rolling: _RollingFps,
        timed: _TimedDetector | None,
    ) -> bool:
        t0 = time.perf_counter()
        if timed is not None:
            timed.last_s = None
        results = self.engine.predict(frame.image)
        t1 = time.perf_counter()
        crops = self._crops(frame.image, results) if self.tracker.uses_crops else None
        faces = self.tracker.update(results, crops)
        produced = time.time()
        t2 = time.perf_counter()
        self.stats.record("infer", t1 - t0)
        if timed is not None and timed.last_s is not None:
            self.stats.record("detect", timed.last_s)
            self.stats.record("classify", max(t1 - t0 - timed.last_s, 0.0))
        self.stats.record("track", t2 - t1)

        out = self.outputs
        if out.jsonl is not None:
            out.jsonl.write(frame.index, produced, faces)
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

    def _crops(self, image: np.ndarray, results: Sequence[Any]) -> np.ndarray | None:
        """The faces' 48x48 model-input crops for the tracker's appearance check.

        Recomputed from the results' boxes and landmarks with the engine's framing (the engine
        keeps its input batch to itself); None for an engine without a ``framing``.
        """
        framing = getattr(self.engine, "framing", None)
        if framing is None or not results:
            return None
        boxes = np.array([r.box for r in results], dtype=np.float64)
        marks = [r.landmarks for r in results if getattr(r, "landmarks", None) is not None]
        landmarks = np.stack(marks) if len(marks) == len(results) else None
        return preprocess(image, boxes, landmarks=landmarks, framing=framing)[:, 0]


def progress_bar(total: int | None, enabled: bool) -> Any:
    """A tqdm bar on stderr when ``enabled`` and tqdm is installed, else None."""
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total or None, unit="frame", file=sys.stderr, dynamic_ncols=True)
