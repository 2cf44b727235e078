"""Property-based checks of ferfast.preprocess against the NumPy/OpenCV reference (hypothesis).

Random frames (1-96 pixels a side; gray, BGR, BGRA), random views of them (row/column steps,
flips, offsets into a larger buffer) and random boxes inside, partly outside and entirely outside
the frame. Boxes sit on a quarter-pixel grid, exact in binary, so the kernel and the reference
round crop edges alike. Runs derandomized: the same examples every run.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_preprocess import reference

from ferfast.framing import Framing
from ferfast.preprocess import preprocess

FRAMINGS = (Framing(margin=1.0), Framing(margin=1.25))
SETTINGS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


@st.composite
def frames(draw: st.DrawFn) -> np.ndarray:
    """A uint8 frame, often a non-contiguous view of a larger buffer."""
    h, w = draw(st.integers(1, 96)), draw(st.integers(1, 96))
    channels = draw(st.sampled_from([1, 3, 4]))
    sy, sx = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    oy, ox = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = (oy + h * sy, ox + w * sx) + (() if channels == 1 else (channels,))
    base = rng.integers(0, 256, size=shape, dtype=np.uint8)
    view = base[oy::sy, ox::sx][:h, :w]
    if draw(st.booleans()):
        view = view[::-1]
    if draw(st.booleans()):
        view = view[:, ::-1]
    return view


def quarter(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.integers(int(lo * 4), int(hi * 4)).map(lambda v: v / 4)


@st.composite
def boxes_for(draw: st.DrawFn, frame: np.ndarray, n_max: int = 3) -> list[tuple[float, ...]]:
    """1..n_max boxes: anywhere from well inside to entirely outside the frame."""
    h, w = frame.shape[:2]
    big = max(h, w)
    out = []
    for _ in range(draw(st.integers(1, n_max))):
        bw, bh = draw(quarter(0.25, 3 * big)), draw(quarter(0.25, 3 * big))
        x, y = draw(quarter(-bw - 8, w + 8)), draw(quarter(-bh - 8, h + 8))
        out.append((x, y, bw, bh))
    return out


def outside(box: tuple[float, ...], frame: np.ndarray) -> bool:
    x, y, w, h = box
    return x >= frame.shape[1] or y >= frame.shape[0] or x + w <= 0 or y + h <= 0


@SETTINGS
@given(data=st.data())
def test_preprocess_matches_reference_or_rejects_outside_boxes(data: st.DataObject) -> None:
    frame = data.draw(frames())
    boxes = data.draw(boxes_for(frame))
    framing = data.draw(st.sampled_from(FRAMINGS))
    rejected = any(outside(b, frame) for b in boxes)
    event("a box entirely outside" if rejected else "all boxes overlap the frame")
    if rejected:
        with pytest.raises(ValueError, match="lies entirely outside the frame"):
            preprocess(frame, boxes, framing=framing)
        return
    got = preprocess(frame, boxes, framing=framing)
    assert got.shape == (len(boxes), 1, 48, 48) and got.dtype == np.float32
    for i, box in enumerate(boxes):
        ref = reference(np.ascontiguousarray(frame), box, framing, exact=True)
        np.testing.assert_allclose(got[i, 0], ref, rtol=0, atol=2e-5, err_msg=f"box {box}")


@SETTINGS
@given(data=st.data())
def test_landmark_warp_reads_views_like_contiguous_frames(data: st.DataObject) -> None:
    frame = data.draw(frames())
    boxes = [b for b in data.draw(boxes_for(frame)) if not outside(b, frame)]
    if not boxes:
        return
    h, w = frame.shape[:2]
    # Eye distances stay within the kernel's warp-scale cap (its error has its own tests).
    coord = st.floats(-1.0 * max(h, w), 2.0 * max(h, w), allow_nan=False)
    lm = np.array(
        [[[data.draw(coord), data.draw(coord)] for _ in range(5)] for _ in boxes], np.float32
    )
    if np.any(np.hypot(*(lm[:, 1] - lm[:, 0]).T) < 1e-3):  # coincident eyes: no warp defined
        return
    got = preprocess(frame, boxes, landmarks=lm)
    assert np.isfinite(got).all() and got.min() >= 0.0 and got.max() <= 1.0 + 1e-6
    np.testing.assert_allclose(
        got, preprocess(np.ascontiguousarray(frame), boxes, landmarks=lm), rtol=0, atol=1e-6
    )
