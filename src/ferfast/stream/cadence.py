"""The detector cadence of one stream: detect on every N-th frame, carry the faces in between.

:class:`DetectAhead` runs the detector on its own thread on the frames it is due on;
:class:`Cadence` decides, frame by frame, at which boxes the faces are classified (detected, or
carried from the last detection), re-detects at once when a carried face is lost, and times the
detector. :class:`~ferfast.stream.pipeline.StreamLoop` keeps one of each per source.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ferfast.faces import Faces

from .sources import Frame, FrameSource, _Mailbox
from .stats import RunStats
from .tracking import appearance, iou

#: Finds the faces of a frame (``Engine.detect``).
DetectFn = Callable[[np.ndarray], Faces]
#: Classifies a frame's faces at the given boxes, with crops (``Engine.predict(crops=True)``).
PredictFn = Callable[[np.ndarray, Faces], Faces]


@dataclass(frozen=True)
class Staged:
    """A frame on its way to classification, with the detector's faces when it ran on it."""

    frame: Frame
    detections: Faces | None  # None: the detector skipped this frame (boxes carried)
    detect_s: float  # seconds the detector took on this frame (0 when skipped)


class DetectAhead:
    """Runs the detector on its own thread, ahead of classification, on every ``every``-th frame.

    Frames come out of :meth:`read` in source order, each with the detector's faces when the
    cadence picked it, else ``detections=None``: the 1st frame received, then every ``every``-th
    counted from ``phase`` (the 1st, ``every+1``-th, ... at phase 0). Lanes of one loop get
    different phases, so that their detector runs, which take turns on one detector, spread
    over the period instead of all falling on the same frame.
    A small bounded queue lets detection of the next frames overlap classification and output
    of this one; a full queue blocks the detector (a live source then drops, as it does when
    inference is behind).
    """

    def __init__(
        self,
        source: FrameSource,
        detect: DetectFn,
        every: int,
        *,
        capacity: int | None = None,
        phase: int = 0,
    ) -> None:
        if every < 1:
            raise ValueError(f"detect every must be >= 1, got {every}")
        self.source = source
        self._detect = detect
        self._every = every
        self._phase = phase % every
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
                if received == 0 or (received + self._phase) % self._every == 0:
                    t0 = time.perf_counter()
                    dets = self._detect(frame.image)
                    spent = time.perf_counter() - t0
                received += 1
                self._box.put(Staged(frame, dets, spent), self._stop)
        except BaseException as exc:  # handed to the reading thread, which raises it
            self.error = exc
        finally:
            self._box.close()


@dataclass(frozen=True)
class Plan:
    """The boxes to classify one frame at (see :meth:`Cadence.plan`)."""

    boxes: Faces
    detected: bool  # the detector found them on this frame (False: carried boxes)
    early_s: float  # seconds of an early re-detect spent here (a carried box left the frame)


@dataclass(frozen=True)
class FrameFaces:
    """One frame's classified faces and the detector time they cost."""

    results: Faces
    detected: bool  # the detector found them on this frame (False: carried boxes)
    detect_s: float  # detector seconds on this frame: on the detector thread plus early_s
    early_s: float  # of which early re-detects, spent on the classifying thread

    def track_crops(self) -> np.ndarray | None:
        """The crops for the tracker's appearance check: those of detected faces only.

        A carried box keeps the detected size, so its crop is framed a little differently; a
        carried face gets its own check against its detection (:meth:`Cadence.settle`).
        """
        if not self.detected or not len(self.results):
            return None
        return self.results.crops


