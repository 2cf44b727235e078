"""Face detectors: YuNet at reduced input size (mapped back), Haar fallback, make_detector."""

from __future__ import annotations

import argparse
import shutil
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from ferfast import assets
from ferfast.detect import (
    HaarDetector,
    YuNetDetector,
    check_frame,
)
from ferfast.detectors import make_detector
from ferfast.faces import Face

HAAR_PHOTOS = ("images_1.jpg", "demo_1.png")  # Haar misses the occluded face in demo_2


def iou(a: tuple, b: tuple) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = w * h
    return inter / (aw * ah + bw * bh - inter)


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        (None, TypeError),
        ([[1, 2]], TypeError),
        (np.zeros((8, 8), np.float32), TypeError),
        (np.zeros((8,), np.uint8), ValueError),
        (np.zeros((8, 8, 2), np.uint8), ValueError),
        (np.zeros((8, 8, 5), np.uint8), ValueError),
        (np.zeros((0, 8, 3), np.uint8), ValueError),
        (np.zeros((2, 8, 8, 3), np.uint8), ValueError),
    ],
)
def test_check_frame_rejects(frame, error) -> None:
    with pytest.raises(error):
        check_frame(frame)


def test_make_detector_kinds(no_yunet_env, yunet_path: Path, monkeypatch) -> None:
    assert make_detector(None) is None
    assert make_detector("none") is None
    assert isinstance(make_detector("haar"), HaarDetector)
    assert isinstance(make_detector("auto", yunet_path), YuNetDetector)
    monkeypatch.setenv("FERFAST_YUNET", str(yunet_path))
    det = make_detector("auto", input_size=160)
    assert isinstance(det, YuNetDetector) and det.input_size == 160
    assert isinstance(make_detector("yunet"), YuNetDetector)
    with pytest.raises(ValueError, match="detector must be"):
        make_detector("mtcnn")


