"""ferfast.preprocess: agreement with the OpenCV reference path, strides, `out` reuse, landmarks,
bad input, and GIL release."""

from __future__ import annotations

import math
import threading
import time

import cv2
import numpy as np
import pytest

import ferfast
from ferfast import _core
from ferfast.framing import FRAMING, FRAMING_HAAR, FRAMING_YUNET, Framing
from ferfast.preprocess import preprocess

PLAIN = Framing(margin=1.0)  # square boxes map 1:1 onto the crop: easy reference slices
GRAY_LEVEL = 1.0 / 255.0


def make_frame(h: int = 180, w: int = 240, c: int = 3, seed: int = 0) -> np.ndarray:
    """Deterministic textured uint8 frame: (h, w) for c == 1, else (h, w, c)."""
    rng = np.random.default_rng(seed)
    shape = (h, w) if c == 1 else (h, w, c)
    img = rng.integers(0, 256, size=shape, dtype=np.uint8)
    return cv2.GaussianBlur(img, (0, 0), 1.5) if c != 2 else img


def to_gray(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        return frame
    code = cv2.COLOR_BGR2GRAY if frame.shape[2] == 3 else cv2.COLOR_BGRA2GRAY
    return cv2.cvtColor(frame, code)


def crop_square(box, framing: Framing) -> tuple[int, int, int]:
    """The integer crop square of docs/framing.md: (x0, y0, side)."""
    x, y, w, h = box
    side = max(w, h) * framing.margin
    cx = x + w / 2 + framing.offset_x * side
    cy = y + h / 2 + framing.offset_y * side
    s = max(1, math.floor(side + 0.5))
    return math.floor(cx - s / 2 + 0.5), math.floor(cy - s / 2 + 0.5), s


def reference(frame: np.ndarray, box, framing: Framing = PLAIN, exact: bool = False) -> np.ndarray:
    """OpenCV path: gray, replicate border, slice, resize (AREA down / LINEAR up), / 255.

    exact=False: the idiomatic uint8 path (cvtColor + resize on uint8, rounding twice).
    exact=True: the same in float32 (no rounding), which the kernel should match closely.
    """
    x0, y0, s = crop_square(box, framing)
    src = frame.astype(np.float32) if exact else frame
    gray = src if src.ndim == 2 else to_gray(src)
    h, w = gray.shape[:2]
    pad = 2 + max(0, -x0, -y0, x0 + s - w, y0 + s - h)
    padded = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    crop = padded[y0 + pad : y0 + pad + s, x0 + pad : x0 + pad + s]
    interp = cv2.INTER_AREA if s >= 48 else cv2.INTER_LINEAR
    out = cv2.resize(crop, (48, 48), interpolation=interp).astype(np.float32)
    return out * np.float32(framing.input_scale) + np.float32(framing.input_bias)


# ---------------------------------------------------------------- agreement with OpenCV


@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("side", [48, 50, 64, 97, 150, 171])
def test_area_downscale_matches_opencv(channels: int, side: int) -> None:
    frame = make_frame(c=channels, seed=side)
    box = (20.0, 5.0, float(side), float(side))
    got = preprocess(frame, [box], framing=PLAIN)
    assert got.shape == (1, 1, 48, 48) and got.dtype == np.float32
    np.testing.assert_allclose(got[0, 0], reference(frame, box), rtol=0, atol=GRAY_LEVEL + 1e-6)
    np.testing.assert_allclose(got[0, 0], reference(frame, box, exact=True), rtol=0, atol=2e-5)


@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("side", [1, 7, 24, 47])
def test_bilinear_upscale_matches_opencv(channels: int, side: int) -> None:
    frame = make_frame(c=channels, seed=side)
    box = (30.0, 40.0, float(side), float(side))
    got = preprocess(frame, [box], framing=PLAIN)
    # cv2's uint8 INTER_LINEAR uses 11-bit fixed-point weights: allow 1.5 levels there.
    np.testing.assert_allclose(got[0, 0], reference(frame, box), rtol=0, atol=1.5 * GRAY_LEVEL)
    np.testing.assert_allclose(got[0, 0], reference(frame, box, exact=True), rtol=0, atol=2e-5)


@pytest.mark.parametrize(
    "box",
    [(-30, -20, 100, 100), (200, 150, 90, 90), (-10, 120, 70, 70), (230, -15, 20, 20)],
)
@pytest.mark.parametrize("channels", [1, 3])
def test_partly_outside_replicates_edge(box, channels: int) -> None:
    frame = make_frame(c=channels, seed=3)
    box = tuple(float(v) for v in box)
    got = preprocess(frame, [box], framing=PLAIN)
    ref = reference(frame, box, exact=True)
    np.testing.assert_allclose(got[0, 0], ref, rtol=0, atol=2e-5)
    np.testing.assert_allclose(got[0, 0], reference(frame, box), rtol=0, atol=1.5 * GRAY_LEVEL)


@pytest.mark.parametrize("framing", [FRAMING_YUNET, FRAMING_HAAR])
def test_framing_geometry(framing: Framing) -> None:
    """Non-square boxes, fractional coordinates, margin and offsets follow docs/framing.md."""
    frame = make_frame(c=3, seed=5)
    boxes = np.array([[60.3, 40.7, 70.2, 93.9], [100.5, 20.25, 41.0, 30.0]], np.float32)
    got = preprocess(frame, boxes, framing=framing)
    for i, box in enumerate(boxes.astype(np.float64)):
        ref = reference(frame, tuple(box), framing, exact=True)
        np.testing.assert_allclose(got[i, 0], ref, rtol=0, atol=2e-5)


def test_several_faces_one_call_and_defaults() -> None:
    frame = make_frame(c=3, seed=9)
    boxes = np.array([[10, 10, 60, 60], [100, 50, 120, 100], [5, 100, 30, 40]], np.float64)
    got = ferfast.preprocess(frame, boxes)
    assert got.shape == (3, 1, 48, 48)
    for i in range(3):
        single = preprocess(frame, boxes[i : i + 1], framing=FRAMING)
        np.testing.assert_array_equal(got[i], single[0])
    # float32 boxes and a list of lists give the same as float64
    np.testing.assert_array_equal(preprocess(frame, boxes.astype(np.float32)), got)
    np.testing.assert_array_equal(preprocess(frame, boxes.tolist()), got)
    assert 0.0 <= got.min() and got.max() <= 1.0


def test_input_scale_and_bias() -> None:
    frame = make_frame(c=1, seed=2)
    box = [[10.0, 10.0, 96.0, 96.0]]
    base = preprocess(frame, box, framing=PLAIN)
    shifted = preprocess(frame, box, framing=PLAIN.with_input(2.0 / 255.0, -1.0))
    np.testing.assert_allclose(shifted, base * 2.0 - 1.0, atol=1e-5)


def test_single_channel_3d_frame_and_integer_boxes() -> None:
    gray = make_frame(c=1, seed=7)
    boxes = np.array([[10, 20, 64, 50], [0, 0, 30, 30]], np.int32)
    got = preprocess(gray[..., None], boxes)
    np.testing.assert_array_equal(got, preprocess(gray, boxes.astype(np.float64)))


def test_framing_is_validated() -> None:
    with pytest.raises(ValueError, match="margin"):
        Framing(margin=-1.0)
    with pytest.raises(ValueError, match="eye_left"):
        Framing(margin=1.0, eye_left=(1.0, 2.0, 3.0))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="differ"):
        Framing(margin=1.0, eye_left=(20.0, 20.0), eye_right=(20.0, 20.0))
    f = Framing(margin=np.float32(1.5), eye_left=np.array([10, 20]))  # type: ignore[arg-type]
    assert f.margin == 1.5 and f.eye_left == (10.0, 20.0)


