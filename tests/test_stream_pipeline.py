"""The stream loop's detector cadence (--detect-every), early re-detects and in-order output with
the detector on its own thread; Engine.predict(crops=True); faces found on a real video."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
from stream_support import (
    FAKE_EMOTIONS,
    FakeEngine,
    NumberedCapture,
    engine_args,
    read_jsonl,
    write_face_video,
)

import ferfast
from ferfast.faces import Face
from ferfast.framing import FRAMING_YUNET
from ferfast.preprocess import preprocess
from ferfast.sinks import JsonlSink
from ferfast.stream.cli import main
from ferfast.stream.pipeline import Lane, RunResult, StreamLoop
from ferfast.stream.sources import FrameSource, parse_source
from ferfast.stream.tracking import DEFAULT_DETECT_EVERY, IouTracker


def run_loop(
    engine: FakeEngine, n: int, every: int, tmp_path: Path, size: tuple[int, int] = (4, 4)
) -> tuple[RunResult, list[dict]]:
    """``n`` numbered frames of a file source through the loop; the result and the events."""
    capture = NumberedCapture(n, size=size)
    source = FrameSource(parse_source("clip.mp4"), opener=lambda spec, **kw: capture).start()
    jsonl = JsonlSink(tmp_path / "ev.jsonl", FAKE_EMOTIONS, force=True)
    tracker = IouTracker(FAKE_EMOTIONS, smoothing=1.0)
    loop = StreamLoop(engine, [Lane(source, tracker)], [jsonl], detect_every=every)
    try:
        result = loop.run()
    finally:
        source.stop()
        jsonl.close()
    return result, read_jsonl(tmp_path / "ev.jsonl")


@pytest.mark.parametrize("every", [1, 2, 3, 5])
def test_detector_runs_on_every_nth_frame(every: int, tmp_path) -> None:
    engine = FakeEngine()
    result, events = run_loop(engine, 23, every, tmp_path)
    assert engine.detected == list(range(0, 23, every))
    assert result.summary.detections == math.ceil(23 / every)
    assert result.summary.redetects == 0
    # Every frame is classified, on the carried box between detections.
    assert [e["frame"] for e in events] == list(range(23))
    assert all(len(e["faces"]) == 1 and e["faces"][0]["box"] == [1, 1, 2, 2] for e in events)
    assert len({e["faces"][0]["id"] for e in events}) == 1


def test_a_face_that_changes_is_redetected_at_once(tmp_path) -> None:
    other = np.random.default_rng(0).random((48, 48), dtype=np.float32)
    engine = FakeEngine(look=lambda n: other if n >= 10 else FakeEngine().look(n))
    result, events = run_loop(engine, 20, 4, tmp_path)
    # Cadence 0, 4, 8, 12, 16; frame 10's carried face no longer looks like frame 8's: the
    # detector runs on frame 10 itself, and the cadence goes on.
    assert sorted(engine.detected) == [0, 4, 8, 10, 12, 16]
    assert result.summary.redetects == 1 and result.summary.detections == 6
    ids = [e["faces"][0]["id"] for e in events]
    assert ids[:10] == [ids[0]] * 10 and ids[10:] == [ids[10]] * 10 and ids[10] != ids[0]


def test_carried_boxes_move_at_the_measured_speed(tmp_path) -> None:
    engine = FakeEngine(box=lambda n: (2.0 * n, 10.0, 20.0, 20.0))
    _, events = run_loop(engine, 12, 4, tmp_path, size=(64, 64))
    xs = [e["faces"][0]["box"][0] for e in events]
    # No speed before the second detection; then 2 px a frame, from (8 - 0) / 4.
    assert xs == [0, 0, 0, 0, 8, 10, 12, 14, 16, 18, 20, 22]
    assert sorted(engine.detected) == [0, 4, 8]


def test_a_carried_box_leaving_the_frame_is_redetected(tmp_path) -> None:
    engine = FakeEngine(box=lambda n: (4.0 * n, 10.0, 20.0, 20.0))
    _, events = run_loop(engine, 16, 2, tmp_path, size=(64, 64))
    # Detected on even frames; frame 15's carried box (x 56 + 4) has its centre (70) past the
    # right edge (64): the detector runs on frame 15 itself.
    assert sorted(engine.detected) == [*range(0, 16, 2), 15]
    assert [e["faces"][0]["box"][0] for e in events][13:] == [52, 56, 60]


def test_redetect_check_off_carries_a_changed_face(tmp_path) -> None:
    other = np.random.default_rng(0).random((48, 48), dtype=np.float32)
    engine = FakeEngine(look=lambda n: other if n >= 10 else FakeEngine().look(n))
    capture = NumberedCapture(20)
    source = FrameSource(parse_source("clip.mp4"), opener=lambda spec, **kw: capture).start()
    loop = StreamLoop(
        engine, [Lane(source, IouTracker(FAKE_EMOTIONS))], detect_every=4, redetect_threshold=0.0
    )
    loop.run()
    source.stop()
    assert engine.detected == [0, 4, 8, 12, 16]


def test_no_face_means_nothing_to_carry(tmp_path) -> None:
    engine = FakeEngine()
    engine.detect = lambda image: engine.detected.append(int(image[0, 0, 0])) or []
    result, events = run_loop(engine, 9, 3, tmp_path)
    assert engine.detected == [0, 3, 6]
    assert all(e["faces"] == [] for e in events) and result.summary.faces == 0


def test_output_stays_in_order_with_overlapped_stages(tmp_path) -> None:
    """The detector thread's cost varies per frame; events still come out in frame order, each
    with its own frame's probabilities."""
    delays = random.Random(1)
    engine = FakeEngine(delay=lambda n: delays.choice([0.0, 0.0, 0.001, 0.004]))
    result, events = run_loop(engine, 200, 2, tmp_path)
    assert result.reason == "end" and result.summary.frames == 200
    assert [e["frame"] for e in events] == list(range(200))
    labels = [e["faces"][0]["emotion"] for e in events]
    assert labels == [FAKE_EMOTIONS[(i % 256) % 7] for i in range(200)]
    stages = {s.name: s.count for s in result.summary.stages}
    assert stages["detect"] == 100 and stages["classify"] == 200


