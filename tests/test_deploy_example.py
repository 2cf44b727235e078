"""docs/examples/mqtt_to_sqlite.py (docs/deploy.md): the fleet's subscriber, run for real against
mosquitto on loopback, fed by ``MqttSink`` and by ``ferfast-stream --mqtt``."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytest.importorskip("paho.mqtt.client", reason="paho-mqtt is in the 'mqtt' extra")

from mqtt_support import (  # noqa: E402
    Broker,
    Listener,
    face,
    make_password_file,
    need_mosquitto,
)
from stream_support import (  # noqa: E402
    REPO,
    cli_command,
    cli_env,
    engine_args,
    free_port,
    read_jsonl,
    wait_for,
    write_face_video,
)

from ferfast.records import FrameRecord  # noqa: E402
from ferfast.sinks.mqtt import PASSWORD_ENV, MqttSink  # noqa: E402

SCRIPT = REPO / "docs" / "examples" / "mqtt_to_sqlite.py"
EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
HOUR = 1_700_002_800.0  # 2023-11-14 23:00:00 UTC


@pytest.fixture()
def broker(tmp_path: Path) -> Iterator[Broker]:
    need_mosquitto()
    b = Broker(tmp_path, [Listener(free_port())])
    b.start()
    yield b
    b.stop()


@pytest.fixture()
def subscriber(tmp_path: Path) -> Iterator[Callable[..., Subscriber]]:
    """Starts the example script on a broker URL (the database in tmp_path); killed at the end
    if the test left it running."""
    started: list[Subscriber] = []

    def start(broker_url: str, env: dict[str, str] | None = None) -> Subscriber:
        started.append(Subscriber(broker_url, tmp_path / "faces.db", env))
        return started[-1]

    yield start
    for sub in started:
        if sub.proc.poll() is None:
            sub.proc.kill()
            sub.proc.communicate(timeout=10)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Subscriber:
    """The example script collecting into ``db`` until :meth:`stop` (SIGINT, as Ctrl-C)."""

    def __init__(self, broker_url: str, db: Path, env: dict[str, str] | None = None) -> None:
        self.db = db
        self.proc = subprocess.Popen(
            [sys.executable, str(SCRIPT), broker_url, str(db)],
            env=None if env is None else os.environ | env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # Ctrl-C as in a terminal: a test run started in the background (`cmd &` in a
            # script) passes SIGINT down ignored, and Python then never raises KeyboardInterrupt.
            preexec_fn=_default_sigint,
        )
        assert self.proc.stderr is not None
        ready, _, _ = select.select([self.proc.stderr], [], [], 20.0)  # it subscribed, or died
        assert ready, "the subscriber said nothing within 20 s"
        line = self.proc.stderr.readline()
        assert line.startswith("subscribed to "), line + self.proc.stderr.read()

    def rows(self) -> int:
        if not self.db.exists():
            return 0
        with contextlib.closing(sqlite3.connect(self.db)) as db:
            return int(db.execute("SELECT COUNT(*) FROM faces").fetchone()[0])

    def stop(self) -> str:
        """Ctrl-C; the report it printed."""
        self.proc.send_signal(signal.SIGINT)
        out, err = self.proc.communicate(timeout=20)
        assert self.proc.returncode == 0, err
        return out


def frame(source: str, n: int, t: float, emotions: list[str]) -> FrameRecord:
    faces = [face(i + 1, e, x=10.0 + 50 * i) for i, e in enumerate(emotions)]
    return FrameRecord(source, n, t, faces, EMOTIONS)


def test_stores_faces_and_prints_emotions_per_kiosk_per_hour(
    broker: Broker, subscriber: Callable[..., Subscriber]
) -> None:
    sub = subscriber(f"mqtt://127.0.0.1:{broker.port}/site")
    records = [
        frame("cam-a", 0, HOUR - 2.0, ["happy", "sad"]),  # 22:59:58
        frame("cam-a", 1, HOUR - 1.0, ["happy"]),
        frame("cam-a", 2, HOUR + 1.0, ["neutral"]),  # 23:00:01: the next hour
        frame("cam-a", 3, HOUR + 2.0, []),  # no face: no row
        frame("cam-b", 0, HOUR + 5.0, ["surprise", "surprise", "angry"]),
    ]
    sink = MqttSink(
        f"mqtt://127.0.0.1:{broker.port}/site", ["cam-a", "cam-b"], names=["lobby", "door"]
    )
    try:
        for r in records:
            sink.write(r)
        sink.write(records[0])  # what QoS 1 may deliver twice is stored once
        assert sink.flush(10.0)
    finally:
        sink.close()
    assert wait_for(lambda: sub.rows() == 7, 10.0), sub.rows()
    out = sub.stop()
    assert out.splitlines() == [
        "door  2023-11-14 23:00 UTC  surprise 2  angry 1",
        "lobby  2023-11-14 22:00 UTC  happy 2  sad 1",
        "lobby  2023-11-14 23:00 UTC  neutral 1",
    ]
    with contextlib.closing(sqlite3.connect(sub.db)) as conn:
        query = "SELECT kiosk, frame, face, id, emotion, confidence FROM faces"
        rows = conn.execute(query + " ORDER BY kiosk, time, face").fetchall()
    assert rows[:3] == [
        ("door", 0, 0, 1, "surprise", pytest.approx(0.7)),
        ("door", 0, 1, 2, "surprise", pytest.approx(0.7)),
        ("door", 0, 2, 3, "angry", pytest.approx(0.7)),
    ]
    assert [r[1:5] for r in rows[3:]] == [
        (0, 0, 1, "happy"),
        (0, 1, 2, "sad"),
        (1, 0, 1, "happy"),
        (2, 0, 1, "neutral"),
    ]
    # The report alone, from the database.
    again = subprocess.run(
        [sys.executable, str(SCRIPT), str(sub.db)], capture_output=True, text=True, timeout=20
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout == out


def test_password_from_the_environment(
    subscriber: Callable[..., Subscriber], tmp_path: Path
) -> None:
    """A user in the URL and the password in $FERFAST_MQTT_PASSWORD, as for ferfast-stream."""
    need_mosquitto()
    folder = tmp_path / "broker"
    folder.mkdir()
    passwords = make_password_file(folder / "passwords", "fleet", "pw:1/@")
    broker = Broker(folder, [Listener(free_port(), password_file=passwords)]).start()
    try:
        url = f"mqtt://fleet@127.0.0.1:{broker.port}/site"
        sub = subscriber(url, {PASSWORD_ENV: "pw:1/@"})
        sink = MqttSink(f"mqtt://fleet:pw%3A1%2F%40@127.0.0.1:{broker.port}/site", ["cam"])
        try:
            sink.write(frame("cam", 0, HOUR, ["fear"]))
            assert sink.flush(10.0)
        finally:
            sink.close()
        assert wait_for(lambda: sub.rows() == 1, 10.0)
        assert sub.stop() == "cam  2023-11-14 23:00 UTC  fear 1\n"
    finally:
        broker.stop()


def test_stores_what_ferfast_stream_publishes(
    broker: Broker, subscriber: Callable[..., Subscriber], tiny_model: Path, tmp_path: Path
) -> None:
    video = write_face_video(tmp_path / "v.mp4", 30)
    sub = subscriber(f"mqtt://127.0.0.1:{broker.port}/site")
    events = tmp_path / "events.jsonl"
    cmd = cli_command("--source", video, *engine_args(tiny_model), "--no-progress", "-q")
    cmd += ["--mqtt", f"mqtt://127.0.0.1:{broker.port}/site", "--mqtt-source-name", "kiosk-7"]
    cmd += ["--jsonl", str(events)]
    run = subprocess.run(cmd, env=cli_env(), capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    lines = read_jsonl(events)
    faces = [(r["frame"], i, f["emotion"]) for r in lines for i, f in enumerate(r["faces"])]
    assert faces  # the video shows a face
    assert wait_for(lambda: sub.rows() == len(faces), 10.0), (sub.rows(), len(faces))
    out = sub.stop()
    with contextlib.closing(sqlite3.connect(sub.db)) as conn:
        stored = conn.execute("SELECT frame, face, emotion FROM faces ORDER BY frame, face")
        assert stored.fetchall() == faces
    assert out.splitlines() == report("kiosk-7", lines)


def report(kiosk: str, records: list[dict]) -> list[str]:
    """The lines the script prints for one kiosk's records (hours in UTC, most frequent first)."""
    hours: dict[str, Counter[str]] = {}
    for r in records:
        hour = time.strftime("%Y-%m-%d %H:00", time.gmtime(r["time"]))
        hours.setdefault(hour, Counter()).update(f["emotion"] for f in r["faces"])
    return [
        f"{kiosk}  {hour} UTC  "
        + "  ".join(f"{e} {n}" for e, n in sorted(counts.items(), key=lambda x: (-x[1], x[0])))
        for hour, counts in sorted(hours.items())
        if counts
    ]