def test_no_boxes() -> None:
    got = preprocess(make_frame(), np.zeros((0, 4), np.float32))
    assert got.shape == (0, 1, 48, 48) and got.dtype == np.float32


# ---------------------------------------------------------------- strides (read in place)


@pytest.mark.parametrize(
    "view",
    [
        lambda f: f[::2, ::2],  # every other row and column
        lambda f: f[:, 37:201],  # column slice (row stride > width)
        lambda f: f[::-1],  # negative row stride
        lambda f: f[:, ::-1],  # negative column stride
        lambda f: f[..., ::-1],  # channel-reversed view (RGB order read as BGR)
        lambda f: np.asfortranarray(f),  # column-major copy
        lambda f: f[..., 1],  # one channel as a strided gray image
        lambda f: f[3:150:3, 5:230:2, :],
    ],
    ids=["step2", "colslice", "flipud", "fliplr", "chanrev", "fortran", "onechannel", "mixed"],
)
def test_strided_views_equal_contiguous(view) -> None:
    frame = make_frame(c=3, seed=11)
    v = view(frame)
    assert not v.flags.c_contiguous or v.base is not None
    boxes = [[-5.0, -5.0, 40.0, 40.0], [10.0, 8.0, 64.0, 64.0], [30.0, 20.0, 13.0, 17.0]]
    np.testing.assert_allclose(
        preprocess(v, boxes), preprocess(np.ascontiguousarray(v), boxes), rtol=0, atol=1e-6
    )


