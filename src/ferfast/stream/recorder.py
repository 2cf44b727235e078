"""Annotated video output (--output OUT.mp4, --fourcc CODE).

MP4-family files are written as H.264 (``avc1``, which browsers play) when this OpenCV build has
an H.264 encoder, else as MPEG-4 Part 2 (``mp4v``, which they do not); AVI / MKV as MJPG.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from ferfast.outpaths import OutputError, OutputLock, check_file

log = logging.getLogger("ferfast.stream")

# Free space is checked every this many frames, and kept above this margin (bytes).
_SPACE_CHECK_EVERY = 10
_SPACE_MARGIN = 1 << 20

# Per suffix: (preferred codec, fallback codec that every OpenCV FFmpeg build can write).
_CODECS = {
    ".mp4": ("avc1", "mp4v"),
    ".m4v": ("avc1", "mp4v"),
    ".mov": ("avc1", "mp4v"),
    ".avi": ("MJPG", "MJPG"),
    ".mkv": ("MJPG", "MJPG"),
}


def check_fourcc(code: str) -> str:
    """``code`` if it is a four-character codec tag (such as avc1, mp4v, MJPG), else ValueError."""
    if not isinstance(code, str):
        raise TypeError(f"fourcc must be a str, got {type(code).__name__}")
    if len(code) != 4 or not code.isascii() or not code.isprintable():
        raise ValueError(f"fourcc must be 4 ASCII characters such as avc1 or mp4v, got {code!r}")
    return code


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2: a failed probe makes FFmpeg and OpenCV print errors there."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@functools.cache
def can_write(fourcc: str, suffix: str) -> bool:
    """Whether this OpenCV build opens a ``fourcc`` writer for ``suffix`` files (probed once)."""
    with tempfile.TemporaryDirectory(prefix="ferfast-fourcc-") as tmp, _quiet_stderr():
        writer = cv2.VideoWriter(
            os.path.join(tmp, f"probe{suffix}"), cv2.VideoWriter.fourcc(*fourcc), 30.0, (64, 64)
        )
        ok = bool(writer.isOpened())
        writer.release()
    return ok


class VideoRecorder:
    """Writes frames to a video file, opened on the first frame (whose size fixes the video's).

    ``fourcc``: the codec tag to write (default: ``avc1`` for .mp4/.m4v/.mov, MJPG for .avi/.mkv).
    When this OpenCV build cannot write it (probed once per codec and suffix, then again at the
    first frame's size), the recorder logs one warning and writes the container's fallback
    (``mp4v`` / MJPG) instead; :attr:`fourcc` is the codec actually used.
    """

    def __init__(
        self,
        path: str | Path,
        fps: float = 30.0,
        fourcc: str | None = None,
        *,
        force: bool = False,
    ) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in _CODECS:
            raise ValueError(
                f"--output must end in one of {sorted(_CODECS)}, got {self.path.name!r}"
            )
        check_file(self.path, "--output", force=force)
        self.fps = fps if fps and 1.0 <= fps <= 240.0 else 30.0
        preferred, self._fallback = _CODECS[suffix]
        self.fourcc = preferred if fourcc is None else check_fourcc(fourcc)
        if not can_write(self.fourcc, suffix):
            self._fall_back(f"this OpenCV build cannot write {self.fourcc} to {suffix} files")
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self.frames = 0
        # OpenCV's writer reports no write errors: the lock file descriptor also lets the
        # recorder watch the file grow, and the free space is checked as it grows.
        self._created = not self.path.exists()
        self._lock = OutputLock(self.path, "--output")

    def _fall_back(self, reason: str) -> None:
        if self.fourcc == self._fallback:
            raise OSError(f"{reason}; cannot write {self.path}")
        note = " (browsers do not play it)" if self._fallback == "mp4v" else ""
        log.warning("%s; writing %s instead%s", reason, self._fallback, note)
        self.fourcc = self._fallback

    def _open(self, size: tuple[int, int]) -> cv2.VideoWriter | None:
        code = cv2.VideoWriter.fourcc(*self.fourcc)
        with contextlib.ExitStack() as stack:
            if self.fourcc != self._fallback:  # a failure here is handled: keep stderr clean
                stack.enter_context(_quiet_stderr())
            writer = cv2.VideoWriter(str(self.path), code, self.fps, size)
        if writer.isOpened():
            return writer
        writer.release()
        return None

    def write(self, image: np.ndarray) -> None:
        """Append one BGR frame (resized to the first frame's size if it differs)."""
        h, w = image.shape[:2]
        if self._writer is None:
            self._size = (w, h)
            writer = self._open(self._size)
            if writer is None:  # e.g. an encoder that rejects this frame size
                self._fall_back(f"cannot open a {self.fourcc} writer for {w}x{h} frames")
                writer = self._open(self._size)
            if writer is None:
                raise OSError(f"cannot open a {self.fourcc} video writer for {self.path}")
            self._writer = writer
        elif (w, h) != self._size:
            image = cv2.resize(image, self._size)
        self._writer.write(image)
        self.frames += 1
        if self.frames % _SPACE_CHECK_EVERY == 0:
            self._check_space()

    def _check_space(self) -> None:
        """OutputError when the disk is nearly full: stopping while the container's index
        still fits keeps the frames written so far playable."""
        try:
            st = os.statvfs(self.path.parent)
            size = self.path.stat().st_size
        except OSError as exc:
            raise OutputError(f"cannot write the video {self.path}: {exc.strerror}") from exc
        free = st.f_bavail * st.f_frsize
        per_frame = size / max(self.frames, 1)
        # The index takes tens of bytes a frame; the encoder holds up to ~64 frames back.
        need = _SPACE_MARGIN + 64 * self.frames + 64 * per_frame
        if free < need:
            raise OutputError(
                f"cannot write the video {self.path}: the disk is nearly full "
                f"({free / 1e6:.1f} MB free); stopped after {self.frames} frames"
            )

    def close(self) -> None:
        """Finish the file; OutputError if it could not be finished into a readable video."""
        if self._writer is None:  # no frame came: leave no empty file behind
            if self._created and self.path.stat().st_size == 0:
                self.path.unlink(missing_ok=True)
            self._lock.release()
            return
        self._writer.release()
        self._writer = None
        self._lock.release()
        cap = cv2.VideoCapture(str(self.path))
        try:
            readable = cap.isOpened() and cap.get(cv2.CAP_PROP_FRAME_COUNT) > 0
        finally:
            cap.release()
        if not readable:
            raise OutputError(
                f"cannot write the video {self.path}: the file is not readable after "
                f"{self.frames} frames (disk full or file-size limit?)"
            )
