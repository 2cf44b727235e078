"""ferfast.preprocess vs the idiomatic OpenCV path: 4 faces from a 1080p BGR frame.

OpenCV path: cvtColor of the whole frame, slice each (same) square crop, cv2.resize INTER_AREA
to 48×48, astype(float32) / 255, stacked to (4, 1, 48, 48). ferfast path: one
ferfast.preprocess call writing into a reused (8, 1, 48, 48) buffer. ``pytest benchmarks/`` prints
both in one table and the speed ratio in the "speedup" section at the end.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

import ferfast
from ferfast.framing import FRAMING_YUNET

GROUP = "preprocess 4 faces, 1080p BGR"
# x, y, w, h: YuNet-like boxes (taller than wide), 150-250 px
BOXES = np.array(
    [[300, 200, 150, 190], [820, 340, 180, 230], [1250, 150, 200, 250], [1600, 600, 160, 200]],
    np.float32,
)


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    return cv2.GaussianBlur(img, (0, 0), 2.0)


def squares(boxes: np.ndarray) -> list[tuple[int, int, int]]:
    """The crop squares ferfast uses (docs/framing.md), for the OpenCV path to slice."""
    f = FRAMING_YUNET
    out = []
    for x, y, w, h in boxes.astype(np.float64):
        side = max(w, h) * f.margin
        s = max(1, math.floor(side + 0.5))
        cx, cy = x + w / 2 + f.offset_x * side, y + h / 2 + f.offset_y * side
        out.append((math.floor(cx - s / 2 + 0.5), math.floor(cy - s / 2 + 0.5), s))
    return out


def opencv_path(frame: np.ndarray, crops: list[tuple[int, int, int]]) -> np.ndarray:
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    faces = [
        cv2.resize(gray[y : y + s, x : x + s], (48, 48), interpolation=cv2.INTER_AREA)
        for x, y, s in crops
    ]
    return (np.stack(faces).astype(np.float32) / 255.0)[:, None]


def test_opencv_path(benchmark, speedup, frame: np.ndarray) -> None:
    benchmark.group = GROUP
    crops = squares(BOXES)
    result = benchmark(opencv_path, frame, crops)
    speedup.record(benchmark, "opencv", baseline=True)
    assert result.shape == (4, 1, 48, 48)


def test_ferfast_preprocess(benchmark, speedup, frame: np.ndarray) -> None:
    benchmark.group = GROUP
    out = np.empty((8, 1, 48, 48), np.float32)
    result = benchmark(ferfast.preprocess, frame, BOXES, out)
    speedup.record(benchmark, "ferfast.preprocess")
    assert np.shares_memory(result, out)
    # Same crops, same numbers (within one gray level: OpenCV rounds to uint8 twice).
    ref = opencv_path(frame, squares(BOXES))
    np.testing.assert_allclose(result, ref, rtol=0, atol=1.0 / 255 + 1e-6)


def test_ferfast_preprocess_landmarks(benchmark, speedup, frame: np.ndarray) -> None:
    """The eye-aligning warp (supersampled bilinear) on the same faces: informational."""
    benchmark.group = GROUP
    out = np.empty((8, 1, 48, 48), np.float32)
    lms = np.zeros((4, 5, 2), np.float32)
    for i, (x, y, w, h) in enumerate(BOXES):
        lms[i, 0] = (x + 0.3 * w, y + 0.4 * h)
        lms[i, 1] = (x + 0.7 * w, y + 0.42 * h)
        lms[i, 2:] = (x + 0.5 * w, y + 0.6 * h)
    result = benchmark(ferfast.preprocess, frame, BOXES, out, lms)
    speedup.record(benchmark, "ferfast.preprocess+landmarks")
    assert np.isfinite(result).all()
