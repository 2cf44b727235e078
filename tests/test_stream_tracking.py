"""Track ids across a hard cut: the tracker's appearance check on the faces' 48x48 crops."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from stream_support import SHARED, YUNET, engine_args, read_jsonl, write_video

import ferfast
from ferfast.preprocess import preprocess
from ferfast.stream.cli import main
from ferfast.stream.tracking import IouTracker, appearance, iou

PHOTOS = SHARED / "data" / "photos"
HALF = 12  # frames per person
DETECTOR_SIZE = 240  # YuNet at 160 misses the second face (hand over mouth) in some frames


@pytest.fixture(scope="module")
def spliced_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MJPG .avi: HALF frames of one real face, then HALF of another person at the same place.

    The man of images_1.jpg, then the woman of demo_2.png's photo panel, each drifting 2 px a
    frame; the second photo is shifted so that the two detected faces are centred alike.
    """
    man = cv2.imread(str(PHOTOS / "images_1.jpg"), cv2.IMREAD_COLOR)
    sheet = cv2.imread(str(PHOTOS / "demo_2.png"), cv2.IMREAD_COLOR)
    if man is None or sheet is None or not YUNET.is_file():
        pytest.skip(f"shared photos or YuNet model missing under {SHARED}")
    woman = sheet[45:426, 57:368]  # the photo inside the sheet's left panel
    frames = []
    for i in range(2 * HALF):
        face, (x, y) = (man, (220, 120)) if i < HALF else (woman, (245, 170))
        frame = np.full((480, 640, 3), (90, 110, 120), np.uint8)
        frame[y : y + 240, x + 2 * i : x + 2 * i + 200] = cv2.resize(
            face, (200, 240), interpolation=cv2.INTER_AREA
        )
        frames.append(frame)
    return write_video(tmp_path_factory.mktemp("cut") / "cut.avi", frames)


def read_frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


def track_ids(
    engine: ferfast.Engine, frames: list[np.ndarray], tracker: IouTracker
) -> list[int | None]:
    """The id of the single face in each frame, tracked with the faces' model-input crops."""
    ids = []
    for frame in frames:
        results = engine.predict(frame)
        assert len(results) == 1
        marks = np.stack([r.landmarks for r in results])
        boxes = [r.box for r in results]
        crops = preprocess(frame, boxes, landmarks=marks, framing=engine.framing)
        ids.append(tracker.update(results, crops)[0].track_id)
    return ids


def test_appearance_descriptor() -> None:
    rng = np.random.default_rng(0)
    crops = cv2.GaussianBlur(rng.random((48, 48), dtype=np.float32), (0, 0), 4)[None]
    d = appearance(crops)
    assert d.shape == (1, 36) and d.dtype == np.float32
    assert float(d[0] @ d[0]) == pytest.approx(1.0, abs=1e-5)
    # invariant to brightness and contrast (gain and offset), and to the (N, 1, 48, 48) layout
    np.testing.assert_allclose(appearance(3 * crops[:, None] - 0.5), d, atol=1e-5)
    # a flat crop has no appearance: a zero row
    assert not appearance(np.full((1, 48, 48), 0.4, np.float32)).any()
    with pytest.raises(ValueError, match=r"\(N, 48, 48\)"):
        appearance(np.zeros((2, 24, 24)))


def test_tracker_appearance_arguments() -> None:
    emotions = ferfast.EMOTIONS
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="appearance_threshold"):
            IouTracker(emotions, appearance_threshold=bad)
    assert IouTracker(emotions).uses_crops
    assert not IouTracker(emotions, appearance_threshold=0.0).uses_crops
    assert not IouTracker(emotions, enabled=False).uses_crops

    face = ferfast.FaceResult((0.0, 0.0, 10.0, 10.0), 1.0, None, np.full(7, 1 / 7), "angry")
    with pytest.raises(ValueError, match="2 crops for 1 faces"):
        IouTracker(emotions).update([face], np.zeros((2, 48, 48), np.float32))


def test_tracker_new_id_at_the_cut(spliced_video: Path, tiny_model: Path) -> None:
    frames = read_frames(spliced_video)
    assert len(frames) == 2 * HALF
    engine = ferfast.Engine(tiny_model, detector_model=YUNET, detector_size=DETECTOR_SIZE)
    # The boxes overlap strongly across the cut: IoU alone keeps the first person's id.
    before, after = (engine.predict(frames[i])[0].box for i in (HALF - 1, HALF))
    assert iou(before, after) > 0.5
    iou_only = track_ids(engine, frames, IouTracker(engine.emotions, appearance_threshold=0.0))
    assert set(iou_only) == {1}

    ids = track_ids(engine, frames, IouTracker(engine.emotions))
    assert ids == [1] * HALF + [2] * HALF


def test_cli_new_id_at_the_cut(spliced_video: Path, tiny_model: Path, tmp_path: Path) -> None:
    events = tmp_path / "ev.jsonl"
    args = ["--source", str(spliced_video), *engine_args(tiny_model, DETECTOR_SIZE)]
    assert main([*args, "--jsonl", str(events), "-q"]) == 0
    ids = [[face["id"] for face in event["faces"]] for event in read_jsonl(events)]
    assert ids == [[1]] * HALF + [[2]] * HALF

    again = [*args, "--jsonl", str(events), "--force", "-q", "--appearance-threshold", "0"]
    assert main(again) == 0
    assert [[f["id"] for f in e["faces"]] for e in read_jsonl(events)] == [[1]] * (2 * HALF)
