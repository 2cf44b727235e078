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

from ferfast.detect import Detection

from .annotate import draw_faces, draw_fps
from .crops import CropWriter
from .events import JsonlWriter
from .kiosk import Window, render_kiosk, status_screen
from .recorder import VideoRecorder
from .sources import Frame, FrameSource, _Mailbox
from .stats import RunStats, RunSummary
from .tracking import (
    DEFAULT_APPEARANCE_THRESHOLD,
    DEFAULT_DETECT_EVERY,
    IouTracker,
    appearance,
    iou,
)

log = logging.getLogger("ferfast.stream")


class EngineLike(Protocol):
    """What the loop needs from ``ferfast.Engine``."""

    emotions: tuple[str, ...]

    def detect(self, frame: np.ndarray) -> list[Any]: ...

    def predict(
        self, frame: np.ndarray, boxes: Any = None, *, crops: bool = False
    ) -> list[Any]: ...


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


@dataclass(frozen=True)
class Staged:
    """A frame on its way to classification, with the detector's faces when it ran on it."""

    frame: Frame
    detections: list[Any] | None  # None: the detector skipped this frame (boxes are carried)
    detect_s: float  # seconds the detector took on this frame (0 when skipped)


class DetectAhead:
    """Runs the detector on its own thread, ahead of classification, on every ``every``-th frame.

    Frames come out of :meth:`read` in source order, each with the detector's faces when the
    cadence picked it (the 1st, ``every+1``-th, ... frame received), else ``detections=None``.
    A small bounded queue lets detection of the next frames overlap classification and output
    of this one; a full queue blocks the detector (a live source then drops, as it does when
    inference is behind).
    """

    def __init__(
        self, source: FrameSource, detect: Any, every: int, *, capacity: int | None = None
    ) -> None:
        if every < 1:
            raise ValueError(f"detect every must be >= 1, got {every}")
        self.source = source
        self._detect = detect
        self._every = every
        # Room for two cadence periods: the detector works on the next period's first frame
        # while the loop classifies this period's frames.
        self._box: _Mailbox[Staged] = _Mailbox(capacity or 2 * every + 2, drop=False)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None  # raised by the detector; re-raised by read

    def start(self) -> DetectAhead:
        """Start the detector thread."""
        self._thread = threading.Thread(target=self._run, name="ferfast-detect", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the detector thread (frames still queued are discarded)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)
        self._box.close()

    @property
    def ended(self) -> bool:
        """True once the source has ended and every queued frame has been read."""
        return self._box.drained

    def read(self, timeout: float = 0.1) -> Staged | None:
        """The next frame in order, or None when none came within ``timeout``."""
        item = self._box.get(timeout)
        if item is None and self.error is not None and self._box.drained:
            raise self.error
        return item

    def _run(self) -> None:
        received = 0
        try:
            while not self._stop.is_set():
                frame = self.source.read(timeout=0.1)
                if frame is None:
                    if self.source.ended:
                        return
                    continue
                dets, spent = None, 0.0
                if received % self._every == 0:
                    t0 = time.perf_counter()
                    dets = list(self._detect(frame.image))
                    spent = time.perf_counter() - t0
                received += 1
                self._box.put(Staged(frame, dets, spent), self._stop)
        except BaseException as exc:  # handed to the reading thread, which raises it
            self.error = exc
        finally:
            self._box.close()


