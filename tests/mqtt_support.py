"""Helpers for the MQTT tests and benchmark: a mosquitto broker on loopback, a subscriber that
collects what arrives, test certificates and frame records."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from stream_support import wait_for

from ferfast.faces import FaceResult
from ferfast.records import FrameRecord

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@dataclass
class Listener:
    """One mosquitto listener: anonymous, with a password file, or TLS (optionally requiring a
    client certificate)."""

    port: int
    password_file: Path | None = None
    tls: TestCerts | None = None
    require_certificate: bool = False

    def conf(self) -> str:
        lines = [f"listener {self.port} 127.0.0.1"]
        if self.password_file is not None:
            lines += ["allow_anonymous false", f"password_file {self.password_file}"]
        else:
            lines.append("allow_anonymous true")
        if self.tls is not None:
            lines += [
                f"cafile {self.tls.ca}",
                f"certfile {self.tls.server_cert}",
                f"keyfile {self.tls.server_key}",
            ]
            if self.require_certificate:
                lines.append("require_certificate true")
        return "\n".join(lines)


@dataclass
class Broker:
    """``mosquitto -c CONF`` on loopback; ``stop()`` and ``start()`` restart it on the same
    ports (with ``persistence``, subscriptions and queued messages survive the restart)."""

    folder: Path
    listeners: list[Listener]
    persistence: bool = False
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def port(self) -> int:
        return self.listeners[0].port

    def start(self) -> Broker:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        conf = self.folder / "mosquitto.conf"
        lines = [
            "per_listener_settings true",
            f"persistence {'true' if self.persistence else 'false'}",
            # Root would otherwise switch to the mosquitto user, which cannot read these files.
            "user root",
            "log_dest stderr",
            "log_type error",
            "max_queued_messages 100000",
        ]
        if self.persistence:
            lines.append(f"persistence_location {self.folder}/")
        lines += [listener.conf() for listener in self.listeners]
        conf.write_text("\n".join(lines) + "\n")
        log = (self.folder / "mosquitto.log").open("ab")
        self.proc = subprocess.Popen([exe, "-c", str(conf)], stdout=log, stderr=log)
        log.close()
        ok = wait_for(lambda: all(_accepts(x.port) for x in self.listeners), 10.0)
        if not ok:
            self.stop()
            raise RuntimeError(f"mosquitto did not start: {self.log()}")
        return self

    def stop(self) -> None:
        """SIGTERM (mosquitto saves its persistence file) and wait."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def log(self) -> str:
        path = self.folder / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""


def need_mosquitto() -> None:
    if shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
        pytest.skip("mosquitto is not installed (Debian package mosquitto)")


def make_password_file(path: Path, user: str, password: str) -> Path:
    exe = shutil.which("mosquitto_passwd")
    if exe is None:
        pytest.skip("mosquitto_passwd is not installed (Debian package mosquitto)")
    subprocess.run([exe, "-b", "-c", str(path), user, password], check=True, capture_output=True)
    return path


@dataclass(frozen=True)
class TestCerts:
    """A self-signed CA, a server certificate for 127.0.0.1 and a client certificate."""

    __test__ = False  # not a pytest test class

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # a CA that signed nothing here


def make_certs(folder: Path) -> TestCerts:
    """Certificates made with the openssl command (P-256 keys; skips without openssl)."""
    exe = shutil.which("openssl")
    if exe is None:
        pytest.skip("the openssl command is not installed")

    def run(*args: str) -> None:
        subprocess.run([exe, *args], check=True, capture_output=True, cwd=folder)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for name in ("ca", "other_ca"):
        run("req", "-x509", *ec, "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2",
            "-subj", f"/CN=ferfast test {name}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    for name, ext in (
        ("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ):
        (folder / f"{name}.ext").write_text(ext)
        run("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
            "-subj", f"/CN=ferfast test {name}")  # fmt: skip
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.crt", "-days", "2",
            "-extfile", f"{name}.ext")  # fmt: skip
    return TestCerts(
        folder / "ca.crt",
        folder / "server.crt",
        folder / "server.key",
        folder / "client.crt",
        folder / "client.key",
        folder / "other_ca.crt",
    )


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    retain: bool


class Collector:
    """A paho subscriber on ``topic`` (QoS 1) that keeps every message that arrives.

    ``session``: a persistent session (clean_session false) under that client id, so that a
    broker with persistence keeps what arrives while this subscriber reconnects.
    """

    def __init__(self, port: int, topic: str = "#", session: str | None = None) -> None:
        import paho.mqtt.client as mqtt

        self.messages: list[Message] = []
        self.cond = threading.Condition()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=session or "",
            clean_session=session is None,
        )
        self.client.reconnect_delay_set(1, 1)
        self.topic = topic
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        assert self._subscribed.wait(5.0), "the test subscriber did not subscribe"

    def _on_connect(self, client, _userdata, _flags, reason, _properties) -> None:
        if not reason.is_failure:
            client.subscribe(self.topic, qos=1)

    def _on_message(self, _client, _userdata, msg) -> None:
        with self.cond:
            self.messages.append(Message(msg.topic, bytes(msg.payload), bool(msg.retain)))
            self.cond.notify_all()

    def on(self, suffix: str) -> list[Message]:
        """The messages so far whose topic ends with ``suffix``."""
        with self.cond:
            return [m for m in self.messages if m.topic.endswith(suffix)]

    def frames(self, suffix: str = "/faces") -> list[int]:
        """The ``frame`` numbers of the records received so far, in arrival order."""
        return [json.loads(m.payload)["frame"] for m in self.on(suffix)]

    def wait(self, predicate: Callable[[Collector], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(left, 0.1))
        return True

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def unique(frames: list[int]) -> list[int]:
    """``frames`` without repeats (QoS 1 may deliver a record twice after a reconnect)."""
    seen: set[int] = set()
    out = []
    for f in frames:
        if f not in seen:
            seen.add(f)
            out.append(f)
    return out


def face(track_id: int | None, emotion: str = "happy", x: float = 10.0) -> FaceResult:
    probs = np.full(len(EMOTIONS), 0.05, np.float32)
    probs[EMOTIONS.index(emotion)] = 0.7
    return FaceResult((x, 20.0, 30.5, 40.25), 0.91, None, probs, emotion, EMOTIONS, None, track_id)


def record(frame: int, source: str = "cam", faces: list[FaceResult] | None = None) -> FrameRecord:
    """A frame record with one tracked face (id 1) unless ``faces`` says otherwise."""
    faces = [face(1, EMOTIONS[frame % 7])] if faces is None else faces
    return FrameRecord(source, frame, 1_700_000_000.0 + frame / 30, faces, EMOTIONS)
