"""IoU tracking of faces across frames and EMA smoothing of their emotion probabilities."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np


class FaceLike(Protocol):
    """What the tracker needs from a detection (``ferfast.FaceResult`` satisfies it)."""

    box: tuple[float, float, float, float]
    score: float
    probs: np.ndarray


@dataclass(frozen=True)
class TrackedFace:
    """A face with a stable id and smoothed probabilities."""

    id: int
    box: tuple[float, float, float, float]  # x, y, w, h of the current detection
    score: float  # detector score of the current detection
    probs: np.ndarray  # (K,) smoothed probabilities (raw ones when smoothing is off)
    emotion: str  # argmax of ``probs``
    age: int  # frames this track has been matched, including this one

    @property
    def confidence(self) -> float:
        """Probability of :attr:`emotion`."""
        return float(self.probs.max())


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax, ay, aw, ah = (float(v) for v in a)
    bx, by, bw, bh = (float(v) for v in b)
    iw = min(ax + aw, bx + bw) - max(ax, bx)
    ih = min(ay + ah, by + bh) - max(ay, by)
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


@dataclass
class _Track:
    id: int
    box: tuple[float, float, float, float]
    probs: np.ndarray
    age: int = 1
    missed: int = 0


class IouTracker:
    """Greedy IoU matching of detections to tracks, with exponential smoothing of probabilities.

    ``smoothing`` is the weight of the newest observation (``p = a * new + (1 - a) * old``);
    1.0 switches smoothing off. With ``enabled=False`` every detection gets a fresh id and its raw
    probabilities (no tracking, no smoothing). A track survives ``max_missed`` processed frames
    without a matching detection.
    """

    def __init__(
        self,
        emotions: Sequence[str],
        *,
        iou_threshold: float = 0.3,
        smoothing: float = 0.5,
        max_missed: int = 10,
        enabled: bool = True,
    ) -> None:
        if not emotions:
            raise ValueError("emotions must not be empty")
        if not 0.0 < iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
        if not 0.0 < smoothing <= 1.0:
            raise ValueError(f"smoothing must be in (0, 1] (1 = off), got {smoothing}")
        if max_missed < 0:
            raise ValueError(f"max_missed must be >= 0, got {max_missed}")
        self.emotions = tuple(emotions)
        self.iou_threshold = iou_threshold
        self.smoothing = smoothing
        self.max_missed = max_missed
        self.enabled = enabled
        self._tracks: list[_Track] = []
        self._next_id = 1

    def reset(self) -> None:
        """Forget all tracks (ids keep increasing)."""
        self._tracks.clear()

    def update(self, detections: Sequence[FaceLike]) -> list[TrackedFace]:
        """Match this frame's detections; one :class:`TrackedFace` per detection, in order."""
        probs = [self._check(d) for d in detections]
        if not self.enabled:
            out = []
            for det, p in zip(detections, probs):
                out.append(self._emit(_Track(self._new_id(), _box(det.box), p), det.score))
            return out

        pairs = []
        for ti, track in enumerate(self._tracks):
            for di, det in enumerate(detections):
                overlap = iou(track.box, det.box)
                if overlap >= self.iou_threshold:
                    pairs.append((overlap, ti, di))
        pairs.sort(key=lambda item: -item[0])
        match: dict[int, int] = {}
        used_tracks: set[int] = set()
        for _, ti, di in pairs:
            if ti in used_tracks or di in match:
                continue
            used_tracks.add(ti)
            match[di] = ti

        a = self.smoothing
        out = []
        kept = []
        for di, det in enumerate(detections):
            if di in match:
                track = self._tracks[match[di]]
                track.probs = a * probs[di] + (1.0 - a) * track.probs
                track.box = _box(det.box)
                track.age += 1
                track.missed = 0
            else:
                track = _Track(self._new_id(), _box(det.box), probs[di])
            kept.append(track)
            out.append(self._emit(track, det.score))
        for ti, track in enumerate(self._tracks):
            if ti not in used_tracks:
                track.missed += 1
                if track.missed <= self.max_missed:
                    kept.append(track)
        self._tracks = kept
        return out

    def _check(self, det: FaceLike) -> np.ndarray:
        p = np.asarray(det.probs, dtype=np.float32).reshape(-1)
        if p.shape[0] != len(self.emotions):
            raise ValueError(
                f"detection has {p.shape[0]} probabilities, tracker expects {len(self.emotions)}"
            )
        if len(det.box) != 4:
            raise ValueError(f"box must be (x, y, w, h), got {det.box!r}")
        return p

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def _emit(self, track: _Track, score: float) -> TrackedFace:
        p = track.probs.astype(np.float32, copy=True)
        return TrackedFace(
            id=track.id,
            box=track.box,
            score=float(score),
            probs=p,
            emotion=self.emotions[int(np.argmax(p))],
            age=track.age,
        )


def _box(box: Sequence[float]) -> tuple[float, float, float, float]:
    x, y, w, h = (float(v) for v in box)
    return (x, y, w, h)
