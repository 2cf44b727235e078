"""Reading a video's frames past the ones that do not decode.

``VideoCapture.read()`` returns False both at the end of a video and at a frame it cannot
decode (a damaged part of a file, a corrupt JPEG part of an MJPEG stream); asked again, it goes
on with the next frame. :class:`FrameReader` tells the two apart by asking again, within bounds:
a run of failed reads that reaches ``max_failed_reads`` (or lasts ``max_failed_s``) is the end.
It numbers frames by their position in the video, undecodable ones included, so the frames it
skipped show as gaps. ``ferfast predict`` (:mod:`ferfast.files`) and ``ferfast-stream``
(:mod:`ferfast.stream.sources`) both read through it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

__all__ = ["MAX_FAILED_READS", "Capture", "FrameReader", "VideoFrame"]

#: Failed reads in a row that end a video. At the end of a file a read fails in tens of
#: microseconds, so the bound costs about 10 ms there; a damaged stretch of up to this many
#: frames (10 s at 30 fps) is skipped.
MAX_FAILED_READS = 300


class Capture(Protocol):
    """What :class:`FrameReader` needs from ``cv2.VideoCapture``."""

    def read(self) -> tuple[bool, np.ndarray | None]: ...

    def grab(self) -> bool: ...


@dataclass(frozen=True)
class VideoFrame:
    """One frame that decoded."""

    index: int  # position in the video (0-based), undecodable frames included
    image: np.ndarray | None  # BGR uint8; None when the frame was only grabbed
    read_s: float  # seconds in read()/grab(), the failed reads just before it included
    skipped: int  # undecodable frames skipped just before this one


class FrameReader:
    """Reads the decodable frames of a capture in order, skipping undecodable ones (bounded).

    ``max_failed_reads``: failed reads in a row that mean the video has ended. ``max_failed_s``:
    also end once such a run has lasted this many seconds (a live stream that only sends
    garbage, or whose reads time out); None: no time bound.
    """

    def __init__(
        self,
        cap: Capture,
        *,
        max_failed_reads: int = MAX_FAILED_READS,
        max_failed_s: float | None = None,
    ) -> None:
        if max_failed_reads < 1:
            raise ValueError(f"max_failed_reads must be >= 1, got {max_failed_reads}")
        if max_failed_s is not None and max_failed_s <= 0:
            raise ValueError(f"max_failed_s must be > 0 or None, got {max_failed_s}")
        self.cap = cap
        self.max_failed_reads = max_failed_reads
        self.max_failed_s = max_failed_s
        self.position = 0  # index of the next frame
        self.skipped = 0  # undecodable frames skipped so far (before a frame that decoded)

    def next(
        self,
        decode: bool | Callable[[int], bool] = True,
        cancelled: Callable[[], bool] | None = None,
    ) -> VideoFrame | None:
        """The next frame that decodes; None at the end of the video (or when ``cancelled()``).

        ``decode``: whether to decode the frame (``read``) or only grab it (``grab``, cheaper,
        no image), or a function of the frame's index that says so. Failed reads at the end are
        not counted as skipped: nothing tells them apart from the end itself.
        """
        failures = 0
        t0 = time.perf_counter()
        while True:
            index = self.position + failures
            if decode(index) if callable(decode) else decode:
                ok, image = self.cap.read()
                ok = ok and image is not None
            else:
                ok, image = self.cap.grab(), None
            if ok:
                self.position = index + 1
                self.skipped += failures
                return VideoFrame(index, image, time.perf_counter() - t0, failures)
            failures += 1
            if failures >= self.max_failed_reads:
                return None
            if self.max_failed_s is not None and time.perf_counter() - t0 >= self.max_failed_s:
                return None
            if cancelled is not None and cancelled():
                return None
