"""Several sources in one ferfast-stream process: per-source events and summaries, one model
run per step, and a source that fails while the others go on."""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
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

from ferfast.sinks import JsonlSink
from ferfast.stream.cli import main
from ferfast.stream.pipeline import Lane, StreamLoop
from ferfast.stream.sources import FrameSource, SourceError, parse_source
from ferfast.stream.tracking import IouTracker


def test_two_files_in_one_process(tiny_model: Path, tmp_path: Path) -> None:
    a = write_face_video(tmp_path / "a.mp4", 30)
    b = write_face_video(tmp_path / "b.mp4", 18)
    summary = tmp_path / "summary.json"
    args = ["--source", str(a), "--source", str(b), *engine_args(tiny_model), "-q"]
    args += ["--jsonl", str(tmp_path / "ev.jsonl"), "--summary-json", str(summary)]
    assert main([*args, "--no-progress"]) == 0
    events = read_jsonl(tmp_path / "ev.jsonl")
    assert all(list(e) == ["source", "frame", "time", "faces"] for e in events)
    for source, n in ((str(a), 30), (str(b), 18)):
        mine = [e for e in events if e["source"] == source]
        assert [e["frame"] for e in mine] == list(range(n))
        assert sum(1 for e in mine if e["faces"]) >= 0.9 * n
    data = json.loads(summary.read_text())
    assert data["frames"] == 48 and data["reason"] == "end"
    assert [s["frames"] for s in data["sources"]] == [30, 18]
    assert [s["source"] for s in data["sources"]] == [str(a), str(b)]
    assert all(s["error"] is None and s["detections"] >= 6 for s in data["sources"])


