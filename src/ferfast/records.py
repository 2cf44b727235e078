"""The frame record: one schema for every output of ferfast (docs/record.schema.json).

A record is one processed image or video frame: where it came from, when it was produced, and
its faces. Every sink writes this record (JSON Lines as it is, CSV and the table one row per
face), and ``FaceResult.as_dict`` is its face part, so the numbers agree everywhere. The
rounding is decided here once: pixels to 0.01, scores and probabilities to 1e-6 (float32
carries about seven digits), times to the millisecond.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np


class FaceLike(Protocol):
    """What a record reads of a face (``ferfast.engine.FaceResult`` is one)."""

    @property
    def box(self) -> tuple[float, float, float, float]: ...
    @property
    def score(self) -> float: ...
    @property
    def probs(self) -> np.ndarray: ...
    @property
    def emotion(self) -> str: ...
    @property
    def emotions(self) -> tuple[str, ...]: ...
    @property
    def track_id(self) -> int | None: ...
    @property
    def confidence(self) -> float: ...


__all__ = [
    "FaceLike",
    "PIXEL_DIGITS",
    "PROB_DIGITS",
    "TIME_DIGITS",
    "FrameRecord",
    "Row",
    "face_record",
    "row_fields",
]

PIXEL_DIGITS = 2
PROB_DIGITS = 6
TIME_DIGITS = 3

Row = str | int | float  # a value of FrameRecord.rows()


def face_record(face: FaceLike) -> dict[str, Any]:
    """``{"id"?, "box", "score", "emotion", "confidence", "probs"}`` of one face, rounded;
    ``"id"`` (first) only for a tracked face."""
    if len(face.probs) != len(face.emotions):
        raise ValueError(
            f"face has {len(face.probs)} probabilities for {len(face.emotions)} emotions"
        )
    head: dict[str, Any] = {} if face.track_id is None else {"id": int(face.track_id)}
    return head | {
        "box": [round(float(v), PIXEL_DIGITS) for v in face.box],
        "score": round(float(face.score), PROB_DIGITS),
        "emotion": face.emotion,
        "confidence": round(float(face.confidence), PROB_DIGITS),
        "probs": {
            name: round(float(p), PROB_DIGITS)
            for name, p in zip(face.emotions, face.probs, strict=True)
        },
    }


@dataclass(frozen=True)
class FrameRecord:
    """One processed image or video frame and its faces, as every sink receives it."""

    source: str  # the file's path, or the stream's --source text
    frame: int  # 0 for an image; the frame's position in a video or stream, from 0
    time: float  # UNIX time when the faces were produced
    faces: Sequence[FaceLike]
    emotions: tuple[str, ...]  # the model's emotion order (the CSV and table columns)

    def as_dict(self) -> dict[str, Any]:
        """``{"source", "frame", "time", "faces": [face_record, ...]}`` (the JSON Lines line)."""
        return {
            "source": self.source,
            "frame": int(self.frame),
            "time": round(float(self.time), TIME_DIGITS),
            "faces": [face_record(face) for face in self.faces],
        }

    @functools.cached_property
    def json(self) -> str:
        """:meth:`as_dict` as compact JSON (one line, no newline): what the JSON Lines and MQTT
        sinks write; made once per record, however many sinks take it."""
        return json.dumps(self.as_dict(), separators=(",", ":"))

    def rows(self) -> list[dict[str, Row]]:
        """One flat dict per face (CSV, table): source, frame, face (index), id (empty when not
        tracked), x, y, w, h, score, emotion, confidence, then each emotion's probability."""
        out: list[dict[str, Row]] = []
        for i, face in enumerate(self.faces):
            rec = face_record(face)
            x, y, w, h = rec["box"]
            row: dict[str, Row] = {
                "source": self.source,
                "frame": int(self.frame),
                "face": i,
                "id": rec.get("id", ""),
                "x": x,
                "y": y,
                "w": w,
                "h": h,
                "score": rec["score"],
                "emotion": rec["emotion"],
                "confidence": rec["confidence"],
            }
            row.update(rec["probs"])
            out.append(row)
        return out


def row_fields(emotions: Sequence[str]) -> list[str]:
    """The keys of :meth:`FrameRecord.rows`, in order (the CSV header)."""
    fixed = ["source", "frame", "face", "id", "x", "y", "w", "h", "score", "emotion", "confidence"]
    return fixed + list(emotions)
