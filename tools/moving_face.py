"""Synthetic video frames of a real face moving across a plain background.

Shared by the stream tests and benchmarks (``tests/stream_support.py``) and the appearance
measurement (``tools/measure_appearance.py``), so both see the same motion.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

FRAME_SIZE = (640, 480)
BACKGROUND = (90, 110, 120)  # BGR of the frames' background


def face_frames(
    photo: np.ndarray,
    n: int,
    size: tuple[int, int] = FRAME_SIZE,
    finish: Callable[[np.ndarray], np.ndarray] | None = None,
) -> list[np.ndarray]:
    """``n`` frames of ``photo``'s face sliding left to right (and bobbing) on a plain colour.

    ``finish``: applied to each frame in order (e.g. a brightness change and a JPEG round-trip).
    """
    w, h = size
    face = cv2.resize(photo, (160, 196), interpolation=cv2.INTER_AREA)
    fh, fw = face.shape[:2]
    frames = []
    for i in range(n):
        t = i / max(n - 1, 1)
        x = int(20 + (w - fw - 40) * t)
        y = int((h - fh) / 2 + 30 * np.sin(2 * np.pi * t))
        frame = np.empty((h, w, 3), np.uint8)
        frame[:] = BACKGROUND
        frame[y : y + fh, x : x + fw] = face
        frames.append(frame if finish is None else finish(frame))
    return frames