class Cadence:
    """Detect-or-carry for one stream, and the detector's timing.

    On a frame the detector ran on (:class:`DetectAhead`), its faces are classified; on the
    frames in between, the last detection's faces at their carried boxes (moved at their
    measured speed, with their landmarks). A carried face whose crop no longer looks like its
    crop when detected (:func:`appearance` correlation below ``redetect_threshold``: the face
    moved away or another person stands there), or whose box centre left the frame, makes the
    detector run on this frame at once.

    :meth:`detect` is the detector for :class:`DetectAhead` and for early re-detects: it records
    the ``detect`` stage and counts a run in every one of ``stats``. A frame goes through
    :meth:`plan` (which boxes), the caller's model run on them (alone or batched with other
    streams), then :meth:`settle` (the lost check; remembers the detection).
    """

    def __init__(
        self, detect: DetectFn, stats: Sequence[RunStats], redetect_threshold: float
    ) -> None:
        if not 0.0 <= redetect_threshold < 1.0:
            raise ValueError(
                f"redetect_threshold must be in [0, 1) (0 = off), got {redetect_threshold}"
            )
        self._detect = detect
        self.stats = tuple(stats)
        self.redetect_threshold = redetect_threshold
        self._carried: _Carried | None = None  # the last detection's faces, moved along

    def detect(self, image: np.ndarray) -> Faces:
        """Run the detector on ``image``, timed and counted."""
        t0 = time.perf_counter()
        dets = self._detect(image)
        spent = time.perf_counter() - t0
        for stats in self.stats:
            stats.record("detect", spent)
            stats.detected()
        return dets

    def _redetect(self, image: np.ndarray) -> tuple[Faces, float]:
        t0 = time.perf_counter()
        dets = self.detect(image)
        for stats in self.stats:
            stats.redetected()
        return dets, time.perf_counter() - t0

    def plan(self, staged: Staged) -> Plan:
        """The boxes to classify ``staged`` at: detected on it, or carried to it."""
        if staged.detections is not None:
            return Plan(staged.detections, True, 0.0)
        carried = self._carried
        if carried is None or not len(carried.faces):
            return Plan(Faces.empty(), False, 0.0)
        moved = carried.at(staged.frame.index, staged.frame.image.shape)
        if moved is not None:
            return Plan(moved, False, 0.0)
        dets, spent = self._redetect(staged.frame.image)
        return Plan(dets, True, spent)

    def settle(self, staged: Staged, plan: Plan, results: Faces, predict: PredictFn) -> FrameFaces:
        """The frame's faces, given the model's ``results`` at ``plan.boxes``.

        A lost carried face re-detects on this frame and classifies there (``predict``).
        """
        detected, early_s = plan.detected, plan.early_s
        carried = self._carried
        if not detected and carried is not None and len(results):
            if carried.lost(results, self.redetect_threshold):
                dets, spent = self._redetect(staged.frame.image)
                results = predict(staged.frame.image, dets) if len(dets) else dets
                detected, early_s = True, early_s + spent
        if detected:
            self._carried = _Carried.detected(results, staged.frame.index, carried)
        return FrameFaces(results, detected, staged.detect_s + early_s, early_s)


@dataclass(frozen=True)
class _Carried:
    """The faces of the last detection, carried to the frames after it at their own speed.

    Each face moves by its box centre's velocity between the last two detections (matched by
    overlap), which keeps the crops centred on a moving face; size and score stay as detected.
    """

    faces: Faces  # boxes, scores and landmarks as detected
    index: int  # frame index of the detection
    velocity: np.ndarray  # (N, 2) pixels per frame of each face
    anchors: np.ndarray | None  # (N, 36) appearance of each face when detected

    @classmethod
    def detected(cls, results: Faces, index: int, before: _Carried | None) -> _Carried:
        """The faces just detected on frame ``index``; ``before``: the previous detection."""
        faces = Faces(results.boxes, results.scores, results.landmarks)
        velocity = np.zeros((len(faces), 2))
        if before is not None and len(before.faces) and index > before.index:
            gap = index - before.index
            expected = before.faces.boxes.copy()
            expected[:, :2] += before.velocity * gap
            now, then = _centres(faces.boxes), _centres(before.faces.boxes)
            for i, box in enumerate(faces.boxes):
                overlaps = [iou(box, other) for other in expected]
                j = int(np.argmax(overlaps))
                if overlaps[j] >= 0.3:
                    velocity[i] = (now[i] - then[j]) / gap
        return cls(faces, index, velocity, _looks(results))

    def at(self, index: int, shape: tuple[int, ...]) -> Faces | None:
        """The faces moved to frame ``index``; None when one has left the frame (re-detect)."""
        height, width = shape[:2]
        step = self.velocity * (index - self.index)
        boxes = self.faces.boxes.copy()
        boxes[:, :2] += step
        cx, cy = _centres(boxes).T
        if not ((cx >= 0.0) & (cx < width) & (cy >= 0.0) & (cy < height)).all():
            return None
        marks = self.faces.landmarks
        if marks is not None:
            marks = marks + step[:, None, :].astype(np.float32)
        return Faces(boxes, self.faces.scores, marks)

    def lost(self, results: Faces, threshold: float) -> bool:
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


def _centres(boxes: np.ndarray) -> np.ndarray:
    """(N, 2) centres of (N, 4) x, y, w, h boxes."""
    return boxes[:, :2] + boxes[:, 2:] / 2.0


def _looks(results: Faces) -> np.ndarray | None:
    """Appearance descriptors of the results' crops; None without crops."""
    if results.crops is None or not len(results):
        return None
    return appearance(results.crops)
