"""Faces: the one form a frame's faces take from the detector to the sinks.

:class:`Faces` is columnar, as supervision's ``Detections``: row ``i`` of every array is face
``i``. Detectors return it with boxes, scores and landmarks; the Engine adds the emotion
probabilities (and, when asked, the model-input crops); the stream tracker adds track ids and
smoothed probabilities; sinks and drawing read it. It is checked once, when made. Indexing with
an int gives a :class:`Face`, a per-face view (``face.box``, ``face.emotion``,
``face.confidence``, ``face.as_dict()``); indexing with a slice, a boolean mask or an index
array gives the selected faces as :class:`Faces`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from ferfast.contract import SIDE
from ferfast.labels import EMOTIONS
from ferfast.records import face_record

__all__ = ["Face", "FaceResult", "Faces", "as_faces"]

_NO_PROBS = np.zeros(0, np.float32)
_NO_PROBS.flags.writeable = False


@dataclass(frozen=True, eq=False)
class Face:
    """One face: a row of :class:`Faces` (or one made by hand, e.g. a box to classify).

    Before classification ``probs`` is empty and ``emotion`` is ``""``.
    """

    box: tuple[float, float, float, float]  # x, y, w, h in frame pixels
    score: float = 1.0  # detector score (1.0 for caller-given boxes and Haar)
    landmarks: np.ndarray | None = None  # (5, 2) float32 frame pixels, YuNet order
    probs: np.ndarray = field(default_factory=lambda: _NO_PROBS, repr=False)  # (K,) float32
    emotion: str = ""  # the most probable emotion
    emotions: tuple[str, ...] = field(default=EMOTIONS, repr=False)
    # (48, 48) float32 model input of this face (gray * input_scale + input_bias), when asked
    # for with ``crops=True`` (e.g. for a tracker's appearance check); else None.
    crop: np.ndarray | None = field(default=None, repr=False)
    # Stable id of the face's track across frames, set by ferfast-stream's tracker (whose
    # results carry smoothed ``probs`` and their ``emotion``); None for a single frame's face.
    track_id: int | None = None

    @property
    def confidence(self) -> float:
        """The highest probability (that of ``emotion``); 0.0 before classification."""
        return float(self.probs.max()) if self.probs.size else 0.0

    def as_dict(self) -> dict[str, object]:
        """The face's part of the frame record (:func:`ferfast.records.face_record`): "id"
        (tracked faces only), box, score, emotion, confidence and probs by emotion name."""
        return face_record(self)


#: The name the README and earlier versions give a classified face.
FaceResult = Face


def _array(value: Any, dtype: type, shape: tuple[int | None, ...], name: str) -> np.ndarray:
    """``value`` as a C-contiguous ``dtype`` array of ``shape`` (None: any size there)."""
    arr: np.ndarray = np.ascontiguousarray(value, dtype=dtype)
    got = arr.shape
    fits = len(got) == len(shape) and all(
        w is None or g == w for g, w in zip(got, shape, strict=True)
    )
    if not fits:
        spec = ", ".join("N" if w is None else str(w) for w in shape)
        raise ValueError(f"{name} must have shape ({spec}), got {got}")
    return arr


def _column(name: str, value: Any, n: int, k: int) -> np.ndarray | None:
    """Column ``name`` of ``n`` faces (``k`` emotions) checked, or None."""
    if value is None:
        return None
    if name == "landmarks":
        return _array(value, np.float32, (n, 5, 2), name)
    if name == "probs":
        return _array(value, np.float32, (n, k), "probs (one column per emotion)")
    if name == "crops":
        return _array(value, np.float32, (n, SIDE, SIDE), name)
    if name == "track_ids":
        return _array(value, np.int64, (n,), name)
    if name == "scores":
        return _array(value, np.float64, (n,), name)
    raise TypeError(f"Faces has no column {name!r}")


@dataclass(frozen=True, eq=False)
class Faces(Sequence[Face]):
    """The faces of one frame, columnar; every array has one row per face.

    ``boxes`` (N, 4) x, y, w, h and ``scores`` (N,) are always there; ``landmarks`` (N, 5, 2)
    when the detector gives them, ``probs`` (N, K) once classified, ``crops`` (N, 48, 48) when
    asked for, ``track_ids`` (N,) once tracked. ``emotions`` names the K probability columns.
    """

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray | None = None
    probs: np.ndarray | None = None
    crops: np.ndarray | None = None
    track_ids: np.ndarray | None = None
    emotions: tuple[str, ...] = EMOTIONS

    def __post_init__(self) -> None:
        boxes = _array(self.boxes, np.float64, (None, 4), "boxes")
        n, k = len(boxes), len(self.emotions)
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "emotions", tuple(self.emotions))
        for name in ("scores", "landmarks", "probs", "crops", "track_ids"):
            object.__setattr__(self, name, _column(name, getattr(self, name), n, k))

    @classmethod
    def empty(cls, emotions: Sequence[str] = EMOTIONS) -> Faces:
        """No face."""
        return cls(np.empty((0, 4)), np.empty(0), emotions=tuple(emotions))

    def __len__(self) -> int:
        return len(self.boxes)

    @overload
    def __getitem__(self, index: int) -> Face: ...

    @overload
    def __getitem__(self, index: slice | npt.ArrayLike) -> Faces: ...

    def __getitem__(self, index: Any) -> Face | Faces:
        if isinstance(index, (int, np.integer)):
            i = int(index)
            if not -len(self) <= i < len(self):
                raise IndexError(f"face {i} of {len(self)}")
            return self._face(i % len(self))
        rows = np.arange(len(self))[index]
        return self.select(np.atleast_1d(rows))

    def _face(self, i: int) -> Face:
        probs = _NO_PROBS if self.probs is None else self.probs[i]
        return Face(
            box=(
                float(self.boxes[i, 0]),
                float(self.boxes[i, 1]),
                float(self.boxes[i, 2]),
                float(self.boxes[i, 3]),
            ),
            score=float(self.scores[i]),
            landmarks=None if self.landmarks is None else self.landmarks[i],
            probs=probs,
            emotion=self.emotions[int(probs.argmax())] if probs.size else "",
            emotions=self.emotions,
            crop=None if self.crops is None else self.crops[i],
            track_id=None if self.track_ids is None else int(self.track_ids[i]),
        )

    def __iter__(self) -> Iterator[Face]:
        for i in range(len(self)):
            yield self._face(i)

    def select(self, rows: npt.ArrayLike) -> Faces:
        """The faces at ``rows`` (indices or a boolean mask), in that order."""
        idx = np.asarray(rows)

        def take(arr: np.ndarray | None) -> np.ndarray | None:
            return None if arr is None else arr[idx]

        return Faces(
            self.boxes[idx],
            self.scores[idx],
            take(self.landmarks),
            take(self.probs),
            take(self.crops),
            take(self.track_ids),
            self.emotions,
        )

    def replace(self, **changes: Any) -> Faces:
        """A copy with the given columns (or ``emotions``) replaced; only those are checked
        again (the stream replaces columns on every frame)."""
        if "boxes" in changes:
            return dataclasses.replace(self, **changes)
        new = object.__new__(Faces)
        new.__dict__.update(self.__dict__)
        emotions = tuple(changes.pop("emotions", self.emotions))
        new.__dict__["emotions"] = emotions
        n, k = len(self.boxes), len(emotions)
        for name, value in changes.items():
            new.__dict__[name] = _column(name, value, n, k)
        if "probs" not in changes and new.probs is not None and new.probs.shape[1] != k:
            raise ValueError(f"probs has {new.probs.shape[1]} columns for {k} emotions")
        return new

    @property
    def emotion_ids(self) -> np.ndarray:
        """(N,) index into ``emotions`` of each face's most probable emotion."""
        if self.probs is None:
            raise ValueError("these faces are not classified (no probs)")
        return np.asarray(self.probs.argmax(axis=1))

    def __repr__(self) -> str:
        have = [
            name
            for name in ("landmarks", "probs", "crops", "track_ids")
            if getattr(self, name) is not None
        ]
        return f"Faces(n={len(self)}, with={have})"


def as_faces(faces: Faces | Iterable[Face], emotions: Sequence[str] = EMOTIONS) -> Faces:
    """``faces`` as :class:`Faces`: as it is, or columns built from :class:`Face` views (their
    landmarks, probs, crops and track ids where every face has one)."""
    if isinstance(faces, Faces):
        return faces
    items = list(faces)
    if not items:
        return Faces.empty(emotions)
    emotions = items[0].emotions

    def column(values: list[Any]) -> np.ndarray | None:
        if any(v is None for v in values):
            return None
        return np.stack(values)

    probs = [f.probs for f in items]
    if any(len(f.box) != 4 for f in items):
        raise ValueError("each face's box must be (x, y, w, h)")
    return Faces(
        np.array([f.box for f in items], np.float64),
        np.array([f.score for f in items], np.float64),
        column([f.landmarks for f in items]),
        np.stack(probs) if all(p.size for p in probs) else None,
        column([f.crop for f in items]),
        None
        if any(f.track_id is None for f in items)
        else np.array([f.track_id for f in items], np.int64),
        emotions,
    )
