"""Several sources in one ferfast-stream process: per-source events and summaries, one model
run per step, and a source that fails while the others go on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from stream_support import (
    FAKE_EMOTIONS,
    FakeEngine,
    NumberedCapture,
    engine_args,
    read_jsonl,
    write_face_video,
)

from ferfast.stream.cli import main
from ferfast.stream.events import JsonlWriter
from ferfast.stream.multi import Lane, MultiStreamLoop
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
    for source, n in ((0, 30), (1, 18)):
        mine = [e for e in events if e["source"] == source]
        assert [e["frame"] for e in mine] == list(range(n))
        assert sum(1 for e in mine if e["faces"]) >= 0.9 * n
    data = json.loads(summary.read_text())
    assert data["frames"] == 48 and data["reason"] == "end"
    assert [s["frames"] for s in data["sources"]] == [30, 18]
    assert [s["source"] for s in data["sources"]] == [str(a), str(b)]
    assert all(s["error"] is None and s["detections"] >= 6 for s in data["sources"])


@pytest.mark.parametrize("flag", [["--output", "x.mp4"], ["--display"], ["--save-crops", "d"]])
def test_single_video_outputs_are_refused_with_several_sources(flag, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--source", "a.mp4", "--source", "b.mp4", *flag])
    assert exc.value.code == 2
    assert flag[0] in capsys.readouterr().err


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
    jsonl = JsonlWriter(tmp_path / "ev.jsonl", FAKE_EMOTIONS)
    loop = MultiStreamLoop(engine, lanes, jsonl, detect_every=2)
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
    cam_times = [e["time"] for e in events if e["source"] == 0]
    clip_times = [e["time"] for e in events if e["source"] == 1]
    assert [e["frame"] for e in events if e["source"] == 1] == list(range(150))
    # While the camera was away (two 0.2 s backoffs), the clip went on at its own pace.
    during = [t for t in clip_times if cam_times[-1] < t < cam_times[-1] + 0.35]
    assert len(during) >= 30
