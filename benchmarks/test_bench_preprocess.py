"""ferfast.preprocess vs the idiomatic OpenCV path: faces from a 1080p frame.

OpenCV path: cvtColor of the whole frame (BGR input), slice each (same) square crop, cv2.resize
INTER_AREA to 48×48, astype(float32) / 255, stacked to (N, 1, 48, 48). ferfast path: one
ferfast.preprocess call writing into a reused (N, 1, 48, 48) buffer. Each case (1, 4 and 16 faces
from a BGR frame; 4 faces from a gray frame) is its own benchmark group with its own OpenCV
baseline, so ``pytest benchmarks/`` prints every ratio in the "speedup" section at the end.
Both paths use the machine's cores as they do for users: OpenCV its thread pool (cvtColor), ferfast
its helper threads for calls this large (``FERFAST_PREPROCESS_THREADS=1`` times one thread).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

import ferfast
from ferfast.contract import INPUT_SHAPE, SIDE
from ferfast.framing import FRAMING_YUNET

# x, y, w, h: YuNet-like boxes (taller than wide), 150-250 px
BOXES = np.array(
    [[300, 200, 150, 190], [820, 340, 180, 230], [1250, 150, 200, 250], [1600, 600, 160, 200]],
    np.float32,
)
# 16 faces: the four boxes repeated across the frame (same sizes, other places).
BOXES_16 = np.concatenate(
    [
        BOXES + np.float32([dx, dy, 0, 0])
        for dx, dy in [(0, 0), (-250, 220), (-130, -150), (120, 260)]
    ]
)
# (label, boxes, channels): one benchmark group each.
CASES = [
    ("1 face, 1080p BGR", BOXES[2:3], 3),
    ("4 faces, 1080p BGR", BOXES, 3),
    ("16 faces, 1080p BGR", BOXES_16, 3),
    ("4 faces, 1080p gray", BOXES, 1),
]
IDS = ["1-bgr", "4-bgr", "16-bgr", "4-gray"]


@pytest.fixture(scope="module")
def frames() -> dict[int, np.ndarray]:
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8), (0, 0), 2.0)
    return {3: img, 1: cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)}


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
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
    faces = [
        cv2.resize(gray[y : y + s, x : x + s], (SIDE, SIDE), interpolation=cv2.INTER_AREA)
        for x, y, s in crops
    ]
    f = FRAMING_YUNET
    return (np.stack(faces).astype(np.float32) * f.input_scale + f.input_bias)[:, None]


def test_boxes_16_lie_inside_the_frame() -> None:
    for x, y, s in squares(BOXES_16):
        assert 0 <= x and x + s <= 1920 and 0 <= y and y + s <= 1080


@pytest.mark.parametrize(("group", "boxes", "channels"), CASES, ids=IDS)
def test_opencv_path(benchmark, speedup, frames, group, boxes, channels) -> None:
    benchmark.group = f"preprocess {group}"
    crops = squares(boxes)
    result = benchmark(opencv_path, frames[channels], crops)
    speedup.record(benchmark, "opencv", baseline=True)
    assert result.shape == (len(boxes), *INPUT_SHAPE)


@pytest.mark.parametrize(("group", "boxes", "channels"), CASES, ids=IDS)
def test_ferfast_preprocess(benchmark, speedup, frames, group, boxes, channels) -> None:
    benchmark.group = f"preprocess {group}"
    frame = frames[channels]
    out = np.empty((len(boxes), *INPUT_SHAPE), np.float32)
    result = benchmark(ferfast.preprocess, frame, boxes, out)
    speedup.record(benchmark, "ferfast.preprocess")
    assert np.shares_memory(result, out)
    # Same crops, same numbers (within one gray level: OpenCV rounds to uint8 twice).
    ref = opencv_path(frame, squares(boxes))
    np.testing.assert_allclose(result, ref, rtol=0, atol=FRAMING_YUNET.input_scale + 1e-6)


def test_ferfast_preprocess_landmarks(benchmark, speedup, frames) -> None:
    """The eye-aligning warp (supersampled bilinear) on the 4 BGR faces: informational."""
    benchmark.group = "preprocess 4 faces, 1080p BGR"
    out = np.empty((8, *INPUT_SHAPE), np.float32)
    lms = np.zeros((4, 5, 2), np.float32)
    for i, (x, y, w, h) in enumerate(BOXES):
        lms[i, 0] = (x + 0.3 * w, y + 0.4 * h)
        lms[i, 1] = (x + 0.7 * w, y + 0.42 * h)
        lms[i, 2:] = (x + 0.5 * w, y + 0.6 * h)
    result = benchmark(ferfast.preprocess, frames[3], BOXES, out, lms)
    speedup.record(benchmark, "ferfast.preprocess+landmarks")
    assert np.isfinite(result).all()
