"""Prometheus metrics of ferfast-stream: scraped over loopback HTTP, they agree with the run."""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path

import pytest
from stream_support import (
    FAKE_EMOTIONS,
    FakeEngine,
    NumberedCapture,
    cli_command,
    cli_env,
    engine_args,
    free_port,
    wait_for,
    write_face_video,
)

from ferfast.stream.pipeline import Lane, StreamLoop
from ferfast.stream.sources import FrameSource, parse_source
from ferfast.stream.tracking import IouTracker

prometheus_client = pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from ferfast.stream.metrics import EXPORTED_STAGES, QueueStats, StreamCollector, serve  # noqa: E402


def scrape(port: int) -> dict[str, dict[tuple, float]]:
    """``{sample name: {labels as sorted tuple: value}}`` of http://127.0.0.1:port/metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def test_metrics_match_the_run_summary() -> None:
    sources = [
        FrameSource(parse_source("a.mp4"), opener=lambda spec, **kw: NumberedCapture(30)),
        FrameSource(  # a camera that gives up once its 12 frames are over
            parse_source("rtsp://u:pw@cam/s"),
            max_reconnects=0,
            opener=lambda spec, **kw: NumberedCapture(12),
        ),
    ]
    lanes = [Lane(s.open(), IouTracker(FAKE_EMOTIONS)) for s in sources]
    queue = QueueStats(published=40, dropped=2, depth=0)
    collector = StreamCollector(lanes, {"version": "x", "model": "m", "backend": "cpu"},
                                [lambda: {"a.mp4": queue}])  # fmt: skip
    server = serve(collector, 0)
    try:
        port = server.server_address[1]
        for s in sources:
            s.start()
        result = StreamLoop(FakeEngine(), lanes, detect_every=3).run()
        got = scrape(port)
    finally:
        server.shutdown()
        for s in sources:
            s.stop()
    assert got["ferfast_info"] == {(("backend", "cpu"), ("model", "m"), ("version", "x")): 1.0}
    for name, summary in zip(("a.mp4", "rtsp://cam/s"), result.sources, strict=True):
        key = (("source", name),)  # no password in a label
        assert got["ferfast_frames_total"][key] == summary.frames
        assert got["ferfast_frames_read_total"][key] == summary.frames_read
        assert got["ferfast_faces_total"][key] == summary.faces
        assert got["ferfast_detector_runs_total"][key] == summary.detections
        assert got["ferfast_dropped_frames_total"][key] == summary.dropped
        assert got["ferfast_reconnects_total"][key] == summary.reconnects
        counts = {s.name: s.count for s in summary.stages}
        for stage in EXPORTED_STAGES:
            labels = (("source", name), ("stage", stage))
            assert got["ferfast_stage_seconds_count"][labels] == counts[stage], stage
            inf = (("le", "+Inf"), *labels)
            assert got["ferfast_stage_seconds_bucket"][inf] == counts[stage]
    assert result.sources[0].frames == 30  # a file never drops; the camera may have
    assert result.sources[1].frames + result.sources[1].dropped == 12
    assert got["ferfast_mqtt_dropped_total"] == {(("source", "a.mp4"),): 2.0}
    assert got["ferfast_mqtt_queue_depth"] == {(("source", "a.mp4"),): 0.0}


def test_the_cli_serves_metrics_during_a_run(tiny_model: Path, tmp_path: Path) -> None:
    video = write_face_video(tmp_path / "v.mp4", 60)
    port = free_port()
    cmd = cli_command("--source", video, *engine_args(tiny_model), "--realtime", "-q")
    cmd += ["--metrics-port", str(port), "--jsonl", str(tmp_path / "e.jsonl")]
    proc = subprocess.Popen(cmd, env=cli_env(), stderr=subprocess.PIPE, text=True)
    try:
        key = (("source", str(video)),)

        def frames() -> float:
            try:
                return scrape(port)["ferfast_frames_total"][key]
            except (OSError, KeyError):
                return 0.0

        assert wait_for(lambda: frames() >= 5, 30.0), "no frames counted while running"
        during = scrape(port)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert 5 <= during["ferfast_frames_total"][key] < 60
    (labels,) = during["ferfast_info"]
    assert dict(labels)["model"] == str(tiny_model) and dict(labels)["backend"] == "cpu"


def test_a_taken_metrics_port_is_a_clear_error(tiny_model: Path, tmp_path: Path) -> None:
    video = write_face_video(tmp_path / "v.mp4", 5)
    collector = StreamCollector([], {"version": "x"})
    server = serve(collector, 0)
    try:
        port = server.server_address[1]
        res = subprocess.run(
            cli_command("--source", video, *engine_args(tiny_model), "--metrics-port", str(port)),
            env=cli_env(), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        server.shutdown()
    assert res.returncode == 1
    assert f"--metrics-port: cannot serve on 127.0.0.1:{port}" in res.stderr
    assert "Traceback" not in res.stderr