def test_bad_cadence_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="detect_every"):
        StreamLoop(FakeEngine(), [Lane(None, IouTracker(FAKE_EMOTIONS))], detect_every=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one source"):
        StreamLoop(FakeEngine(), [])
    with pytest.raises(SystemExit):
        main(["--source", "x.mp4", "--detect-every", "0"])


def test_predict_hands_back_the_crops_the_model_saw(tiny_model, photos) -> None:
    engine = ferfast.Engine(model=tiny_model, detector=None, threads=1)
    frame = photos["images_1.jpg"]
    boxes = np.array([[40.0, 30.0, 120.0, 140.0], [10.0, 20.0, 60.0, 60.0]])
    plain = engine.predict(frame, boxes=boxes)
    assert all(r.crop is None for r in plain)
    results = engine.predict(frame, boxes=boxes, crops=True)
    want = preprocess(frame, boxes, framing=engine.framing)[:, 0]
    got = np.stack([r.crop for r in results])
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(results[0].probs, plain[0].probs)
    # The crops are the caller's: the next call does not overwrite them.
    engine.predict(frame[::-1].copy(), boxes=boxes, crops=True)
    np.testing.assert_array_equal(np.stack([r.crop for r in results]), want)


def test_predict_batch_hands_back_crops(tiny_model, photos) -> None:
    class OneBox:
        framing = FRAMING_YUNET

        def detect(self, frame: np.ndarray) -> list[Face]:
            return [Face((40.0, 30.0, 120.0, 140.0), 0.8)]

    engine = ferfast.Engine(model=tiny_model, detector=OneBox(), threads=1)
    frame = photos["images_1.jpg"]
    want = preprocess(frame, np.array([[40.0, 30.0, 120.0, 140.0]]), framing=engine.framing)
    out = engine.predict_batch([frame, frame[:, ::-1]], crops=True)
    np.testing.assert_array_equal(out[0][0].crop, want[0, 0])
    assert out[1][0].crop is not None and not np.array_equal(out[1][0].crop, want[0, 0])
    assert engine.predict_batch([frame])[0][0].crop is None


def test_faces_found_in_99_percent_of_real_video_frames(tmp_path) -> None:
    """A real face moving across a 640x480 video, default cadence, bundled "fast" model."""
    n = 120
    video = write_face_video(tmp_path / "face.mp4", n)
    summary = tmp_path / "summary.json"
    args = ["--source", str(video), *engine_args(ferfast.model_path("fast"), 320)]
    args += ["--jsonl", str(tmp_path / "ev.jsonl"), "--summary-json", str(summary), "-q"]
    assert main([*args, "--no-progress"]) == 0
    events = read_jsonl(tmp_path / "ev.jsonl")
    assert [e["frame"] for e in events] == list(range(n))
    found = sum(1 for e in events if e["faces"])
    assert found >= 0.99 * n
    data = json.loads(summary.read_text())
    assert data["detections"] == math.ceil(n / DEFAULT_DETECT_EVERY) + data["redetects"]
    assert len({e["faces"][0]["id"] for e in events if e["faces"]}) == 1


def test_predict_batch_with_boxes_skips_the_detector(tiny_model, photos) -> None:
    engine = ferfast.Engine(model=tiny_model, detector=None, threads=1)
    a, b = photos["images_1.jpg"], photos["demo_1.png"]
    boxes = [[Face((40.0, 30.0, 120.0, 140.0), 0.8)], [], np.array([[5.0, 5.0, 50, 60]])]
    out = engine.predict_batch([a, b, b], boxes, crops=True)
    assert [len(r) for r in out] == [1, 0, 1]
    single = engine.predict(b, boxes=boxes[2], crops=True)[0]
    np.testing.assert_allclose(out[2][0].probs, single.probs, atol=1e-6)
    np.testing.assert_array_equal(out[2][0].crop, single.crop)
    assert out[0][0].score == 0.8 and out[2][0].score == 1.0
    with pytest.raises(ValueError, match="one entry per frame"):
        engine.predict_batch([a, b], boxes)


@pytest.mark.parametrize("check", [0.7, 0.0])
def test_crops_are_asked_for_only_when_an_appearance_check_reads_them(check, tmp_path) -> None:
    # Without crops the Engine keeps its fastest path (e.g. GPU preprocessing, no copies).
    engine = FakeEngine()
    capture = NumberedCapture(8)
    source = FrameSource(parse_source("clip.mp4"), opener=lambda spec, **kw: capture).start()
    tracker = IouTracker(FAKE_EMOTIONS, appearance_threshold=check)
    try:
        StreamLoop(engine, [Lane(source, tracker)], detect_every=2, redetect_threshold=check).run()
    finally:
        source.stop()
    assert engine.crops_asked == {check > 0}
