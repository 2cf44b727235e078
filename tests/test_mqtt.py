"""The MQTT sink against a real broker: mosquitto on free loopback ports (Debian package
mosquitto; the tests skip without it), paho-mqtt subscribers checking what arrives."""

from __future__ import annotations

import argparse
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("paho.mqtt.client", reason="paho-mqtt is in the 'mqtt' extra")

from mqtt_support import (  # noqa: E402
    EMOTIONS,
    Broker,
    Collector,
    Listener,
    TestCerts,
    face,
    make_certs,
    make_password_file,
    need_mosquitto,
    record,
    unique,
)
from stream_support import (  # noqa: E402
    check_record,
    cli_command,
    cli_env,
    engine_args,
    free_port,
    wait_for,
    write_face_video,
)

from ferfast.sinks import JsonlSink  # noqa: E402
from ferfast.sinks.mqtt import (  # noqa: E402
    PASSWORD_ENV,
    MqttError,
    MqttSink,
    MqttUrl,
    add_mqtt_arguments,
    mqtt_sink_from_args,
    parse_mqtt_url,
    topic_level,
)

HERE = Path(__file__).resolve().parent
USER, PASSWORD = "kiosk", "s3cret:/@pw"
QUOTED_PASSWORD = "s3cret%3A%2F%40pw"


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """One mosquitto: an anonymous listener (``port``) and one with a password file
    (``listeners[1]``); no persistence."""
    need_mosquitto()
    folder = tmp_path_factory.mktemp("mosquitto")
    passwords = make_password_file(folder / "passwords", USER, PASSWORD)
    b = Broker(folder, [Listener(free_port()), Listener(free_port(), password_file=passwords)])
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TestCerts:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory, certs: TestCerts) -> Iterator[Broker]:
    """Anonymous plain (``port``, for the test's subscriber), TLS (``listeners[1]``) and TLS
    that requires a client certificate signed by the test CA (``listeners[2]``)."""
    need_mosquitto()
    b = Broker(
        tmp_path_factory.mktemp("mosquitto-tls"),
        [
            Listener(free_port()),
            Listener(free_port(), tls=certs),
            Listener(free_port(), tls=certs, require_certificate=True),
        ],
    )
    b.start()
    yield b
    b.stop()


@pytest.fixture()
def restartable(tmp_path: Path) -> Iterator[Broker]:
    """A broker of this test's own that it may stop and start again (with persistence, so the
    test's subscriber misses nothing while it reconnects)."""
    need_mosquitto()
    b = Broker(tmp_path, [Listener(free_port())], persistence=True)
    b.start()
    yield b
    b.stop()


@pytest.fixture()
def prefix(request: pytest.FixtureRequest) -> str:
    """A topic prefix of this test's own (retained messages of other tests stay apart)."""
    return "t/" + topic_level(request.node.name)


def url(port: int, prefix: str, scheme: str = "mqtt", login: str = "") -> str:
    return f"{scheme}://{login}127.0.0.1:{port}/{prefix}"


@pytest.fixture()
def closing() -> Iterator[list]:
    """Sinks and collectors to close after the test, whatever happens."""
    items: list = []
    yield items
    for item in reversed(items):
        item.close()


# -- URLs, names, options ----------------------------------------------------------------------


