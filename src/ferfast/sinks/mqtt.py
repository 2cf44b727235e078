"""MQTT: frame records to a broker, as IoT fleets collect events (paho-mqtt, ``ferfast[mqtt]``).

Each record (the JSON Lines line of :class:`~ferfast.sinks.jsonl.JsonlSink`, compact JSON) goes
to ``PREFIX/<source>/faces`` with QoS 1. ``PREFIX/<source>/status`` is retained: ``online`` on
every connect, ``offline`` as the last will (the broker sends it when the connection dies
without a goodbye, e.g. a killed process), and on a clean stop a JSON object
``{"state": "stopped", ...summary, "mqtt": {...counters}}``.

``<source>`` is the record's source made topic-safe (:func:`topic_level`) or a name given per
source. Every source has its own connection, since a connection has one last will.

Nothing here blocks the caller: :meth:`MqttSink.write` serialises the record and appends it to
a bounded queue (``queue`` records per source); a sender thread per source hands them to paho,
at most ``inflight`` unacknowledged at once. While the broker is away the queue fills; when it
is full the oldest waiting record is dropped and counted. paho resends unacknowledged records
after a reconnect, so within the bound nothing is lost (QoS 1 is at least once: a record sent
just before a connection broke may arrive twice). paho-mqtt is imported only when a sink is
made, so ``ferfast-stream`` without ``--mqtt`` never loads it.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import logging
import os
import re
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ferfast._types import PathLike
from ferfast.argtypes import positive_int, seconds
from ferfast.records import FrameRecord

if TYPE_CHECKING:
    from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags
    from paho.mqtt.properties import Properties
    from paho.mqtt.reasoncodes import ReasonCode

__all__ = [
    "DEFAULT_INFLIGHT",
    "DEFAULT_QUEUE",
    "MODES",
    "PASSWORD_ENV",
    "MqttError",
    "MqttSink",
    "MqttStats",
    "MqttUrl",
    "add_mqtt_arguments",
    "mqtt_sink_from_args",
    "parse_mqtt_url",
    "topic_level",
]

log = logging.getLogger("ferfast.mqtt")

#: Records waiting per source while the broker is away (100 s of a 30 fps camera, ~0.5 kB each).
DEFAULT_QUEUE = 3000
#: Records handed to paho and not yet acknowledged (PUBACK), per source.
DEFAULT_INFLIGHT = 32
#: ``--mqtt-on``: every frame, or only frames where a face appears, leaves or changes emotion.
MODES = ("frame", "change")
#: The broker password when the URL names a user without one (keeps it out of ``ps``).
PASSWORD_ENV = "FERFAST_MQTT_PASSWORD"
DEFAULT_PREFIX = "ferfast"
KEEPALIVE_S = 30  # the broker declares a silent client dead (last will) after 1.5x this
_EXTRA_HINT = 'pip install "ferfast[mqtt]"'
_LEVEL_MAX = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class MqttError(RuntimeError):
    """The broker cannot be used: unreachable, refused, TLS failure, or paho-mqtt missing."""


@dataclass(frozen=True)
class MqttUrl:
    """A parsed ``mqtt://[user[:password]@]host[:port]/topic/prefix`` (``mqtts://``: TLS)."""

    tls: bool
    host: str
    port: int
    prefix: str  # topic levels before <source>, without the slashes at its ends
    username: str | None = None
    password: str | None = None

    @property
    def redacted(self) -> str:
        """The URL without its password (for messages, logs and the summary)."""
        user = "" if self.username is None else f"{urllib.parse.quote(self.username)}@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{host}:{self.port}/{self.prefix}"


