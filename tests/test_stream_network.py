"""ferfast-stream against a network camera (ffmpeg serving MJPEG over HTTP on loopback) that is
killed and restarted mid-run: the CLI reconnects, logs it and counts --max-frames across it."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from stream_support import (
    MjpegCamera,
    cli_command,
    cli_env,
    count_lines,
    engine_args,
    free_port,
    read_jsonl,
    wait_for,
    write_face_video,
)

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")

MAX_FRAMES = 45


@pytest.fixture(scope="module")
def short_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1 s, 30 fps MJPG clip of a moving real face (ffmpeg loops it)."""
    return write_face_video(tmp_path_factory.mktemp("net") / "cam.avi", 30)


def test_network_camera_killed_and_restarted(
    short_video: Path, tiny_model: Path, tmp_path: Path
) -> None:
    camera = MjpegCamera(short_video, free_port()).start()
    events = tmp_path / "ev.jsonl"
    summary = tmp_path / "summary.json"
    cmd = cli_command("--source", camera.url, *engine_args(tiny_model), "--jsonl", events)
    cmd += ["--summary-json", str(summary)]
    cmd += ["--max-frames", str(MAX_FRAMES), "--timeout", "5"]
    cmd += ["--reconnect-delay", "0.2", "--reconnect-max-delay", "0.4"]
    proc = subprocess.Popen(
        cmd, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert wait_for(lambda: count_lines(events) >= 10, 30.0), "no frames before the cut"
        camera.kill()  # the camera goes away mid-run...
        before = count_lines(events)
        time.sleep(1.0)
        alive = proc.poll() is None
        during = count_lines(events) - before
        camera.start()  # ...and comes back on the same address
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        camera.kill()
    assert alive, f"the CLI exited instead of reconnecting:\n{err}"
    assert during <= 5, f"{during} results while the camera was down"
    assert proc.returncode == 0, err
    assert "source lost" in err and "reconnect attempt 1" in err and "failed" in err, err
    assert "reconnected after" in err, err
    assert json.loads(summary.read_text())["reconnects"] >= 1
    assert "stopped (max-frames)" in err, err
    lines = read_jsonl(events)
    assert len(lines) == MAX_FRAMES  # counted across the reconnect
    frames = [e["frame"] for e in lines]
    assert frames == sorted(set(frames))  # source frame numbers keep increasing across it
    assert sum(1 for e in lines if e["faces"]) >= 0.9 * MAX_FRAMES
