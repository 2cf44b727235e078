"""Draw faces on a frame: box, ``[#id] emotion NN%`` label and per-emotion confidence bars."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from ferfast.faces import FaceResult

#: BGR colour per emotion name; unknown names fall back to white.
COLORS: dict[str, tuple[int, int, int]] = {
    "angry": (40, 40, 230),
    "disgust": (40, 140, 40),
    "fear": (160, 60, 160),
    "happy": (0, 210, 255),
    "sad": (200, 120, 40),
    "surprise": (0, 140, 255),
    "neutral": (190, 190, 190),
}

FONT = cv2.FONT_HERSHEY_SIMPLEX


def color_of(emotion: str) -> tuple[int, int, int]:
    """BGR colour used for ``emotion``."""
    return COLORS.get(emotion, (255, 255, 255))


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be uint8 (H, W, 3) BGR, got {image.dtype} {image.shape}")


def draw_bars(
    image: np.ndarray,
    origin: tuple[int, int],
    probs: np.ndarray,
    emotions: Sequence[str],
    *,
    width: int = 110,
    row: int = 14,
    scale: float = 0.4,
) -> None:
    """Draw one labelled bar per emotion with its top-left corner at ``origin`` (in place)."""
    x, y = origin
    thick = max(int(round(scale * 2.5)), 1)
    label_w = int(70 * scale / 0.4)
    # Darken the panel area so the bars stay readable on any background.
    x1 = min(x + label_w + width + 4, image.shape[1])
    y1 = min(y + row * len(emotions) + 4, image.shape[0])
    if x1 > x >= 0 and y1 > y >= 0:
        roi = image[y:y1, x:x1]
        np.right_shift(roi, 1, out=roi)
    for i, (name, p) in enumerate(zip(emotions, probs, strict=True)):
        top = y + 2 + i * row
        cv2.putText(image, name[:8], (x + 2, top + row - 3), FONT, scale, (255, 255, 255), thick)
        bar = int(round(float(p) * width))
        x0 = x + label_w
        cv2.rectangle(image, (x0, top + 2), (x0 + width, top + row - 2), (80, 80, 80), 1)
        if bar > 0:
            cv2.rectangle(image, (x0, top + 2), (x0 + bar, top + row - 2), color_of(name), -1)


def draw_faces(
    image: np.ndarray,
    faces: Sequence[FaceResult],
    emotions: Sequence[str],
    *,
    bars: bool = True,
) -> np.ndarray:
    """Draw every face on ``image`` in place and return it.

    The label starts with ``#id`` for faces that carry a ``track_id``.
    """
    _check_image(image)
    h, w = image.shape[:2]
    for face in faces:
        x, y, bw, bh = (int(round(v)) for v in face.box)
        color = color_of(face.emotion)
        cv2.rectangle(image, (x, y), (x + bw, y + bh), color, 2)
        label = f"{face.emotion} {face.confidence * 100:.0f}%"
        if face.track_id is not None:
            label = f"#{face.track_id} {label}"
        (tw, th), base = cv2.getTextSize(label, FONT, 0.55, 2)
        ty = y - 6 if y - th - 8 >= 0 else min(y + bh + th + 6, h - 2)
        cv2.rectangle(image, (x, ty - th - 4), (x + tw + 4, ty + base), color, -1)
        cv2.putText(image, label, (x + 2, ty - 2), FONT, 0.55, (0, 0, 0), 2)
        if bars:
            panel_w = 70 + 110 + 4
            bx = x + bw + 6 if x + bw + 6 + panel_w <= w else max(x - panel_w - 6, 0)
            by = min(max(y, 0), max(h - 14 * len(emotions) - 4, 0))
            draw_bars(image, (bx, by), face.probs, emotions)
    return image


def draw_fps(image: np.ndarray, fps: float) -> np.ndarray:
    """Write ``NN.N fps`` in the top-left corner of ``image`` (in place) and return it."""
    _check_image(image)
    text = f"{fps:.1f} fps"
    cv2.putText(image, text, (8, 22), FONT, 0.6, (0, 0, 0), 4)
    cv2.putText(image, text, (8, 22), FONT, 0.6, (255, 255, 255), 1)
    return image