def test_auto_and_yunet_use_the_cached_model(
    no_yunet_env, yunet_path: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("FERFAST_HOME", str(tmp_path))
    shutil.copyfile(yunet_path, tmp_path / assets.YUNET.name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a verified cached model: no warning, no network
        for kind in ("auto", "yunet"):
            det = make_detector(kind, input_size=160)
            assert isinstance(det, YuNetDetector) and det.input_size == 160
            assert det.model_path == tmp_path / assets.YUNET.name


def test_auto_without_a_model_warns_and_uses_haar(no_yunet_env) -> None:
    # The session cache is empty and downloads are off (conftest.hermetic_assets).
    with pytest.warns(UserWarning, match="Haar cascade.*ferfast download") as record:
        det = make_detector("auto", input_size=160)
    assert isinstance(det, HaarDetector) and det.input_size == 160
    assert len(record) == 1


def test_yunet_without_a_model_names_every_fix(no_yunet_env) -> None:
    with pytest.raises(assets.AssetError) as info:
        make_detector("yunet")
    message = str(info.value)
    for fix in ("ferfast download", "detector_model=", "--detector-model", "FERFAST_YUNET"):
        assert fix in message
    assert isinstance(info.value, RuntimeError)


def test_yunet_missing_or_corrupt_names_file(
    tmp_path: Path, yunet_path: Path, tiny_model: Path, monkeypatch
) -> None:
    with pytest.raises(FileNotFoundError, match="missing_yunet.onnx"):
        make_detector("yunet", tmp_path / "missing_yunet.onnx")
    monkeypatch.setenv("FERFAST_YUNET", str(tmp_path / "env_yunet.onnx"))
    with pytest.raises(FileNotFoundError, match="env_yunet.onnx"):  # no silent Haar fallback
        make_detector("auto")
    corrupt = tmp_path / "corrupt_yunet.onnx"
    corrupt.write_bytes(yunet_path.read_bytes()[:2000])
    with pytest.raises(ValueError, match="corrupt_yunet.onnx"):
        YuNetDetector(corrupt)
    with pytest.raises(ValueError, match="tiny.onnx"):  # valid ONNX, but not a face detector
        YuNetDetector(tiny_model)


def test_detector_arguments_validated(yunet_path: Path) -> None:
    with pytest.raises(ValueError, match="input_size"):
        YuNetDetector(yunet_path, input_size=8)
    with pytest.raises(TypeError, match="input_size"):
        HaarDetector(input_size=320.5)
    with pytest.raises(ValueError, match="score_threshold"):
        YuNetDetector(yunet_path, score_threshold=1.5)
    with pytest.raises(FileNotFoundError, match="nope.xml"):
        HaarDetector(cascade_path="nope.xml")


@pytest.mark.parametrize("name", ["images_1.jpg", "demo_1.png", "demo_2.png"])
def test_yunet_finds_one_face(photos: dict, yunet_path: Path, name: str) -> None:
    frame = photos[name]
    dets = YuNetDetector(yunet_path).detect(frame)
    assert len(dets) == 1
    det = dets[0]
    assert isinstance(det, Face)
    x, y, w, h = det.box
    assert det.score >= 0.6
    assert 0.25 * frame.shape[1] < w < frame.shape[1] and h > 0.25 * frame.shape[0]
    assert det.landmarks is not None and det.landmarks.shape == (5, 2)
    assert det.landmarks.dtype == np.float32
    lx, ly = det.landmarks[:, 0], det.landmarks[:, 1]
    assert ((lx > x) & (lx < x + w) & (ly > y) & (ly < y + h)).all()
    assert lx[0] < lx[1]  # index 0: the eye with the smaller x in an upright face
    assert ly[2] > ly[:2].max() and ly[3:].min() > ly[2]  # eyes above nose above mouth


@pytest.mark.parametrize("name", HAAR_PHOTOS)
def test_haar_finds_one_face_matching_yunet(photos: dict, yunet_path: Path, name: str) -> None:
    frame = photos[name]
    haar = HaarDetector().detect(frame)
    assert len(haar) == 1
    assert haar[0].landmarks is None and haar[0].score == 1.0
    yunet = YuNetDetector(yunet_path).detect(frame)
    assert iou(haar[0].box, yunet[0].box) > 0.5


def test_boxes_map_back_to_frame_pixels(photos: dict, yunet_path: Path) -> None:
    """Detection at two input sizes agrees in frame pixels; resizing the frame scales boxes."""
    frame = photos["images_1.jpg"]
    small = YuNetDetector(yunet_path, input_size=240).detect(frame)[0]
    large = YuNetDetector(yunet_path, input_size=480).detect(frame)[0]
    assert iou(small.box, large.box) > 0.85
    np.testing.assert_allclose(small.landmarks, large.landmarks, atol=0.08 * large.box[2])
    doubled = cv2.resize(frame, None, fx=2, fy=2, interpolation=cv2.INTER_LINEAR)
    det2 = YuNetDetector(yunet_path, input_size=320).detect(doubled)[0]
    ref = YuNetDetector(yunet_path, input_size=320).detect(frame)[0]
    np.testing.assert_allclose(np.array(det2.box) / 2, ref.box, atol=0.03 * ref.box[2])
    haar2 = HaarDetector(input_size=320).detect(doubled)[0]
    haar1 = HaarDetector(input_size=320).detect(frame)[0]
    assert iou(tuple(np.array(haar2.box) / 2), haar1.box) > 0.8


def test_yunet_backends_agree(photos: dict, yunet_path: Path) -> None:
    """ONNX Runtime (default) and cv2.FaceDetectorYN decode the same network alike: one face per
    photo, two side by side (the NMS path), none in a blank frame, boxes to 1e-2 px."""
    pair = np.concatenate([photos["images_1.jpg"], photos["images_1.jpg"][:, ::-1]], axis=1)
    blank = np.full((240, 320, 3), 127, np.uint8)
    for size in (160, 320):
        ort = YuNetDetector(yunet_path, input_size=size)
        ocv = YuNetDetector(yunet_path, input_size=size, backend="opencv")
        assert ort.backend == "onnxruntime" and "onnxruntime" in repr(ort)
        for frame in [*photos.values(), pair, blank]:
            a, b = ort.detect(frame), ocv.detect(frame)
            assert len(a) == len(b)
            for x, y in zip(a, b, strict=True):
                np.testing.assert_allclose(x.box, y.box, atol=1e-2)
                np.testing.assert_allclose(x.landmarks, y.landmarks, atol=1e-2)
                assert x.score == pytest.approx(y.score, abs=1e-4)
        assert len(ort.detect(pair)) == 2 and len(ort.detect(blank)) == 0
    with pytest.raises(ValueError, match="backend"):
        YuNetDetector(yunet_path, backend="dnn")


@pytest.mark.parametrize("detector", ["yunet", "haar"])
def test_gray_bgra_and_strided_frames(photos: dict, yunet_path: Path, detector: str) -> None:
    det = make_detector(detector, yunet_path)
    frame = photos["demo_1.png"]  # a non-contiguous view of the sheet
    assert not frame.flags.c_contiguous
    ref = det.detect(np.ascontiguousarray(frame))
    assert len(ref) == 1
    assert det.detect(frame)[0].box == ref[0].box
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    bgra = cv2.cvtColor(frame, cv2.COLOR_BGR2BGRA)
    for variant in (gray, bgra):
        found = det.detect(variant)
        assert len(found) == 1 and iou(found[0].box, ref[0].box) > 0.8


@pytest.mark.parametrize("detector", ["yunet", "haar"])
def test_no_face_in_blank_frame(yunet_path: Path, detector: str) -> None:
    det = make_detector(detector, yunet_path)
    assert len(det.detect(np.full((240, 320, 3), 127, np.uint8))) == 0
    assert len(det.detect(np.zeros((20, 30), np.uint8))) == 0  # tiny frame, upscaled, no crash


def test_the_registry_names_every_detector_with_its_framing(yunet_path: Path) -> None:
    from ferfast.argtypes import add_engine_arguments
    from ferfast.detectors import DETECTOR_NAMES, DETECTORS

    assert DETECTOR_NAMES == ("auto", *DETECTORS) and set(DETECTORS) == {"yunet", "haar"}
    for name, kind in DETECTORS.items():
        det = make_detector(name, yunet_path)
        assert det is not None and det.framing == kind.framing, name
    parser = argparse.ArgumentParser()
    add_engine_arguments(parser)
    (action,) = [a for a in parser._actions if a.dest == "detector"]
    assert tuple(action.choices) == DETECTOR_NAMES
    with pytest.raises(ValueError, match="'auto', 'yunet', 'haar'"):
        make_detector("mtcnn")


def test_a_detector_object_must_say_how_its_boxes_are_framed(tiny_model: Path) -> None:
    from ferfast import Engine

    class NoFraming:
        def detect(self, frame: np.ndarray) -> list[Face]:
            return [Face((1.0, 1.0, 10.0, 10.0))]

    with pytest.raises(TypeError, match="framing"):
        Engine(tiny_model, detector=NoFraming())