@dataclass
class StreamLoop:
    """Runs the engine over a started :class:`FrameSource` until it ends or is stopped.

    The detector runs on every ``detect_every``-th frame on a thread of its own
    (:class:`DetectAhead`); on the frames in between, the last detection's faces are classified
    at their carried boxes (moved at their measured speed, with their landmarks). A carried face
    whose crop no longer looks like its crop when detected (:func:`appearance` correlation below
    ``redetect_threshold``: the face moved away or another person stands there), or whose box
    centre left the frame, makes the detector run on this frame at once. Frames come out in
    source order.
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
        if not 0.0 <= self.redetect_threshold < 1.0:
            raise ValueError(
                f"redetect_threshold must be in [0, 1) (0 = off), got {self.redetect_threshold}"
            )
        self._carried: _Carried | None = None  # the last detection's faces, moved along

    def run(self) -> RunResult:
        """Process frames; return the summary and the reason the loop ended."""
        ahead = DetectAhead(self.source, self._timed_detect, self.detect_every).start()
        try:
            reason = self._loop(ahead)
        finally:
            ahead.stop()
        error = str(self.source.error) if reason == "source-failed" else None
        summary = self.stats.summary(
            frames_read=self.source.frames_read,
            dropped=self.source.dropped,
            reconnects=self.source.reconnects,
        )
        return RunResult(summary, reason, error)

    def _timed_detect(self, image: np.ndarray) -> list[Any]:
        t0 = time.perf_counter()
        dets = self.engine.detect(image)
        self.stats.record("detect", time.perf_counter() - t0)
        self.stats.detected()
        return dets

    def _loop(self, ahead: DetectAhead) -> str:
        emotions: Sequence[str] = tuple(self.engine.emotions)
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

    def _classify(self, staged: Staged) -> tuple[list[Any], float, bool]:
        """This frame's results (with crops), the detector time spent on it, and whether the
        detector found them on this frame (False: carried boxes)."""
        image = staged.frame.image
        spent = staged.detect_s
        dets = staged.detections
        carried = self._carried
        if dets is None:
            if carried is None or not carried.faces:
                return [], spent, False
            moved = carried.at(staged.frame.index, image.shape)
            if moved is not None:
                results = self.engine.predict(image, boxes=moved, crops=True)
                if not carried.lost(results, self.redetect_threshold):
                    return results, spent, False
            t0 = time.perf_counter()
            dets = self._timed_detect(image)
            self.stats.redetected()
            spent += time.perf_counter() - t0
        results = self.engine.predict(image, boxes=dets, crops=True) if dets else []
        self._carried = _Carried.detected(results, staged.frame.index, carried)
        return results, spent, True

    def _process(self, staged: Staged, emotions: Sequence[str], rolling: _RollingFps) -> bool:
        frame = staged.frame
        t0 = time.perf_counter()
        results, detect_s, detected = self._classify(staged)
        t1 = time.perf_counter()
        crops = None
        # The tracker compares detected faces only (with the last detection of their track): a
        # carried box keeps the detected size, so its crop is framed a little differently, and
        # carried faces get their own check against their detection (_Carried.lost).
        if self.tracker.uses_crops and results and detected:
            crops = np.stack([r.crop for r in results])
        faces = self.tracker.update(results, crops)
        produced = time.time()
        t2 = time.perf_counter()
        classify_s = t1 - t0 - (detect_s - staged.detect_s)
        self.stats.record("classify", classify_s)
        self.stats.record("infer", classify_s + detect_s)
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


@dataclass(frozen=True)
class _Carried:
    """The faces of the last detection, carried to the frames after it at their own speed.

    Each face moves by its box centre's velocity between the last two detections (matched by
    overlap), which keeps the crops centred on a moving face; size and score stay as detected.
    """

    faces: list[Detection]
    index: int  # frame index of the detection
    velocity: np.ndarray  # (N, 2) pixels per frame of each face
    anchors: np.ndarray | None  # (N, 36) appearance of each face when detected

    @classmethod
    def detected(cls, results: Sequence[Any], index: int, before: _Carried | None) -> _Carried:
        """The faces just detected on frame ``index``; ``before``: the previous detection."""
        faces = [Detection(r.box, r.score, getattr(r, "landmarks", None)) for r in results]
        velocity = np.zeros((len(faces), 2))
        if before is not None and before.faces and index > before.index:
            gap = index - before.index
            expected = [
                _shift(f.box, v * gap) for f, v in zip(before.faces, before.velocity, strict=True)
            ]
            for i, face in enumerate(faces):
                overlaps = [iou(face.box, box) for box in expected]
                j = int(np.argmax(overlaps))
                if overlaps[j] >= 0.3:
                    velocity[i] = (_centre(face.box) - _centre(before.faces[j].box)) / gap
        return cls(faces, index, velocity, _looks(results))

    def at(self, index: int, shape: tuple[int, ...]) -> list[Detection] | None:
        """The faces moved to frame ``index``; None when one has left the frame (re-detect)."""
        height, width = shape[:2]
        out = []
        for face, v in zip(self.faces, self.velocity, strict=True):
            step = v * (index - self.index)
            box = _shift(face.box, step)
            cx, cy = _centre(box)
            if not (0.0 <= cx < width and 0.0 <= cy < height):
                return None
            marks = None if face.landmarks is None else face.landmarks + step.astype(np.float32)
            out.append(Detection(box, face.score, marks))
        return out

    def lost(self, results: Sequence[Any], threshold: float) -> bool:
        """Whether a carried face no longer looks like it did when it was detected."""
        if threshold <= 0 or self.anchors is None:
            return False
        now = _looks(results)
        if now is None or len(now) != len(self.anchors):
            return False
        sim = np.einsum("ij,ij->i", now, self.anchors)
        # A flat crop (a zero descriptor) says nothing about who is there: never a reason.
        flat = ~(now.any(axis=1) & self.anchors.any(axis=1))
        return bool(np.any((sim < threshold) & ~flat))


def _centre(box: Sequence[float]) -> np.ndarray:
    return np.array([box[0] + box[2] / 2.0, box[1] + box[3] / 2.0])


def _shift(box: Sequence[float], step: np.ndarray) -> tuple[float, float, float, float]:
    return (float(box[0] + step[0]), float(box[1] + step[1]), float(box[2]), float(box[3]))


def _looks(results: Sequence[Any]) -> np.ndarray | None:
    """Appearance descriptors of the results' crops; None when some result has no crop."""
    crops = [getattr(r, "crop", None) for r in results]
    if not crops or any(c is None for c in crops):
        return None
    return appearance(np.stack([c for c in crops if c is not None]))


def progress_bar(total: int | None, enabled: bool) -> Any:
    """A tqdm bar on stderr when ``enabled`` and tqdm is installed, else None."""
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total or None, unit="frame", file=sys.stderr, dynamic_ncols=True)