def test_url_parsing() -> None:
    assert parse_mqtt_url("mqtt://broker.local") == MqttUrl(False, "broker.local", 1883, "ferfast")
    u = parse_mqtt_url("mqtts://h/site/lobby/")
    assert (u.tls, u.port, u.prefix) == (True, 8883, "site/lobby")
    u = parse_mqtt_url(f"mqtt://us%40er:{QUOTED_PASSWORD}@h:1999/a", env={})
    assert (u.username, u.password, u.port, u.prefix) == ("us@er", PASSWORD, 1999, "a")
    assert u.redacted == "mqtt://us%40er@h:1999/a"
    assert parse_mqtt_url("mqtt://u@h", env={PASSWORD_ENV: "x"}).password == "x"
    assert parse_mqtt_url("mqtt://u@h", env={}).password is None
    v6 = parse_mqtt_url("mqtt://[::1]:1884/p")
    assert (v6.host, v6.redacted) == ("::1", "mqtt://[::1]:1884/p")
    for bad, why in [
        ("http://h/p", "expected mqtt://"),
        ("mqtt:///p", "no broker host"),
        ("mqtt://h:99999/p", "bad port"),
        ("mqtt://h:x/p", "bad port"),
        ("mqtt://h/a/+/b", "topic prefix"),
        ("mqtt://h/a//b", "topic prefix"),
        ("mqtt://h/a#b", "fragment"),
        ("mqtt://:pw@h/p", "without a user"),
    ]:
        with pytest.raises(ValueError, match=why):
            parse_mqtt_url(bad)


def test_topic_level_is_safe_short_and_stable() -> None:
    assert topic_level("rtsp://10.0.0.5/s1") == "rtsp_10.0.0.5_s1"
    assert topic_level("/dev/video0") == "dev_video0"
    assert topic_level("0") == "0"
    assert topic_level("cam 1+#/x") == "cam_1_x"
    assert topic_level("") == topic_level("///") == "source"
    pipeline = "nvarguscamerasrc ! video/x-raw(memory:NVMM),width=1280 ! nvvidconv ! appsink"
    a, b = topic_level(pipeline), topic_level(pipeline + " drop=true")
    assert len(a) == len(b) == 64 and a != b
    for level in (a, "rtsp_10.0.0.5_s1", "0"):
        assert topic_level(level) == level  # a level is its own name
        assert not set("/+#") & set(level)


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_mqtt_arguments(parser.add_argument_group("mqtt"))
    return parser.parse_args(argv)


def test_options_and_their_errors(tmp_path: Path) -> None:
    defaults = _args()
    assert mqtt_sink_from_args(defaults, ["0"]) is None
    assert (defaults.mqtt_on, defaults.mqtt_queue, defaults.mqtt_timeout) == ("frame", 3000, 5.0)
    for argv in (["--mqtt-queue", "0"], ["--mqtt-on", "sometimes"], ["--mqtt-timeout", "0"]):
        with pytest.raises(SystemExit):
            _args(*argv)
    unused = url(free_port(), "p")  # every error below comes before any connection
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    for argv, sources, why in [
        (["--mqtt-source-name", "a"], ["0", "1"], "given 1 times for 2 --source"),
        (["--mqtt-source-name", "a/b"], ["0"], "letters, digits"),
        ([], ["a b.mp4", "a_b.mp4"], "share the MQTT topic level 'a_b.mp4'.*--mqtt-source-name"),
        (["--mqtt-ca", str(ca)], ["0"], "need an mqtts:// URL"),
    ]:
        with pytest.raises(ValueError, match=why):
            mqtt_sink_from_args(_args("--mqtt", unused, *argv), sources)
    tls = "mqtts" + unused[4:]
    with pytest.raises(ValueError, match="go together"):
        mqtt_sink_from_args(_args("--mqtt", tls, "--mqtt-cert", str(ca)), ["0"])
    with pytest.raises(ValueError, match="--mqtt-ca .*missing.pem: no such file"):
        mqtt_sink_from_args(_args("--mqtt", tls, "--mqtt-ca", str(tmp_path / "missing.pem")), ["0"])
    with pytest.raises(ValueError, match="expected mqtt://"):
        mqtt_sink_from_args(_args("--mqtt", "tcp://h"), ["0"])


def test_without_paho_the_option_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "paho.mqtt.client", None)  # import fails as if missing
    with pytest.raises(MqttError) as info:
        mqtt_sink_from_args(_args("--mqtt", "mqtt://127.0.0.1/p"), ["0"])
    assert str(info.value) == '--mqtt needs paho-mqtt: pip install "ferfast[mqtt]"'


def test_the_module_does_not_import_paho() -> None:
    code = "import sys, ferfast.sinks.mqtt; assert 'paho' not in sys.modules, 'paho loaded'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# -- delivery ---------------------------------------------------------------------------------