@pytest.mark.parametrize(
    "view", [lambda f: f[::2, ::2], lambda f: f[..., ::-1], lambda f: f[:, 40:]]
)
def test_strided_views_with_landmarks(view) -> None:
    frame = cv2.cvtColor(make_frame(c=3, seed=14), cv2.COLOR_BGR2BGRA)
    v = view(frame)
    lm = np.array([[[30.0, 40.0], [70.0, 35.0], [50, 60], [35, 80], [65, 78]]])
    lm = np.concatenate([lm, lm * 0.4 - 5.0])  # second face partly outside, smaller
    boxes = [[20.0, 20.0, 70.0, 80.0], [0.0, 0.0, 30.0, 30.0]]
    np.testing.assert_allclose(
        preprocess(v, boxes, landmarks=lm),
        preprocess(np.ascontiguousarray(v), boxes, landmarks=lm),
        rtol=0,
        atol=1e-6,
    )


def test_bgra_and_gray_views_of_one_image_agree() -> None:
    bgr = make_frame(c=3, seed=4)
    bgra = cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)
    bgra[..., 3] = 17  # alpha is ignored
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    box = [[12.0, 9.0, 100.0, 100.0]]
    a, b, g = preprocess(bgr, box), preprocess(bgra, box), preprocess(gray, box)
    np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(a, g, atol=GRAY_LEVEL)  # gray was rounded by cvtColor


def test_frame_is_not_copied_or_modified() -> None:
    frame = make_frame(c=3)
    before = frame.copy()
    frame.setflags(write=False)  # a read-only frame is fine (read in place)
    preprocess(frame, [[0.0, 0.0, 50.0, 50.0]])
    np.testing.assert_array_equal(frame, before)


# ---------------------------------------------------------------- out buffer reuse


def test_out_reuse_returns_view() -> None:
    frame = make_frame(c=3)
    out = np.full((6, 1, 48, 48), -7.0, np.float32)
    boxes = np.array([[0, 0, 50, 50], [60, 30, 80, 80]], np.float32)
    got = preprocess(frame, boxes, out=out)
    assert got.shape == (2, 1, 48, 48)
    assert np.shares_memory(got, out)
    assert got.__array_interface__["data"][0] == out.__array_interface__["data"][0]
    np.testing.assert_array_equal(got, preprocess(frame, boxes))
    assert (out[2:] == -7.0).all()  # rows past N untouched
    again = preprocess(frame, boxes[::-1], out=out)  # reused: same memory, new content
    assert np.shares_memory(again, out)
    np.testing.assert_array_equal(again[0], preprocess(frame, boxes[1:])[0])
    del out
    assert np.isfinite(again).all()  # the view keeps the buffer alive


def test_out_exact_size_and_single_face_buffer() -> None:
    out = np.empty((1, 1, 48, 48), np.float32)
    got = preprocess(make_frame(c=1), [[1.0, 2.0, 30.0, 30.0]], out=out)
    assert np.shares_memory(got, out)