def parse_mqtt_url(text: str, env: Mapping[str, str] | None = None) -> MqttUrl:
    """``text`` as an :class:`MqttUrl`; ValueError naming what is wrong.

    The port defaults to 1883 (``mqtt://``) or 8883 (``mqtts://``), the prefix to ``ferfast``.
    User and password may be percent-encoded; a user without a password takes it from
    ``$FERFAST_MQTT_PASSWORD`` (``env``, default ``os.environ``) when that is set.
    """
    parts = urllib.parse.urlsplit(text.strip())
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ValueError(f"expected mqtt://host[:port]/prefix or mqtts://..., got {text!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"an MQTT URL has no ?query or #fragment: {text!r}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:  # a port that is no number or out of range
        raise ValueError(f"bad port in {text!r}: {exc}") from None
    if not host:
        raise ValueError(f"no broker host in {text!r}")
    tls = parts.scheme == "mqtts"
    prefix = urllib.parse.unquote(parts.path).strip("/") or DEFAULT_PREFIX
    levels = prefix.split("/")
    if any(not level for level in levels) or any(c in prefix for c in "+#\0"):
        raise ValueError(f"topic prefix {prefix!r} must be levels without + # or empty ones")
    username = None if parts.username is None else urllib.parse.unquote(parts.username)
    password = None if parts.password is None else urllib.parse.unquote(parts.password)
    if username == "" and password is not None:
        raise ValueError("the MQTT URL gives a password without a user")
    if username and password is None:
        password = (os.environ if env is None else env).get(PASSWORD_ENV)
    return MqttUrl(tls, host, port or (8883 if tls else 1883), prefix, username or None, password)


def topic_level(source: str) -> str:
    """``source`` as one topic level: runs of characters other than ``A-Z a-z 0-9 _ . -``
    become one ``_`` (so no ``/ + #``), ``_`` is stripped from the ends, an empty result is
    ``source``; past 64 characters it is cut to 55 and ``-`` and 8 hex digits of its SHA-1
    added. ``rtsp://10.0.0.5/s1`` -> ``rtsp_10.0.0.5_s1``, ``/dev/video0`` -> ``dev_video0``.
    """
    level = _UNSAFE.sub("_", source).strip("_") or "source"
    if len(level) > _LEVEL_MAX:
        digest = hashlib.sha1(source.encode("utf-8")).hexdigest()[:8]
        level = f"{level[: _LEVEL_MAX - 9]}-{digest}"
    return level


@dataclass(frozen=True)
class MqttStats:
    """Counters of an :class:`MqttSink` (all sources together), for the summary and metrics."""

    written: int  # records given to write()
    skipped: int  # records not sent in change mode (nothing appeared, left or changed)
    published: int  # records the broker acknowledged (PUBACK)
    dropped: int  # records dropped, oldest first, because the queue was full
    queued: int  # records waiting or unacknowledged now
    unsent: int  # records still queued when close() gave up waiting for the broker
    reconnects: int  # connections made again after a loss
    connected: bool  # every source's connection is up

    def as_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return asdict(self)


def _paho() -> Any:
    """The paho.mqtt.client module, or MqttError naming the extra."""
    try:
        import paho.mqtt.client as mqtt
    except ImportError:
        raise MqttError(f"--mqtt needs paho-mqtt: {_EXTRA_HINT}") from None
    return mqtt


def _reason_text(reason: ReasonCode) -> str:
    text = str(reason)
    if reason.value in (0x04, 0x05, 0x86, 0x87):  # MQTT 3.1.1 and 5 codes of a bad login
        text += " (check the user and password)"
    return text


class _Connection:
    """One source's connection: its queue, sender thread, last will and counters."""

    def __init__(self, sink: MqttSink, source: str, level: str, client_id: str) -> None:
        mqtt = _paho()
        self.sink = sink
        self.source = source
        self.faces_topic = f"{sink.url.prefix}/{level}/faces"
        self.status_topic = f"{sink.url.prefix}/{level}/status"
        self.cond = threading.Condition()
        self.pending: collections.deque[bytes] = collections.deque()
        self.inflight = 0
        self.face_mids: set[int] = set()
        self.status_mids: set[int] = set()
        self.early_acks: set[int] = set()  # PUBACKs that came before publish() returned
        self.written = self.skipped = self.published = self.dropped = self.reconnects = 0
        self.unsent = 0
        self.connected = False
        # After a reconnect paho resends the unacknowledged records first; new ones wait for
        # those acknowledgements, so records arrive in order.
        self.resuming = False
        self.ever_connected = False
        self.refused: str | None = None  # the broker's reason for refusing the login
        self.closed_early: str | None = None  # the connection closed before the broker answered
        self.answered = threading.Event()  # the first CONNACK arrived (accepted or not)
        self.stopping = False  # close(): send what is queued, then stop
        self.last_faces: dict[object, str] = {}  # change mode: face key -> emotion last sent
        self.thread: threading.Thread | None = None

        client: Client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
        )
        # paho never queues beyond this: the sender keeps at most `inflight` records there, plus
        # a few status messages.
        client.max_inflight_messages_set(sink.inflight + 4)
        client.max_queued_messages_set(0)
        client.reconnect_delay_set(*sink.reconnect_delay)
        client.connect_timeout = sink.timeout
        url = sink.url
        if url.username is not None:
            client.username_pw_set(url.username, url.password)
        if url.tls:
            try:
                client.tls_set(
                    ca_certs=None if sink.ca is None else str(sink.ca),
                    certfile=None if sink.cert is None else str(sink.cert),
                    keyfile=None if sink.key is None else str(sink.key),
                )
            except (OSError, ValueError) as exc:  # ssl.SSLError: not PEM, key does not match
                raise MqttError(f"--mqtt {sink.name}: cannot load the TLS files: {exc}") from None
        client.will_set(self.status_topic, "offline", qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self.client = client

    # -- paho's loop thread --------------------------------------------------------------

    def _on_connect(
        self,
        client: Client,
        _userdata: object,
        _flags: ConnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            self.refused = _reason_text(reason)
            self.answered.set()
            return
        self._publish_status("online")
        with self.cond:
            if self.ever_connected:
                self.reconnects += 1
                log.info(
                    "MQTT: reconnected to %s (%d records queued)",
                    self.sink.name,
                    len(self.pending) + self.inflight,
                )
            self.connected = self.ever_connected = True
            self.resuming = self.inflight > 0
            self.cond.notify_all()
        self.answered.set()

    def _on_disconnect(
        self,
        _client: Client,
        _userdata: object,
        _flags: DisconnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        with self.cond:
            was = self.connected
            self.connected = False
        if not self.answered.is_set():  # closed before any CONNACK: no point in waiting
            self.closed_early = str(reason)
            self.answered.set()
        if was and not self.stopping:
            log.warning(
                "MQTT: lost the connection to %s; records wait in a queue of %d (%s)",
                self.sink.name,
                self.sink.queue,
                "reconnecting" if reason.value == 0x80 else f"{reason}, reconnecting",
            )

    def _on_publish(
        self,
        _client: Client,
        _userdata: object,
        mid: int,
        _reason: ReasonCode,
        _properties: Properties,
    ) -> None:
        with self.cond:
            if mid in self.face_mids:
                self.face_mids.discard(mid)
                self._acked()
            elif mid in self.status_mids:
                self.status_mids.discard(mid)
                self.cond.notify_all()
            else:
                self.early_acks.add(mid)

    def _acked(self) -> None:  # under self.cond
        self.inflight -= 1
        self.published += 1
        if not self.inflight:
            self.resuming = False
        self.cond.notify_all()

    def _may_send(self, window: int) -> bool:  # under self.cond
        return (
            self.connected and bool(self.pending) and self.inflight < window and not self.resuming
        )

    # -- the sender thread -----------------------------------------------------------------

    def _send(self) -> None:
        """Hand queued records to paho in order, at most ``inflight`` unacknowledged at once."""
        window = self.sink.inflight
        while True:
            with self.cond:
                while not (self._may_send(window) or self.stopping):
                    self.cond.wait()
                if not self._may_send(window):
                    return  # stopping: close() waited for the queue as long as it may
                payload = self.pending.popleft()
                self.inflight += 1
            # Never under self.cond: paho calls _on_publish while holding its own lock.
            try:
                info = self.client.publish(self.faces_topic, payload, qos=1)
            except (ValueError, RuntimeError) as exc:  # a record paho will not take: count it
                log.error("MQTT: cannot publish a record to %s: %s", self.faces_topic, exc)
                with self.cond:
                    self.inflight -= 1
                    self.dropped += 1
                    self.cond.notify_all()
                continue
            # Success, or not connected just now: paho keeps the message and sends it after the
            # reconnect either way. Anything else is a bug in the arguments, not the network.
            with self.cond:
                if info.mid in self.early_acks:
                    self.early_acks.discard(info.mid)
                    self._acked()
                else:
                    self.face_mids.add(info.mid)

    def _publish_status(self, payload: str) -> None:
        info = self.client.publish(self.status_topic, payload, qos=1, retain=True)
        with self.cond:
            if info.mid in self.early_acks:
                self.early_acks.discard(info.mid)
            else:
                self.status_mids.add(info.mid)

    # -- the caller's thread -----------------------------------------------------------------

    def start(self, timeout: float) -> None:
        """Connect (TCP, TLS, CONNACK) within ``timeout`` seconds, else MqttError."""
        url = self.sink.url
        where = f"--mqtt {self.sink.name}"
        try:
            self.client.connect(url.host, url.port, keepalive=KEEPALIVE_S)
        except ssl.SSLCertVerificationError as exc:
            hint = "" if self.sink.ca else " (--mqtt-ca names the CA that signed the broker's)"
            raise MqttError(
                f"{where}: TLS: cannot verify the broker's certificate: {exc.verify_message}{hint}"
            ) from None
        except ssl.SSLError as exc:
            raise MqttError(f"{where}: TLS failed: {exc.reason or exc}") from None
        except TimeoutError:
            raise MqttError(f"{where}: no connection within {timeout:g} s") from None
        except OSError as exc:
            raise MqttError(f"{where}: cannot connect: {exc.strerror or exc}") from None
        self.client.loop_start()
        answered = self.answered.wait(timeout)
        if not answered or not self.ever_connected:
            if not answered:
                error = f"the broker did not answer within {timeout:g} s"
            elif self.refused is not None:
                error = f"the broker refused the connection: {self.refused}"
            else:
                error = "the connection closed before the broker answered; " + (
                    "does it require a client certificate (--mqtt-cert, --mqtt-key)?"
                    if url.tls
                    else "is it a TLS port (mqtts://)?"
                )
            self.client.disconnect()
            self.client.loop_stop()
            raise MqttError(f"{where}: {error}")
        self.thread = threading.Thread(
            target=self._send, name=f"mqtt-send {self.source}", daemon=True
        )
        self.thread.start()

    def changed(self, record: FrameRecord) -> bool:
        """Whether a face appeared, left or changed emotion since the last record sent."""
        now: dict[object, str] = {
            (face.track_id if face.track_id is not None else ("#", i)): face.emotion
            for i, face in enumerate(record.faces)
        }
        if now == self.last_faces:
            return False
        self.last_faces = now
        return True

    def put(self, record: FrameRecord) -> None:
        """Queue ``record`` (dropping the oldest waiting one when the queue is full)."""
        with self.cond:
            self.written += 1
        if self.sink.mode == "change" and not self.changed(record):
            with self.cond:
                self.skipped += 1
            return
        payload = record.json.encode("utf-8")
        with self.cond:
            if len(self.pending) >= self.sink.queue:
                self.pending.popleft()
                self.dropped += 1
            self.pending.append(payload)
            self.cond.notify_all()

    def idle(self) -> bool:
        with self.cond:
            return not self.pending and not self.inflight and not self.status_mids

    def wait_idle(self, deadline: float) -> bool:
        """Wait until everything queued is acknowledged, or ``deadline`` (monotonic) passes."""
        with self.cond:
            while self.pending or self.inflight or self.status_mids:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
        return True

    def stop(self, summary: Mapping[str, Any], deadline: float) -> None:
        """Send the queue (until ``deadline``), publish the final status with ``summary`` and
        the counters, disconnect cleanly."""
        self.wait_idle(deadline)
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        if self.thread is not None:
            self.thread.join()
        counters = self.stats().as_dict()
        for key in ("unsent", "connected"):
            counters.pop(key)
        status = {"state": "stopped", **summary, "mqtt": counters}
        self._publish_status(json.dumps(status, separators=(",", ":")))
        self.wait_idle(deadline)
        with self.cond:
            self.unsent = len(self.pending) + self.inflight
        # A clean DISCONNECT: the broker discards the last will, the status stays as set.
        self.client.disconnect()
        self.client.loop_stop()

    def stats(self) -> MqttStats:
        with self.cond:
            return MqttStats(
                written=self.written,
                skipped=self.skipped,
                published=self.published,
                dropped=self.dropped,
                queued=len(self.pending) + self.inflight,
                unsent=self.unsent,
                reconnects=self.reconnects,
                connected=self.connected,
            )


class MqttSink:
    """Publishes frame records to an MQTT broker, one connection per source.

    ``sources``: the record ``source`` values this sink will see; ``names``: their topic levels
    (default :func:`topic_level` of each; two sources may not share one). Connects at once and
    raises :class:`MqttError` when a broker cannot be reached, refuses the login or fails TLS
    within ``timeout`` seconds. ``mode``: ``"frame"`` sends every record, ``"change"`` only
    those where a face (by track id) appears, leaves or changes emotion.

    A record of a source not named here goes to the first source's topic. Call
    :meth:`publish_summary` before :meth:`close` to leave the run summary in the status topic.
    """

    def __init__(
        self,
        url: str | MqttUrl,
        sources: Sequence[str],
        *,
        names: Sequence[str] | None = None,
        queue: int = DEFAULT_QUEUE,
        mode: str = "frame",
        ca: PathLike | None = None,
        cert: PathLike | None = None,
        key: PathLike | None = None,
        client_id: str | None = None,
        timeout: float = 5.0,
        flush_timeout: float = 5.0,
        reconnect_delay: tuple[int, int] = (1, 30),
        inflight: int = DEFAULT_INFLIGHT,
    ) -> None:
        self.url = parse_mqtt_url(url) if isinstance(url, str) else url
        self.name = self.url.redacted
        if not sources:
            raise ValueError("MqttSink needs at least one source")
        if names is None:
            names = [topic_level(s) for s in sources]
        if len(names) != len(sources):
            raise ValueError(f"{len(names)} MQTT source names for {len(sources)} sources")
        for level in names:
            if topic_level(level) != level:
                raise ValueError(
                    f"MQTT source name {level!r} must be letters, digits, '_', '.' or '-'"
                )
        clash = [n for n, k in collections.Counter(names).items() if k > 1]
        if clash:
            raise ValueError(
                f"two sources share the MQTT topic level {clash[0]!r}; name them with "
                "--mqtt-source-name"
            )
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if queue < 1 or inflight < 1:
            raise ValueError(f"queue and inflight must be >= 1, got {queue} and {inflight}")
        if not self.url.tls and (ca or cert or key):
            raise ValueError("--mqtt-ca, --mqtt-cert and --mqtt-key need an mqtts:// URL")
        if (cert is None) != (key is None):
            raise ValueError("--mqtt-cert and --mqtt-key go together")
        for option, path in (("--mqtt-ca", ca), ("--mqtt-cert", cert), ("--mqtt-key", key)):
            if path is not None and not Path(path).is_file():
                raise ValueError(f"{option} {path}: no such file")
        self.queue, self.mode, self.inflight = queue, mode, inflight
        self.ca, self.cert, self.key = ca, cert, key
        self.timeout, self.flush_timeout = timeout, flush_timeout
        self.reconnect_delay = reconnect_delay
        base = client_id or f"ferfast-{socket.gethostname()}-{os.getpid()}"
        self._summaries: dict[str, dict[str, Any]] = {}
        self._closed = False
        self._connections: dict[str, _Connection] = {}
        try:
            for i, (source, level) in enumerate(zip(sources, names, strict=True)):
                cid = base if len(sources) == 1 else f"{base}-{i}"
                conn = _Connection(self, source, level, cid)
                conn.start(timeout)
                self._connections[source] = conn
        except BaseException:
            for conn in self._connections.values():
                conn.client.disconnect()
                conn.client.loop_stop()
            raise
        self._first = next(iter(self._connections.values()))

    def write(self, record: FrameRecord) -> None:
        """Queue ``record`` for its source's topic; returns at once."""
        if self._closed:
            raise ValueError(f"MQTT sink {self.name} is closed")
        self._connections.get(record.source, self._first).put(record)

    def publish_summary(self, data: Mapping[str, Any], source: str | None = None) -> None:
        """Leave ``data`` (the run summary) in the status topic of ``source`` (None: every
        source) when the sink closes: ``{"state": "stopped", **data, "mqtt": {counters}}``."""
        for key in self._connections if source is None else [source]:
            if key not in self._connections:
                raise ValueError(f"MQTT sink {self.name} has no source {key!r}")
            self._summaries[key] = dict(data)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued record is acknowledged (``timeout`` seconds at most; None:
        the sink's ``flush_timeout``); whether that happened."""
        deadline = time.monotonic() + (self.flush_timeout if timeout is None else timeout)
        return all(conn.wait_idle(deadline) for conn in self._connections.values())

    def close(self) -> None:
        """Send what is queued (``flush_timeout`` seconds at most), publish the final status,
        disconnect. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + self.flush_timeout
        for source, conn in self._connections.items():
            conn.stop(self._summaries.get(source, {}), deadline)
        stats = self.stats()
        if stats.unsent:
            log.warning(
                "MQTT: %d records not delivered to %s before closing", stats.unsent, self.name
            )

    def stats(self) -> MqttStats:
        """The counters now, summed over the sources (``connected``: all of them are)."""
        parts = [conn.stats() for conn in self._connections.values()]
        return MqttStats(
            written=sum(p.written for p in parts),
            skipped=sum(p.skipped for p in parts),
            published=sum(p.published for p in parts),
            dropped=sum(p.dropped for p in parts),
            queued=sum(p.queued for p in parts),
            unsent=sum(p.unsent for p in parts),
            reconnects=sum(p.reconnects for p in parts),
            connected=all(p.connected for p in parts),
        )

    def source_stats(self) -> dict[str, MqttStats]:
        """The counters now, per source (the record ``source`` values)."""
        return {source: conn.stats() for source, conn in self._connections.items()}

    def summary_line(self) -> str:
        """One line for the run summary, e.g. ``mqtt mqtt://host:1883/ferfast: published 300,
        dropped 0 (queue 3000), unsent 0, reconnects 0``."""
        s = self.stats()
        line = (
            f"mqtt {self.name}: published {s.published}, dropped {s.dropped} (queue "
            f"{self.queue}), unsent {s.unsent if self._closed else s.queued}, reconnects "
            f"{s.reconnects}"
        )
        if self.mode == "change":
            line += f", unchanged frames not sent {s.skipped}"
        return line


def add_mqtt_arguments(group: argparse._ArgumentGroup | argparse.ArgumentParser) -> None:
    """The ``--mqtt*`` options of ``ferfast-stream`` (see :func:`mqtt_sink_from_args`)."""
    group.add_argument(
        "--mqtt",
        metavar="URL",
        help="publish every frame record to an MQTT broker: mqtt://[user[:pass]@]host[:port]/"
        "prefix (mqtts:// for TLS; ports 1883/8883; prefix default 'ferfast'); records go to "
        "PREFIX/<source>/faces (QoS 1), PREFIX/<source>/status is retained (online, offline, "
        f"the summary); a user without a password takes ${PASSWORD_ENV}. Needs {_EXTRA_HINT}",
    )
    group.add_argument(
        "--mqtt-on",
        choices=MODES,
        default="frame",
        help="send every frame (default) or only frames where a face appears, leaves or "
        "changes emotion (slow links)",
    )
    group.add_argument(
        "--mqtt-queue",
        type=positive_int,
        default=DEFAULT_QUEUE,
        metavar="N",
        help="records kept per source while the broker is away; beyond it the oldest are "
        f"dropped and counted (default {DEFAULT_QUEUE})",
    )
    group.add_argument(
        "--mqtt-source-name",
        action="append",
        metavar="NAME",
        help="the <source> topic level, once per --source in order (default: the source "
        "with every run of characters other than letters, digits, '_', '.', '-' as one '_')",
    )
    group.add_argument(
        "--mqtt-ca", metavar="FILE", help="CA certificates (PEM) for mqtts:// (default: system)"
    )
    group.add_argument("--mqtt-cert", metavar="FILE", help="client certificate (PEM) for mqtts://")
    group.add_argument("--mqtt-key", metavar="FILE", help="its private key (PEM)")
    group.add_argument(
        "--mqtt-client-id",
        metavar="ID",
        help="MQTT client id (default ferfast-<host>-<pid>; '-<n>' is added per source when "
        "there are several)",
    )
    group.add_argument(
        "--mqtt-timeout",
        type=seconds,
        default=5.0,
        metavar="S",
        help="time to connect at start, and to send what is queued at the end (default 5)",
    )


def mqtt_sink_from_args(args: argparse.Namespace, sources: Sequence[str]) -> MqttSink | None:
    """The sink ``--mqtt`` asks for (connected), or None without ``--mqtt``.

    ``sources``: the ``--source`` texts in order (their record names are derived from them, a
    URL without its user and password). ValueError for bad option values, MqttError when the
    broker cannot be used or paho-mqtt is missing.
    """
    if not args.mqtt:
        return None
    url = parse_mqtt_url(args.mqtt)
    _paho()  # the missing extra first: it is the one fix needed
    from ferfast.stream.sources import parse_source

    names = [parse_source(text).name for text in sources]
    levels = args.mqtt_source_name
    if levels is not None and len(levels) != len(sources):
        raise ValueError(
            f"--mqtt-source-name is given {len(levels)} times for {len(sources)} --source"
        )
    return MqttSink(
        url,
        names,
        names=levels,
        queue=args.mqtt_queue,
        mode=args.mqtt_on,
        ca=args.mqtt_ca,
        cert=args.mqtt_cert,
        key=args.mqtt_key,
        client_id=args.mqtt_client_id,
        timeout=args.mqtt_timeout,
        flush_timeout=args.mqtt_timeout,
    )