def test_records_arrive_in_order_as_the_jsonl_lines(
    broker: Broker, prefix: str, closing: list, tmp_path: Path
) -> None:
    source = "rtsp://10.0.0.5/s1"
    sub = Collector(broker.port, f"{prefix}/#")
    closing.append(sub)
    sink = MqttSink(url(broker.port, prefix), [source])
    closing.append(sink)
    records = [record(i, source) for i in range(300)]
    jsonl = JsonlSink(tmp_path / "same.jsonl", EMOTIONS, option="--jsonl")
    for r in records:
        sink.write(r)
        jsonl.write(r)
    jsonl.close()
    assert sub.wait(lambda c: len(c.on("/faces")) >= 300), sink.summary_line()
    faces = sub.on("/faces")
    assert {m.topic for m in faces} == {f"{prefix}/rtsp_10.0.0.5_s1/faces"}
    lines = (tmp_path / "same.jsonl").read_bytes().splitlines()
    assert [m.payload for m in faces] == lines  # the same bytes as --jsonl, in order
    assert not any(m.retain for m in faces)
    for m in faces[:10]:
        check_record(json.loads(m.payload))
    assert [(m.payload, m.retain) for m in sub.on("/status")] == [(b"online", False)]

    sink.publish_summary({"frames": 300, "reason": "end"})
    sink.close()
    assert sub.wait(lambda c: c.on("/status")[-1].payload != b"online")
    final = json.loads(sub.on("/status")[-1].payload)
    assert final["state"] == "stopped" and (final["frames"], final["reason"]) == (300, "end")
    assert final["mqtt"] | {"reconnects": 0} == {
        "written": 300,
        "skipped": 0,
        "published": 300,
        "dropped": 0,
        "queued": 0,
        "reconnects": 0,
    }
    stats = sink.stats()
    assert (stats.published, stats.dropped, stats.queued, stats.unsent) == (300, 0, 0, 0)
    line = sink.summary_line()
    assert line.startswith(f"mqtt mqtt://127.0.0.1:{broker.port}/{prefix}: published 300")

    late = Collector(broker.port, f"{prefix}/+/status")  # the summary stays (retained)
    closing.append(late)
    assert late.wait(lambda c: len(c.messages) == 1)
    assert late.messages[0].retain and json.loads(late.messages[0].payload)["state"] == "stopped"


def test_each_source_has_its_topics_and_status(broker: Broker, prefix: str, closing: list) -> None:
    sub = Collector(broker.port, f"{prefix}/#")
    closing.append(sub)
    sink = MqttSink(url(broker.port, prefix), ["a.mp4", "b.mp4"], names=["lobby", "door"])
    closing.append(sink)
    for i in range(40):
        sink.write(record(i, "a.mp4" if i % 2 else "b.mp4"))
    sink.write(record(99, "other.mp4"))  # not named at start: the first source's topic
    assert sink.flush(10)
    assert sub.wait(lambda c: len(c.on("/faces")) == 41)
    assert sub.frames("/lobby/faces") == [*range(1, 40, 2), 99]
    assert sub.frames("/door/faces") == list(range(0, 40, 2))
    sink.publish_summary({"frames": 20}, source="a.mp4")
    sink.close()
    assert sub.wait(
        lambda c: all(c.on(f"/{n}/status")[-1].payload[:1] == b"{" for n in ("lobby", "door"))
    )
    lobby = json.loads(sub.on("/lobby/status")[-1].payload)
    door = json.loads(sub.on("/door/status")[-1].payload)
    assert (lobby["frames"], lobby["mqtt"]["published"]) == (20, 21)
    assert "frames" not in door and door["state"] == "stopped"