@pytest.mark.parametrize(
    "out, exc, match",
    [
        (np.zeros((4, 1, 48, 48), np.float64), TypeError, "float32"),
        (np.zeros((4, 1, 48, 48), np.float16), TypeError, "float32"),
        ([[0.0]], TypeError, "out"),
        (np.zeros((4, 48, 48), np.float32), ValueError, "shape"),
        (np.zeros((4, 1, 48, 47), np.float32), ValueError, "shape"),
        (np.zeros((4, 3, 48, 48), np.float32), ValueError, "shape"),
        (np.zeros((1, 1, 48, 48), np.float32), ValueError, "room"),
        (np.zeros((4, 1, 48, 96), np.float32)[..., ::2], ValueError, "contiguous"),
        (np.zeros((8, 1, 48, 48), np.float32)[::2], ValueError, "contiguous"),
    ],
)
def test_bad_out(out, exc, match) -> None:
    with pytest.raises(exc, match=match):
        preprocess(make_frame(), [[0, 0, 10, 10], [5, 5, 10, 10]], out=out)


def test_read_only_out() -> None:
    out = np.zeros((2, 1, 48, 48), np.float32)
    out.setflags(write=False)
    with pytest.raises(ValueError, match="read-only"):
        preprocess(make_frame(), [[0, 0, 10, 10]], out=out)


# ---------------------------------------------------------------- bad frame / boxes


@pytest.mark.parametrize(
    "frame, exc, match",
    [
        (None, TypeError, "None"),
        ([[1, 2], [3, 4]], TypeError, "uint8"),
        ("frame", TypeError, "frame"),
        (np.zeros((10, 10, 3), np.float32), TypeError, "uint8"),
        (np.zeros((10, 10), np.int16), TypeError, "uint8"),
        (np.zeros((10, 10), np.int8), TypeError, "uint8"),
        (np.zeros((10, 10), bool), TypeError, "uint8"),
        (np.zeros(100, np.uint8), ValueError, "ndim"),
        (np.zeros((2, 10, 10, 3), np.uint8), ValueError, "ndim"),
        (np.zeros((10, 10, 2), np.uint8), ValueError, "channels"),
        (np.zeros((10, 10, 5), np.uint8), ValueError, "channels"),
        (np.zeros((0, 10, 3), np.uint8), ValueError, "empty"),
        (np.zeros((10, 0), np.uint8), ValueError, "empty"),
    ],
)
def test_bad_frame(frame, exc, match) -> None:
    with pytest.raises(exc, match=match):
        preprocess(frame, [[0, 0, 10, 10]])


@pytest.mark.parametrize(
    "boxes, exc, match",
    [
        (None, TypeError, "None"),
        (np.array([["a", "b", "c", "d"]]), TypeError, "float"),
        (np.zeros((1, 4), np.complex64), TypeError, "float"),
        (np.zeros((1, 4), bool), TypeError, "float"),
        ([[0, 0, "x", 1]], TypeError, "float"),
        (np.zeros(4), ValueError, r"\(N, 4\)"),
        (np.zeros((2, 3)), ValueError, r"\(N, 4\)"),
        (np.zeros((1, 4, 1)), ValueError, r"\(N, 4\)"),
        ([[0, 0, 10, 10], [0, 0, 10]], TypeError, "float"),
        ([[np.nan, 0, 10, 10]], ValueError, "NaN"),
        ([[0, 0, np.inf, 10]], ValueError, "NaN or inf"),
        ([[0, 0, 10, 10], [0, -np.inf, 10, 10]], ValueError, r"boxes\[1\]"),
        ([[0, 0, 0, 10]], ValueError, "non-positive"),
        ([[0, 0, 10, -3]], ValueError, "non-positive"),
        ([[0, 0, 1e9, 10]], ValueError, "exceeds"),
    ],
)
def test_bad_boxes(boxes, exc, match) -> None:
    with pytest.raises(exc, match=match):
        preprocess(make_frame(), boxes)


