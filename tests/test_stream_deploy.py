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


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of an EnvironmentFile (comments and blank lines skipped)."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key] = value
    return out


def launch_with_fakes(tmp_path: Path, settings: dict[str, str]) -> tuple[list[str], str]:
    """Run the launcher with the shipped settings file updated by ``settings``, a stand-in
    ``xset`` (no X server needed) and a stand-in ``ferfast-stream`` that records its arguments
    and environment; returns those arguments and the password it saw in its environment."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "xset").write_text("#!/bin/sh\nexit 0\n")
    argv_file, password_file = tmp_path / "argv", tmp_path / "password"
    (bin_dir / "ferfast-stream").write_text(
        f"#!/bin/sh\nprintf '%s\\0' \"$@\" > '{argv_file}'\n"
        f"printf '%s' \"${{FERFAST_MQTT_PASSWORD:-}}\" > '{password_file}'\n"
    )
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    env = read_env_file(DEPLOY / "ferfast-kiosk.env") | {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FERFAST_STREAM": str(bin_dir / "ferfast-stream"),
        "FERFAST_EVENTS_DIR": str(tmp_path / "events"),
        "FERFAST_X_WAIT": "1",
    }
    proc = subprocess.run(
        [str(LAUNCHER)], env=env | settings, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    return argv_file.read_text().split("\0")[:-1], password_file.read_text()


def test_launcher_passes_mqtt_and_metrics_settings(tmp_path: Path) -> None:
    from ferfast.stream.cli import build_parser

    argv, password = launch_with_fakes(
        tmp_path,
        {
            "FERFAST_MQTT": "mqtts://kiosk@broker.example:8883/site",
            "FERFAST_MQTT_PASSWORD": "s3cret pw",
            "FERFAST_MQTT_CA": "/etc/ferfast/ca.pem",
            "FERFAST_MQTT_CERT": "/etc/ferfast/kiosk.crt",
            "FERFAST_MQTT_KEY": "/etc/ferfast/kiosk.key",
            "FERFAST_MQTT_NAME": "lobby-1",
            "FERFAST_METRICS_PORT": "9464",
            "FERFAST_METRICS_HOST": "0.0.0.0",
            "FERFAST_EXTRA_ARGS": "--mqtt-on change",
        },
    )
    args = build_parser().parse_args(argv)  # ferfast-stream accepts what the launcher passes
    assert args.mqtt == "mqtts://kiosk@broker.example:8883/site"
    assert args.mqtt_source_name == ["lobby-1"]
    assert (args.mqtt_ca, args.mqtt_cert, args.mqtt_key) == (
        "/etc/ferfast/ca.pem",
        "/etc/ferfast/kiosk.crt",
        "/etc/ferfast/kiosk.key",
    )
    assert (args.metrics_port, args.metrics_host) == (9464, "0.0.0.0")
    assert args.mqtt_on == "change"
    assert args.fullscreen and args.source == ["0"]
    # The password reaches ferfast-stream through its environment only (not visible in ps).
    assert password == "s3cret pw"
    assert not any("s3cret" in a for a in argv)


def test_launcher_defaults_no_mqtt_no_metrics_kiosk_named_after_the_host(tmp_path: Path) -> None:
    from ferfast.stream.cli import build_parser

    argv, _ = launch_with_fakes(tmp_path / "plain", {})  # the shipped settings as they are
    args = build_parser().parse_args(argv)
    assert args.mqtt is None and args.metrics_port is None
    argv, _ = launch_with_fakes(
        tmp_path / "mqtt", {"FERFAST_MQTT": "mqtt://broker/site", "FERFAST_METRICS_PORT": "9464"}
    )
    args = build_parser().parse_args(argv)
    host = subprocess.run(["hostname", "-s"], capture_output=True, text=True).stdout.strip()
    assert args.mqtt_source_name == [host]
    assert args.mqtt_ca is None and args.mqtt_cert is None
    assert (args.metrics_port, args.metrics_host) == (9464, "127.0.0.1")