def test_change_mode_sends_appearances_departures_and_new_emotions(
    broker: Broker, prefix: str, closing: list
) -> None:
    sub = Collector(broker.port, f"{prefix}/+/faces")
    closing.append(sub)
    sink = MqttSink(url(broker.port, prefix), ["cam"], mode="change")
    closing.append(sink)
    frames = [
        [],  # 0: nothing yet
        [face(1, "happy")],  # 1: appears
        [face(1, "happy", x=14.0)],  # 2: moved only
        [face(1, "sad")],  # 3: new emotion
        [face(1, "sad"), face(2, "angry")],  # 4: a second face
        [face(1, "sad"), face(2, "angry")],  # 5: the same
        [face(2, "angry")],  # 6: face 1 left
        [],  # 7: face 2 left
        [],  # 8: still nobody
    ]
    for i, faces in enumerate(frames):
        sink.write(record(i, "cam", faces))
    assert sink.flush(10)
    assert sub.wait(lambda c: len(c.frames()) == 5)
    assert sub.frames() == [1, 3, 4, 6, 7]
    assert json.loads(sub.on("/faces")[-1].payload)["faces"] == []
    s = sink.stats()
    assert (s.written, s.skipped, s.published) == (9, 4, 5)
    assert sink.summary_line().endswith("unchanged frames not sent 4")


# -- errors at start ---------------------------------------------------------------------------


def test_wrong_password_is_a_clear_error_at_once(
    broker: Broker, prefix: str, closing: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = broker.listeners[1].port
    for login in (f"{USER}:Bad-Pw9@", "", "intruder:x@"):
        t0 = time.monotonic()
        with pytest.raises(MqttError) as info:
            MqttSink(url(port, prefix, login=login), ["cam"])
        assert time.monotonic() - t0 < 3.0
        message = str(info.value)
        assert message.startswith(f"--mqtt mqtt://{login.split(':')[0]}")
        assert "the broker refused the connection: Not authorized" in message
        assert "(check the user and password)" in message and "Bad-Pw9" not in message
    sub = Collector(broker.port, f"{prefix}/#")
    closing.append(sub)
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)  # the user in the URL, the password outside
    sink = MqttSink(url(port, prefix, login=f"{USER}@"), ["cam"])
    closing.append(sink)
    sink.write(record(0))
    assert sink.flush(10)
    assert sub.wait(lambda c: c.frames() == [0])
    other = MqttSink(url(port, prefix, login=f"{USER}:{QUOTED_PASSWORD}@"), ["cam2"])
    closing.append(other)


def test_unreachable_broker_is_a_clear_error_not_a_hang() -> None:
    t0 = time.monotonic()
    with pytest.raises(MqttError, match=r"^--mqtt mqtt://127\.0\.0\.1:\d+/p: cannot connect: "):
        MqttSink(url(free_port(), "p"), ["cam"])  # nothing listens: refused at once
    assert time.monotonic() - t0 < 3.0
    # A server that accepts the connection and never answers: the CONNACK timeout.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        port = silent.getsockname()[1]
        t0 = time.monotonic()
        with pytest.raises(MqttError, match="the broker did not answer within 0.5 s"):
            MqttSink(url(port, "p"), ["cam"], timeout=0.5)
        assert time.monotonic() - t0 < 3.0


# -- TLS -------------------------------------------------------------------------------------


def test_tls_with_a_self_signed_ca(
    tls_broker: Broker, certs: TestCerts, prefix: str, closing: list
) -> None:
    sub = Collector(tls_broker.port, f"{prefix}/#")
    closing.append(sub)
    tls_port = tls_broker.listeners[1].port
    sink = MqttSink(url(tls_port, prefix, "mqtts"), ["cam"], ca=certs.ca)
    closing.append(sink)
    for i in range(20):
        sink.write(record(i))
    assert sink.flush(10)
    assert sub.wait(lambda c: c.frames() == list(range(20)))

    t0 = time.monotonic()
    with pytest.raises(MqttError, match="TLS: cannot verify the broker's certificate: self-signed"):
        MqttSink(url(tls_port, prefix, "mqtts"), ["cam"], ca=certs.other_ca, timeout=2)
    with pytest.raises(MqttError, match="--mqtt-ca names the CA"):
        MqttSink(url(tls_port, prefix, "mqtts"), ["cam"], timeout=2)  # the system CAs
    with pytest.raises(MqttError, match="cannot load the TLS files"):
        MqttSink(url(tls_port, prefix, "mqtts"), ["cam"], ca=certs.server_key, timeout=2)
    assert time.monotonic() - t0 < 6.0