def test_bad_landmarks_and_framing() -> None:
    frame, box = make_frame(), [[10, 10, 50, 50]]
    good = np.zeros((1, 5, 2))
    good[0, 1] = (20.0, 0.0)
    with pytest.raises(ValueError, match=r"\(N, 5, 2\)"):
        preprocess(frame, box, landmarks=np.zeros((1, 5)))
    with pytest.raises(ValueError, match=r"\(N, 5, 2\)"):
        preprocess(frame, box, landmarks=np.zeros((2, 5, 2)))
    bad = good.copy()
    bad[0, 3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        preprocess(frame, box, landmarks=bad)
    with pytest.raises(TypeError, match="float"):
        preprocess(frame, box, landmarks=np.full((1, 5, 2), "a"))
    huge = good * 1e7
    with pytest.raises(ValueError, match="too large"):
        preprocess(frame, box, landmarks=huge)
    with pytest.raises(TypeError, match="Framing"):
        preprocess(frame, box, framing="yunet")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="margin"):
        preprocess(frame, box, framing=Framing(margin=0.0))
    with pytest.raises(ValueError, match="finite"):
        preprocess(frame, box, framing=Framing(margin=1.0, offset_x=math.nan))


@pytest.mark.parametrize(
    "box",
    [
        (-1e6, -1e6, 50, 50),
        (1e7, 3e6, 80, 120),
        (-5e8, 100, 300, 300),
        (100, 9e15, 10, 10),
        (240, 10, 20, 20),  # x == W
        (10, 180, 20, 20),  # y == H
        (-20, 10, 20, 20),  # x + w == 0
        (10, -20.5, 20, 20.5),  # y + h == 0
    ],
)
@pytest.mark.parametrize("with_landmarks", [False, True])
def test_boxes_entirely_outside_the_frame_are_rejected(box, with_landmarks: bool) -> None:
    frame = make_frame(c=3, seed=8)  # 240 x 180
    boxes = np.array([[10.0, 10.0, 50.0, 50.0], box])
    lm = None
    if with_landmarks:  # eyes inside the frame: the box is still checked
        lm = np.zeros((2, 5, 2))
        lm[:, 0], lm[:, 1] = (30.0, 30.0), (50.0, 30.0)
    with pytest.raises(ValueError, match=r"boxes\[1\] \(x=.*\) lies entirely outside the frame"):
        preprocess(frame, boxes, landmarks=lm, framing=PLAIN)


def test_outside_box_error_names_the_box_and_frame() -> None:
    with pytest.raises(ValueError) as err:
        preprocess(make_frame(h=40, w=60), [[5000.0, 5000.0, 50.0, 50.0]])
    assert str(err.value) == (
        "boxes[0] (x=5000, y=5000, w=50, h=50) lies entirely outside the frame"
        " (width 60, height 40)"
    )


@pytest.mark.parametrize(
    "box",
    [
        (-899, -899, 900, 900),  # overlaps the top-left pixel only
        (59.5, 39.5, 500, 500),  # overlaps half of the bottom-right pixel only
        (-899, 10, 900, 20),  # one column at the left edge
        (20, 39, 10, 800),  # one row at the bottom edge
    ],
)
def test_far_outside_boxes_touching_the_frame_replicate_the_edge(box) -> None:
    frame = make_frame(h=40, w=60, c=3, seed=8)  # crop side cap: 16 * 60 = 960
    box = tuple(float(v) for v in box)
    got = preprocess(frame, [box], framing=PLAIN)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got[0, 0], reference(frame, box, exact=True), rtol=0, atol=2e-5)


def test_box_touching_a_corner_is_that_corner_pixel() -> None:
    frame = make_frame(h=40, w=60, c=1, seed=8)
    got = preprocess(frame, [[-899.0, -899.0, 900.0, 900.0]], framing=PLAIN)
    np.testing.assert_allclose(got, frame[0, 0] / 255.0, rtol=0, atol=1e-6)


def test_size_cap_allows_big_but_sane_boxes() -> None:
    frame = make_frame(h=20, w=30, c=3)
    got = preprocess(frame, [[-100.0, -100.0, 400.0, 400.0]], framing=PLAIN)  # side 400 <= 16*30
    assert np.isfinite(got).all()


