"""IoU tracking of faces across frames, with an appearance check, and EMA smoothing of their
emotion probabilities."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ferfast.contract import SIDE
from ferfast.faces import Face, Faces, as_faces


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


APPEARANCE_GRID = 6  # descriptor side: 8x8-pixel blocks of the 48x48 crop
DEFAULT_APPEARANCE_THRESHOLD = 0.7  # measured: tools/measure_appearance.py, docs/stream.md
#: The stream loop's detector cadence: every N-th frame, boxes carried in between. 5: fewer
#: detector runs add little speed on 2 cores, and a new face waits at most 4 frames (0.13 s at
#: 30 fps); measured in docs/stream.md.
DEFAULT_DETECT_EVERY = 5


def appearance(crops: np.ndarray) -> np.ndarray:
    """Appearance descriptors of 48x48 gray face crops (the model input, any scale and bias).

    Each crop is averaged over 8x8-pixel blocks to 6x6 (the layout of hair, face and
    background; tolerant of the detector's box jitter in position and scale, where finer grids
    are not), then made zero-mean and unit-norm, so the dot product of two descriptors is the
    normalised correlation of the crops (invariant to brightness and contrast). Returns float32
    (N, 36); a flat crop (no contrast) gives a zero row.

    Args:
        crops: (N, 48, 48) or (N, 1, 48, 48) array.
    """
    c = np.asarray(crops, dtype=np.float32)
    if c.ndim == 4 and c.shape[1] == 1:
        c = c[:, 0]
    if c.ndim != 3 or c.shape[1:] != (SIDE, SIDE):
        raise ValueError(
            f"crops must have shape (N, {SIDE}, {SIDE}) or (N, 1, {SIDE}, {SIDE}), got {c.shape}"
        )
    n, g = c.shape[0], APPEARANCE_GRID
    # Block means as two small matrix products (rows, then columns): for the one or two crops of
    # a stream frame this is cheaper than a reshape-and-mean.
    v = np.matmul(np.matmul(_BLOCKS, c), _BLOCKS.T).reshape(n, g * g)
    v -= v.mean(axis=1, keepdims=True)
    norm = np.sqrt(np.einsum("ij,ij->i", v, v))[:, None]
    out: np.ndarray = np.divide(v, norm, out=np.zeros_like(v), where=norm > 1e-6)
    return out


#: (6, 48): row i averages pixels 8i .. 8i+7 (the appearance grid's blocks along one side).
_BLOCKS = np.kron(
    np.eye(APPEARANCE_GRID, dtype=np.float32),
    np.full((1, SIDE // APPEARANCE_GRID), APPEARANCE_GRID / SIDE, np.float32),
)


@dataclass
class _Track:
    id: int
    box: tuple[float, float, float, float]
    probs: np.ndarray
    look: np.ndarray | None  # the track's appearance (see _blend), if known
    missed: int = 0


class IouTracker:
    """Greedy IoU matching of detections to tracks, with exponential smoothing of probabilities.

    ``smoothing`` is the weight of the newest observation (``p = a * new + (1 - a) * old``);
    1.0 switches smoothing off. With ``enabled=False`` every detection gets a fresh id and its raw
    probabilities (no tracking, no smoothing). A track survives ``max_missed`` processed frames
    without a matching detection.

    When ``update`` gets the faces' crops, a detection also needs an appearance similarity
    (:func:`appearance` correlation with the track's appearance: a moving average of its
    matched crops' descriptors in which the newest weighs 1/2) of at least
    ``appearance_threshold`` to keep the track's id: a hard cut to another person at the same
    place starts a new id (and fresh smoothing). 0 switches the check off.
    """

    def __init__(
        self,
        emotions: Sequence[str],
        *,
        iou_threshold: float = 0.3,
        smoothing: float = 0.5,
        max_missed: int = 10,
        enabled: bool = True,
        appearance_threshold: float = DEFAULT_APPEARANCE_THRESHOLD,
    ) -> None:
        if not emotions:
            raise ValueError("emotions must not be empty")
        if not 0.0 < iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
        if not 0.0 < smoothing <= 1.0:
            raise ValueError(f"smoothing must be in (0, 1] (1 = off), got {smoothing}")
        if max_missed < 0:
            raise ValueError(f"max_missed must be >= 0, got {max_missed}")
        if not 0.0 <= appearance_threshold < 1.0:
            raise ValueError(
                f"appearance_threshold must be in [0, 1) (0 = off), got {appearance_threshold}"
            )
        self.emotions = tuple(emotions)
        self.iou_threshold = iou_threshold
        self.smoothing = smoothing
        self.max_missed = max_missed
        self.enabled = enabled
        self.appearance_threshold = appearance_threshold
        self._tracks: list[_Track] = []
        self._next_id = 1

    def reset(self) -> None:
        """Forget all tracks (ids keep increasing)."""
        self._tracks.clear()

    @property
    def uses_crops(self) -> bool:
        """Whether :meth:`update` makes use of the faces' crops (tracking on, check on)."""
        return self.enabled and self.appearance_threshold > 0

    def update(self, faces: Faces | Sequence[Face], crops: np.ndarray | None = None) -> Faces:
        """Match this frame's faces to the tracks; the faces with their ``track_ids`` and the
        tracks' smoothed ``probs`` (so each face's emotion follows the smoothing).

        ``faces``: classified :class:`Faces` (or a list of :class:`Face`). ``crops``: optional
        (N, 48, 48) or (N, 1, 48, 48) gray crops of the faces (the model input); with them the
        appearance check applies (see the class docstring).
        """
        faces = as_faces(faces, self.emotions)
        n = len(faces)
        if n == 0:
            probs = np.empty((0, len(self.emotions)), np.float32)
        elif faces.probs is None:
            raise ValueError("faces must be classified (probs) to be tracked")
        else:
            probs = faces.probs
        if probs.shape[1] != len(self.emotions):
            raise ValueError(
                f"faces have {probs.shape[1]} probabilities, tracker expects {len(self.emotions)}"
            )
        if not self.enabled:
            ids = np.array([self._new_id() for _ in range(n)], np.int64)
            return faces.replace(probs=probs, track_ids=ids, emotions=self.emotions)
        looks: list[np.ndarray | None] = [None] * n
        if crops is not None and self.appearance_threshold > 0:
            desc = appearance(crops)
            if len(desc) != n:
                raise ValueError(f"got {len(desc)} crops for {n} faces")
            # A flat crop says nothing about who it is: IoU alone decides for it.
            looks = [d if d.any() else None for d in desc]

        boxes = [_box(b) for b in faces.boxes]
        pairs = []
        for ti, track in enumerate(self._tracks):
            for di, box in enumerate(boxes):
                overlap = iou(track.box, box)
                if overlap < self.iou_threshold:
                    continue
                look = looks[di]
                if look is not None and track.look is not None:
                    if float(look @ track.look) < self.appearance_threshold:
                        continue
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
        out_probs = np.empty((n, len(self.emotions)), np.float32)
        out_ids = np.empty(n, np.int64)
        kept = []
        for di in range(n):
            if di in match:
                track = self._tracks[match[di]]
                track.probs = a * probs[di] + (1.0 - a) * track.probs
                track.box = boxes[di]
                look = looks[di]
                if look is not None:
                    track.look = _blend(track.look, look)
                track.missed = 0
            else:
                track = _Track(self._new_id(), boxes[di], probs[di].copy(), looks[di])
            kept.append(track)
            out_probs[di] = track.probs
            out_ids[di] = track.id
        for ti, track in enumerate(self._tracks):
            if ti not in used_tracks:
                track.missed += 1
                if track.missed <= self.max_missed:
                    kept.append(track)
        self._tracks = kept
        return faces.replace(probs=out_probs, track_ids=out_ids, emotions=self.emotions)

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1


def _blend(old: np.ndarray | None, new: np.ndarray) -> np.ndarray:
    """A track's appearance after a match: the mean of the old appearance and the new crop's
    descriptor (each weighs 1/2, an exponential moving average), renormalised to unit length;
    steadier than the last crop alone under the detector's box jitter."""
    if old is None:
        return new
    mix = old + new
    norm = float(np.linalg.norm(mix))
    return mix / norm if norm > 1e-6 else new


def _box(box: Sequence[float]) -> tuple[float, float, float, float]:
    x, y, w, h = (float(v) for v in box)
    return (x, y, w, h)