def test_a_fullscreen_kiosk_takes_one_source(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--source", "a.mp4", "--source", "b.mp4", "--fullscreen"])
    assert exc.value.code == 2
    assert "--fullscreen" in capsys.readouterr().err


def test_every_source_gets_its_own_video_and_crops(tiny_model: Path, tmp_path: Path) -> None:
    a = write_face_video(tmp_path / "a.mp4", 12)
    b = write_face_video(tmp_path / "b.mp4", 8)
    args = ["--source", str(a), "--source", str(b), *engine_args(tiny_model), "-q"]
    args += ["--output", str(tmp_path / "out.avi"), "--save-crops", str(tmp_path / "crops")]
    assert main([*args, "--no-progress", "--jsonl", str(tmp_path / "ev.jsonl")]) == 0
    for i, n in ((0, 12), (1, 8)):
        cap = cv2.VideoCapture(str(tmp_path / f"out-{i}.avi"))
        try:
            assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == n
        finally:
            cap.release()
        assert len(list((tmp_path / "crops" / str(i)).glob("*.jpg"))) >= 0.8 * n
    assert not (tmp_path / "out.avi").exists()


def test_a_failing_source_does_not_stall_the_others(tmp_path: Path) -> None:
    opened = []

    def camera(spec, **kw):
        opened.append(1)
        if len(opened) == 1:
            return NumberedCapture(5, delay=0.005)  # 5 frames, then the camera is gone
        raise SourceError("connection refused")

    cam = FrameSource(
        parse_source("rtsp://cam"), backoff=(0.2, 0.2), max_reconnects=2, opener=camera
    )
    clip = FrameSource(
        parse_source("clip.mp4"),
        opener=lambda spec, **kw: NumberedCapture(150, start=100, delay=0.004),
    )
    engine = FakeEngine()
    lanes = [Lane(s.open().start(), IouTracker(FAKE_EMOTIONS)) for s in (cam, clip)]
    jsonl = JsonlSink(tmp_path / "ev.jsonl", FAKE_EMOTIONS)
    loop = StreamLoop(engine, lanes, [jsonl], detect_every=2)
    try:
        result = loop.run()
    finally:
        cam.stop()
        clip.stop()
        jsonl.close()
    assert result.reason == "end"
    assert result.errors[0] is not None and "giving up" in result.errors[0]
    assert result.errors[1] is None
    cam_summary, clip_summary = result.sources
    assert cam_summary.frames_read == 5 and cam_summary.frames + cam_summary.dropped == 5
    assert clip_summary.frames == 150 and clip_summary.dropped == 0
    assert result.summary.frames == cam_summary.frames + 150
    events = read_jsonl(tmp_path / "ev.jsonl")
    cam_times = [e["time"] for e in events if e["source"] == "rtsp://cam"]
    clip_times = [e["time"] for e in events if e["source"] == "clip.mp4"]
    assert [e["frame"] for e in events if e["source"] == "clip.mp4"] == list(range(150))
    # While the camera was away (two 0.2 s backoffs), the clip went on at its own pace.
    during = [t for t in clip_times if cam_times[-1] < t < cam_times[-1] + 0.35]
    assert len(during) >= 30


class _FacesCostTime(FakeEngine):
    """Frames numbered 100 and up have no face; a batch takes 10 ms per face it classifies."""

    def detect(self, image):
        return [] if int(image[0, 0, 0]) >= 100 else super().detect(image)

    def predict_batch(self, images, boxes, *, crops: bool = False):
        time.sleep(0.01 * sum(len(b) for b in boxes))
        return super().predict_batch(images, boxes, crops=crops)


def test_per_source_stages_split_the_shared_model_run_by_faces() -> None:
    faces = FrameSource(parse_source("a.mp4"), opener=lambda spec, **kw: NumberedCapture(12))
    empty = FrameSource(
        parse_source("b.mp4"), opener=lambda spec, **kw: NumberedCapture(12, start=100)
    )
    lanes = [Lane(s.open().start(), IouTracker(FAKE_EMOTIONS)) for s in (faces, empty)]
    try:
        result = StreamLoop(_FacesCostTime(), lanes, detect_every=2).run()
    finally:
        faces.stop()
        empty.stop()
    stages = [{s.name: s for s in summary.stages} for summary in result.sources]
    for lane in stages:  # every stage of the single-source loop, once per frame
        for name in ("read", "wait", "classify", "infer", "track", "output", "latency"):
            assert lane[name].count == 12, name
    # Every 2nd frame; the second lane at its own phase: its frame 0, then 1, 3, 5, ..., 11.
    assert [lane["detect"].count for lane in stages] == [6, 7]
    # The frames with a face carry the 10 ms of their model run; the faceless ones none of it.
    assert stages[0]["classify"].p50_ms >= 9.5
    assert stages[1]["classify"].p50_ms < 2.0
    total = {s.name: s for s in result.summary.stages}
    assert total["classify"].count == 24
    mean = (stages[0]["classify"].mean_ms + stages[1]["classify"].mean_ms) / 2
    assert total["classify"].mean_ms == pytest.approx(mean)


def test_a_lane_keeps_the_single_stream_cadence_and_early_redetect() -> None:
    other = np.random.default_rng(0).random((48, 48), dtype=np.float32)
    engine = FakeEngine(look=lambda n: other if n >= 10 else FakeEngine().look(n))
    source = FrameSource(parse_source("a.mp4"), opener=lambda spec, **kw: NumberedCapture(20))
    lane = Lane(source.open().start(), IouTracker(FAKE_EMOTIONS))
    try:
        result = StreamLoop(engine, [lane], detect_every=4).run()
    finally:
        source.stop()
    # As in the single-source loop: frame 10's carried face no longer looks like frame 8's.
    assert sorted(engine.detected) == [0, 4, 8, 10, 12, 16]
    assert result.sources[0].redetects == 1 and result.summary.detections == 6


def test_lanes_detect_at_their_own_phase() -> None:
    """Lane k detects on its first frame, then every N-th counted from k: the sources' detector
    runs, which take turns on one detector, spread over the period instead of coinciding."""
    engine = FakeEngine()
    sources = [
        FrameSource(
            parse_source(f"{k}.mp4"),
            opener=lambda spec, k=k, **kw: NumberedCapture(12, start=20 * k),
        )
        for k in range(3)
    ]
    lanes = [Lane(s.open().start(), IouTracker(FAKE_EMOTIONS)) for s in sources]
    try:
        result = StreamLoop(engine, lanes, detect_every=4, redetect_threshold=0.0).run()
    finally:
        for s in sources:
            s.stop()
    assert result.reason == "end"
    by_lane = [sorted(n - 20 * k for n in engine.detected if n // 20 == k) for k in range(3)]
    assert by_lane == [[0, 4, 8], [0, 3, 7, 11], [0, 2, 6, 10]]