def test_tls_client_certificate(
    tls_broker: Broker, certs: TestCerts, prefix: str, closing: list
) -> None:
    sub = Collector(tls_broker.port, f"{prefix}/#")
    closing.append(sub)
    port = tls_broker.listeners[2].port
    args = _args(
        "--mqtt",
        url(port, prefix, "mqtts"),
        "--mqtt-ca",
        str(certs.ca),
        "--mqtt-cert",
        str(certs.client_cert),
        "--mqtt-key",
        str(certs.client_key),
    )
    sink = mqtt_sink_from_args(args, ["0"])
    assert sink is not None
    closing.append(sink)
    sink.write(record(7, "0"))
    assert sink.flush(10)
    assert sub.wait(lambda c: c.frames("/0/faces") == [7])

    t0 = time.monotonic()
    with pytest.raises(MqttError, match="closed before the broker answered; does it require a"):
        MqttSink(url(port, prefix, "mqtts"), ["cam"], ca=certs.ca, timeout=4)
    with pytest.raises(MqttError, match="closed before the broker answered; is it a TLS port"):
        MqttSink(url(port, prefix), ["cam"], timeout=4)
    assert time.monotonic() - t0 < 6.0


# -- the broker going away ------------------------------------------------------------------


def test_broker_restart_mid_run_loses_nothing(
    restartable: Broker, prefix: str, closing: list
) -> None:
    sub = Collector(restartable.port, f"{prefix}/+/faces", session="ferfast-test-restart")
    closing.append(sub)
    sink = MqttSink(url(restartable.port, prefix), ["cam"], queue=1000, reconnect_delay=(1, 1))
    closing.append(sink)
    n, written = 600, []
    slowest = 0.0

    def run() -> None:  # a 200 fps stream that goes on through the restart
        nonlocal slowest
        for i in range(n):
            t0 = time.perf_counter()
            sink.write(record(i))
            slowest = max(slowest, time.perf_counter() - t0)
            written.append(i)
            time.sleep(0.005)

    stream = threading.Thread(target=run)
    stream.start()
    assert wait_for(lambda: len(sub.frames()) >= 100, 10.0)
    restartable.stop()
    assert wait_for(lambda: not sink.stats().connected, 5.0)
    time.sleep(0.5)  # records queue while the broker is away
    down = len(written)
    restartable.start()
    stream.join(timeout=30)
    assert sub.wait(lambda c: len(unique(c.frames())) >= n, 20.0), sink.summary_line()
    assert unique(sub.frames()) == list(range(n))  # all, in order (QoS 1 may repeat one)
    assert sink.flush(10)
    s = sink.stats()
    assert (s.dropped, s.reconnects, s.queued) == (0, 1, 0)
    assert down < n - 50  # the restart was in the middle of the run
    assert slowest < 0.25  # write() never waited for the network (the outage took > 0.5 s)


def test_overflow_drops_the_oldest_and_counts_exactly(
    restartable: Broker, prefix: str, closing: list
) -> None:
    sub = Collector(restartable.port, f"{prefix}/+/faces", session="ferfast-test-overflow")
    closing.append(sub)
    sink = MqttSink(url(restartable.port, prefix), ["cam"], queue=50, reconnect_delay=(1, 1))
    closing.append(sink)
    for i in range(10):
        sink.write(record(i))
    assert sink.flush(10)
    restartable.stop()
    assert wait_for(lambda: not sink.stats().connected, 5.0)
    t0 = time.perf_counter()
    for i in range(10, 130):
        sink.write(record(i))
    assert time.perf_counter() - t0 < 1.0
    s = sink.stats()
    assert (s.written, s.published, s.dropped, s.queued) == (130, 10, 70, 50)
    restartable.start()
    assert sub.wait(lambda c: len(unique(c.frames())) >= 60, 20.0), sink.summary_line()
    assert sink.flush(10)
    assert unique(sub.frames()) == list(range(10)) + list(range(80, 130))
    s = sink.stats()
    assert (s.published, s.dropped, s.queued, s.reconnects) == (60, 70, 0, 1)
    sink.close()
    assert "published 60, dropped 70 (queue 50), unsent 0, reconnects 1" in sink.summary_line()


