"""Annotated video output (--output OUT.mp4)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


class VideoRecorder:
    """Writes frames to a video file, opened on the first frame (whose size fixes the video's)."""

    def __init__(self, path: str | Path, fps: float = 30.0) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in _FOURCC:
            raise ValueError(
                f"--output must end in one of {sorted(_FOURCC)}, got {self.path.name!r}"
            )
        if not self.path.parent.exists():
            raise ValueError(f"directory for --output does not exist: {self.path.parent}")
        self.fps = fps if fps and 1.0 <= fps <= 240.0 else 30.0
        self._fourcc = cv2.VideoWriter_fourcc(*_FOURCC[suffix])
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self.frames = 0

    def write(self, image: np.ndarray) -> None:
        """Append one BGR frame (resized to the first frame's size if it differs)."""
        h, w = image.shape[:2]
        if self._writer is None:
            self._size = (w, h)
            self._writer = cv2.VideoWriter(str(self.path), self._fourcc, self.fps, (w, h))
            if not self._writer.isOpened():
                raise OSError(f"cannot open video writer for {self.path}")
        elif (w, h) != self._size:
            image = cv2.resize(image, self._size)
        self._writer.write(image)
        self.frames += 1

    def close(self) -> None:
        """Finish the file."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
