"""deploy/jetson: the systemd unit and the kiosk launcher (run for real on Xvfb)."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from stream_support import (
    REPO,
    YUNET,
    cli_env,
    read_jsonl,
    write_face_video,
    xvfb_display,
)

DEPLOY = REPO / "deploy" / "jetson"
UNIT = DEPLOY / "ferfast-kiosk.service"
LAUNCHER = DEPLOY / "ferfast-kiosk.sh"


def read_unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # keep systemd's key case
    parser.read(path)
    return parser


def test_unit_restarts_on_failure_and_stops_with_sigint(tmp_path: Path) -> None:
    unit = read_unit(UNIT)
    service = unit["Service"]
    assert service["Restart"] == "on-failure"
    assert service["KillSignal"] == "SIGINT"  # ferfast-stream's clean stop
    assert service["SuccessExitStatus"].split() == ["130", "143"]  # its exit status then
    assert service["ExecStart"].endswith("/deploy/jetson/ferfast-kiosk.sh")
    assert unit["Install"]["WantedBy"] == "graphical.target"
    assert os.access(LAUNCHER, os.X_OK)
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    # Verify a copy whose ExecStart points at this checkout's launcher.
    text = UNIT.read_text().replace("/opt/ferfast/deploy/jetson/ferfast-kiosk.sh", str(LAUNCHER))
    copy = tmp_path / "ferfast-kiosk.service"
    copy.write_text(text)
    proc = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def launcher_env(tmp_path: Path, display: str, **extra: str) -> dict[str, str]:
    wrapper = tmp_path / "ferfast-stream"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m ferfast.stream.cli "$@"\n')
    wrapper.chmod(0o755)
    env = cli_env() | {"DISPLAY": display, "FERFAST_STREAM": str(wrapper)}
    env.pop("WAYLAND_DISPLAY", None)
    return env | extra


@pytest.mark.skipif(shutil.which("xset") is None, reason="xset (x11-xserver-utils) missing")
def test_launcher_runs_the_kiosk(tiny_model: Path, tmp_path: Path) -> None:
    video = write_face_video(tmp_path / "v.mp4", 12)
    events = tmp_path / "events"
    with xvfb_display() as display:
        if display is None:
            pytest.skip("Xvfb is not available")
        env = launcher_env(
            tmp_path,
            display,
            FERFAST_SOURCE=str(video),
            FERFAST_MODEL=str(tiny_model),
            FERFAST_YUNET=str(YUNET),
            FERFAST_DETECTOR_SIZE="160",
            FERFAST_EVENTS_DIR=str(events),
            FERFAST_EXTRA_ARGS="--max-frames 10 --kiosk-size 800x480",
        )
        proc = subprocess.run([str(LAUNCHER)], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "stopped (max-frames)" in proc.stderr
    (log,) = events.glob("events-*.jsonl")
    assert len(read_jsonl(log)) == 10


def test_launcher_fails_without_display(tmp_path: Path) -> None:
    if shutil.which("xset") is None:
        pytest.skip("xset (x11-xserver-utils) missing")
    env = launcher_env(tmp_path, ":987", FERFAST_X_WAIT="1", FERFAST_SOURCE="0")
    proc = subprocess.run([str(LAUNCHER)], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert "X display :987 is not available" in proc.stderr
