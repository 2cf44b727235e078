"""JSON Lines event output: one object per processed frame, flushed line by line."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ferfast.outpaths import OutputError, check_file, open_text

if TYPE_CHECKING:
    from ferfast.engine import FaceResult


def face_event(face: FaceResult, emotions: Sequence[str]) -> dict[str, object]:
    """``{"id", "box", "emotion", "probs", "score"}`` for one tracked face (one with a
    ``track_id``), rounded for compact lines."""
    if face.track_id is None:
        raise ValueError("face has no track_id: events are written for tracked faces")
    if len(face.probs) != len(emotions):
        raise ValueError(f"face has {len(face.probs)} probabilities for {len(emotions)} emotions")
    return {
        "id": int(face.track_id),
        "box": [round(float(v), 2) for v in face.box],
        "emotion": face.emotion,
        "probs": {name: round(float(p), 6) for name, p in zip(emotions, face.probs, strict=True)},
        "score": round(float(face.score), 6),
    }


def frame_event(
    frame: int,
    time: float,
    faces: Sequence[FaceResult],
    emotions: Sequence[str],
    source: int | None = None,
) -> dict[str, object]:
    """``{"frame", "time", "faces": [...]}`` for one processed frame; with several sources,
    ``"source"`` first (the source's 0-based position on the command line)."""
    event: dict[str, object] = {} if source is None else {"source": int(source)}
    event.update(frame=int(frame), time=float(time), faces=[face_event(f, emotions) for f in faces])
    return event


class JsonlWriter:
    """Writes one JSON object per line to a file or stdout (``"-"``), flushing every line.

    Each line is written with a single ``write`` call and flushed, so an interrupted run leaves
    only complete lines behind. A file is opened under an advisory lock (another run writing it
    is refused), new unless ``force`` (replace it) or ``append`` (add to it); a failed write
    raises :class:`~ferfast.outpaths.OutputError` naming the file.
    """

    def __init__(
        self,
        target: str | Path,
        emotions: Sequence[str],
        *,
        force: bool = False,
        append: bool = False,
    ) -> None:
        if not isinstance(target, (str, Path)):
            raise TypeError(f"jsonl target must be a path or '-', got {type(target).__name__}")
        self.emotions = tuple(emotions)
        self.lines = 0
        self._own = str(target) != "-"
        self.name = str(target) if self._own else "standard output"
        if self._own:
            check_file(target, "--jsonl", force=force, append=append)
            self._fh: TextIO = open_text(target, "--jsonl", force=force, append=append)
        else:
            self._fh = sys.stdout

    def write(
        self, frame: int, time: float, faces: Sequence[FaceResult], source: int | None = None
    ) -> None:
        """Append the event of one processed frame (of source ``source``, if given)."""
        event = frame_event(frame, time, faces, self.emotions, source)
        line = json.dumps(event, separators=(",", ":"))
        try:
            self._fh.write(line + "\n")
            self._fh.flush()
        except (OSError, ValueError) as exc:  # disk full, closed pipe, closed stream
            why = getattr(exc, "strerror", None) or exc
            raise OutputError(f"cannot write the JSON Lines output {self.name}: {why}") from exc
        self.lines += 1

    def close(self) -> None:
        """Close the file (stdout is only flushed)."""
        try:
            if self._own:
                self._fh.close()
            else:
                self._fh.flush()
        except (OSError, ValueError) as exc:
            why = getattr(exc, "strerror", None) or exc
            raise OutputError(f"cannot write the JSON Lines output {self.name}: {why}") from exc

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