def test_huge_crop_sums_rows_in_chunks() -> None:
    """More than 256 source rows per output row (wide integer sums, rows in groups) stay exact."""
    h = 800
    column = (np.arange(h) * 7 % 256).astype(np.uint8)
    frame = np.repeat(column[:, None], 8, axis=1)  # depends on y only
    side = 12500  # 260 rows per output row; cap is 16 * 800
    y0 = -(side - h) // 2
    got = preprocess(frame, [[0.0, float(y0), float(side), float(side)]], framing=PLAIN)[0, 0]
    rows = column[np.clip(np.arange(y0, y0 + side), 0, h - 1)].astype(np.float32)
    ref = cv2.resize(rows[:, None], (1, 48), interpolation=cv2.INTER_AREA)[:, 0] / 255.0
    np.testing.assert_allclose(got, np.repeat(ref[:, None], 48, axis=1), rtol=0, atol=2e-5)


# ---------------------------------------------------------------- landmarks (eyes level)


def eye_frame(angle_deg: float, eye_dist: float, centre=(200.0, 180.0), size=(360, 420)):
    """White BGR frame with two dark eye discs, tilted by angle_deg; returns frame, landmarks."""
    frame = np.full((*size, 3), 235, np.uint8)
    a = math.radians(angle_deg)
    d = np.array([math.cos(a), math.sin(a)]) * eye_dist / 2
    c = np.array(centre)
    eyes = [c - d, c + d]  # eyes[0] has the smaller x
    for e in eyes:
        cv2.circle(
            frame,
            (round(e[0] * 16), round(e[1] * 16)),
            round(eye_dist * 0.12 * 16),
            (20, 20, 20),
            -1,
            cv2.LINE_AA,
            shift=4,
        )
    nose = c + np.array([-d[1], d[0]]) * 1.2
    lm = np.array([eyes[0], eyes[1], nose, nose + d * 0.8, nose - d * 0.8], np.float64)
    return frame, lm[None]


def dark_centroid(img: np.ndarray, x_lo: int, x_hi: int) -> tuple[float, float]:
    """Centroid (x, y) of the dark pixels of img[:, x_lo:x_hi] (OpenCV pixel-centre coords)."""
    w = np.clip(0.6 - img[:, x_lo:x_hi], 0, None)
    ys, xs = np.mgrid[0 : img.shape[0], x_lo:x_hi]
    return float((w * xs).sum() / w.sum()), float((w * ys).sum() / w.sum())


@pytest.mark.parametrize("angle", [-25.0, 0.0, 18.0])
@pytest.mark.parametrize("eye_dist", [40.0, 130.0])
def test_landmarks_put_eyes_level_at_targets(angle: float, eye_dist: float) -> None:
    framing = FRAMING_YUNET
    frame, lm = eye_frame(angle, eye_dist)
    got = preprocess(frame, [[150.0, 130.0, 100.0, 100.0]], landmarks=lm, framing=framing)[0, 0]
    assert np.isfinite(got).all()
    mid = int(round((framing.eye_left[0] + framing.eye_right[0]) / 2))
    lx, ly = dark_centroid(got, 0, mid)
    rx, ry = dark_centroid(got, mid, 48)
    assert abs(ly - ry) < 0.3  # level
    assert abs(lx - framing.eye_left[0]) < 0.5 and abs(ly - framing.eye_left[1]) < 0.5
    assert abs(rx - framing.eye_right[0]) < 0.5 and abs(ry - framing.eye_right[1]) < 0.5


def test_landmarks_identity_warp_is_exact_translation() -> None:
    frame = make_frame(c=3, seed=12)
    framing = Framing(margin=1.0, eye_left=(14.0, 18.0), eye_right=(32.0, 18.0))
    lm = np.zeros((1, 5, 2))
    lm[0, 0], lm[0, 1] = (14.0 + 100, 18.0 + 60), (32.0 + 100, 18.0 + 60)
    got = preprocess(frame, [[0.0, 0.0, 10.0, 10.0]], landmarks=lm, framing=framing)[0, 0]
    gray = to_gray(frame.astype(np.float32)) / 255.0
    np.testing.assert_allclose(got, gray[60:108, 100:148], atol=2e-5)