def test_close_with_the_broker_away_is_bounded_and_counts_the_unsent(
    restartable: Broker, prefix: str
) -> None:
    sink = MqttSink(url(restartable.port, prefix), ["cam"], flush_timeout=0.5)
    restartable.stop()
    assert wait_for(lambda: not sink.stats().connected, 5.0)
    for i in range(5):
        sink.write(record(i))
    t0 = time.monotonic()
    sink.close()
    assert time.monotonic() - t0 < 3.0
    assert sink.stats().unsent == 5
    assert "unsent 5" in sink.summary_line()
    with pytest.raises(ValueError, match="closed"):
        sink.write(record(5))


# -- a process that dies --------------------------------------------------------------------


def _stream(port: int, prefix: str, video: Path, model: Path, *args: str) -> subprocess.Popen[str]:
    """ferfast-stream on ``video`` with only the MQTT output, its source named ``cam``."""
    cmd = cli_command("--source", video, *engine_args(model), "--mqtt", url(port, prefix))
    cmd += ["--mqtt-source-name", "cam", "--no-progress", *args]
    return subprocess.Popen(
        cmd, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_last_will_says_offline_when_the_stream_is_killed(
    broker: Broker, prefix: str, closing: list, tiny_model: Path, tmp_path: Path
) -> None:
    video = write_face_video(tmp_path / "v.mp4", 150)
    sub = Collector(broker.port, f"{prefix}/#")
    closing.append(sub)
    proc = _stream(broker.port, prefix, video, tiny_model, "--realtime")
    try:
        assert sub.wait(lambda c: len(c.on("/faces")) >= 20, 30.0), proc.poll()
        assert sub.on("/cam/status")[0].payload == b"online"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)
    assert sub.wait(lambda c: c.on("/status")[-1].payload == b"offline", 5.0)
    late = Collector(broker.port, f"{prefix}/+/status")
    closing.append(late)
    assert late.wait(lambda c: len(c.messages) == 1)
    assert (late.messages[0].payload, late.messages[0].retain) == (b"offline", True)


def test_a_clean_stop_leaves_the_summary(
    broker: Broker, prefix: str, closing: list, tiny_model: Path, tmp_path: Path
) -> None:
    video = write_face_video(tmp_path / "v.mp4", 50)
    sub = Collector(broker.port, f"{prefix}/#")
    closing.append(sub)
    proc = _stream(broker.port, prefix, video, tiny_model)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out == ""  # --mqtt is an output: nothing on stdout
    assert "published 50, dropped 0" in err.splitlines()[-1]
    assert sub.wait(lambda c: c.on("/status")[-1].payload[:1] == b"{")
    assert sub.frames() == list(range(50))
    for message in sub.on("/cam/faces"):
        check_record(json.loads(message.payload))
    final = json.loads(sub.on("/cam/status")[-1].payload)
    assert (final["state"], final["reason"], final["frames"]) == ("stopped", "end", 50)
    assert final["mqtt"]["published"] == 50


def test_a_bad_broker_fails_before_the_model_loads(tiny_model: Path, tmp_path: Path) -> None:
    video = write_face_video(tmp_path / "v.mp4", 5)
    cmd = cli_command("--source", video, *engine_args(tiny_model))
    cmd += ["--mqtt", f"mqtt://127.0.0.1:{free_port()}/x", "--mqtt-timeout", "2"]
    res = subprocess.run(cmd, env=cli_env(), capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("ferfast-stream: error:") and "Traceback" not in res.stderr