def test_landmarks_downscale_averages_like_area() -> None:
    """Scale 3, no rotation: the supersampled warp is close to an area downscale."""
    frame = make_frame(c=1, seed=13)
    framing = Framing(margin=1.0, eye_left=(14.0, 18.0), eye_right=(32.0, 18.0))
    # output (u, v) -> source (3u + 1 + 20, 3v + 1 + 10): output pixel covers source 3x3 block.
    lm = np.zeros((1, 5, 2))
    lm[0, 0] = (3 * 14.0 + 1 + 20, 3 * 18.0 + 1 + 10)
    lm[0, 1] = (3 * 32.0 + 1 + 20, 3 * 18.0 + 1 + 10)
    got = preprocess(frame, [[0.0, 0.0, 10.0, 10.0]], landmarks=lm, framing=framing)[0, 0]
    area = cv2.resize(
        frame[10:154, 20:164].astype(np.float32), (48, 48), interpolation=cv2.INTER_AREA
    )
    np.testing.assert_allclose(got, area / 255.0, atol=1e-4)


@pytest.mark.parametrize("x, y", [(-1e6, -1e6), (1e300, 20.0), (-1e300, 20.0), (1e15, -1e15)])
def test_landmarks_far_outside_replicate_the_right_edge(x: float, y: float) -> None:
    frame = np.zeros((50, 60, 3), np.uint8)
    frame[:, :30] = 200  # left half bright, right half dark
    lm = np.zeros((1, 5, 2))
    lm[0, 0], lm[0, 1] = (x, y), (x + 40, y + 5)
    got = preprocess(frame, [[0.0, 0.0, 10.0, 10.0]], landmarks=lm)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, 200 / 255 if x < 0 else 0.0, atol=1e-5)


# ---------------------------------------------------------------- threads and the GIL


def test_gil_is_released_during_the_work() -> None:
    """A Python thread keeps running while the native call works.

    With the GIL held, the other thread would be blocked for the whole native work: its
    timestamps would show one gap as long as the call. Released, it keeps ticking.
    """
    frame = make_frame(h=1200, w=1200, c=3, seed=1)
    n = 256
    boxes = np.tile(np.array([[0.0, 0.0, 1200.0, 1200.0]], np.float32), (n, 1))
    out = np.empty((n, 1, 48, 48), np.float32)
    stamps: list[float] = []
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            stamps.append(time.perf_counter())

    preprocess(frame, boxes[:1], out=out)  # warm-up
    worker = threading.Thread(target=spin)
    worker.start()
    try:
        while not stamps:
            time.sleep(0.001)
        t0 = time.perf_counter()
        preprocess(frame, boxes, out=out)  # ~0.1 s of native work
        t1 = time.perf_counter()
    finally:
        stop.set()
        worker.join()
    ticks = [t0] + [t for t in stamps if t0 < t < t1] + [t1]
    longest = max(b - a for a, b in zip(ticks, ticks[1:], strict=False))
    assert t1 - t0 > 0.03, "call too short to tell"
    assert longest < 0.5 * (t1 - t0), (longest, t1 - t0)


def test_concurrent_calls_agree() -> None:
    frame = make_frame(h=300, w=400, c=3, seed=6)
    boxes = np.array([[10, 10, 150, 150], [200, 50, 97, 97], [300, 200, 30, 30]], np.float32)
    expected = preprocess(frame, boxes)
    results: list[np.ndarray] = []

    def work() -> None:
        for _ in range(20):
            results.append(preprocess(frame, boxes[::-1])[::-1].copy())

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 60
    for r in results:
        np.testing.assert_array_equal(r, expected)


def test_core_signature_matches_contract() -> None:
    frame = make_frame(c=3)
    boxes = np.array([[10, 10, 60, 60]], np.float32)
    f = FRAMING
    direct = _core.preprocess(
        frame,
        boxes,
        None,
        None,
        f.margin,
        f.offset_x,
        f.offset_y,
        f.eye_left,
        f.eye_right,
        f.input_scale,
        f.input_bias,
    )
    np.testing.assert_array_equal(direct, preprocess(frame, boxes))
