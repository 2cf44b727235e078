"""MQTT throughput through a local mosquitto (docs/stream.md "MQTT").

- ``test_records_per_second``: N frame records (one face each, ~330 bytes) written to an
  :class:`~ferfast.sinks.mqtt.MqttSink` as fast as it takes them, until the last one reached a
  subscriber on the same broker: records per second end to end (QoS 1 both ways), for a few
  in-flight windows (``inflight``; the default is 32).
- ``test_write_cost``: one ``MqttSink.write`` (the change filter, JSON, the queue): what the
  stream loop pays per frame.
- ``test_delivery_after_restart``: the broker stops, a full queue (3,000 records, 100 s of a 30 fps
  camera) is written meanwhile, the broker starts again: how many arrive (all of them is the
  contract), how long from the broker's start to the sink's reconnect, and at what rate the
  queue drains after it.

Loopback only, nothing leaves the machine. Skips without mosquitto or paho-mqtt.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("paho.mqtt.client", reason="paho-mqtt is in the 'mqtt' extra")

from mqtt_support import (  # noqa: E402
    Broker,
    Collector,
    Listener,
    free_port,
    need_mosquitto,
    record,
    unique,
    wait_for,
)

from ferfast.sinks.mqtt import DEFAULT_INFLIGHT, MqttSink  # noqa: E402

N = 5000
QUEUE = 3000


@pytest.fixture()
def broker(tmp_path: Path) -> Iterator[Broker]:
    need_mosquitto()
    b = Broker(tmp_path, [Listener(free_port())], persistence=True)
    b.start()
    yield b
    b.stop()


@pytest.mark.parametrize("inflight", [8, DEFAULT_INFLIGHT, 128])
def test_records_per_second(benchmark, broker: Broker, inflight: int) -> None:
    sub = Collector(broker.port, "bench/+/faces")
    sink = MqttSink(f"mqtt://127.0.0.1:{broker.port}/bench", ["cam"], queue=N, inflight=inflight)
    records = [record(i) for i in range(N)]
    rounds: list[float] = []

    def run() -> None:
        with sub.cond:
            sub.messages.clear()
        t0 = time.perf_counter()
        for r in records:
            sink.write(r)
        assert sub.wait(lambda c: len(c.messages) >= N, 60.0)
        rounds.append(time.perf_counter() - t0)

    try:
        benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)
        assert sink.flush(10)
        assert sink.stats().dropped == 0
    finally:
        sink.close()
        sub.close()
    best = N / min(rounds)
    median = N / sorted(rounds)[len(rounds) // 2]
    benchmark.group = "mqtt records/s"
    benchmark.extra_info.update(records=N, inflight=inflight, per_s_median=round(median))
    print(f"\nmqtt inflight {inflight}: {median:,.0f} records/s median, {best:,.0f} best")


def test_write_cost(benchmark, broker: Broker) -> None:
    sink = MqttSink(f"mqtt://127.0.0.1:{broker.port}/bench", ["cam"], queue=1_000_000)
    r = record(3)
    try:
        benchmark(sink.write, r)
    finally:
        sink.close()
    benchmark.group = "mqtt write"


def test_delivery_after_restart(benchmark, broker: Broker) -> None:
    sub = Collector(broker.port, "bench/+/faces", session="ferfast-bench-restart")
    sink = MqttSink(
        f"mqtt://127.0.0.1:{broker.port}/bench", ["cam"], queue=QUEUE, reconnect_delay=(1, 1)
    )
    figures: list[tuple[int, float, float]] = []
    frame = 0

    def restart() -> None:
        nonlocal frame
        with sub.cond:
            sub.messages.clear()
        broker.stop()
        assert wait_for(lambda: not sink.stats().connected, 5.0)
        first = frame
        for _ in range(QUEUE):
            sink.write(record(frame))
            frame += 1
        reconnects = sink.stats().reconnects
        t0 = time.perf_counter()
        broker.start()
        assert wait_for(lambda: sink.stats().reconnects > reconnects, 10.0, interval=0.001)
        t1 = time.perf_counter()
        assert sub.wait(lambda c: len(unique(c.frames())) >= QUEUE, 60.0)
        t2 = time.perf_counter()
        assert unique(sub.frames()) == list(range(first, frame))
        figures.append((QUEUE, t1 - t0, QUEUE / (t2 - t1)))

    try:
        benchmark.pedantic(restart, rounds=3, iterations=1)
        assert sink.stats().dropped == 0
    finally:
        sink.close()
        sub.close()
    benchmark.group = "mqtt restart"
    delivered = sum(f[0] for f in figures)
    reconnect_s = sorted(f[1] for f in figures)[len(figures) // 2]
    drain = sorted(f[2] for f in figures)[len(figures) // 2]
    benchmark.extra_info.update(
        delivered=f"{delivered}/{QUEUE * len(figures)}",
        reconnect_s=round(reconnect_s, 2),
        drain_per_s=round(drain),
    )
    print(
        f"\nmqtt restart: {delivered}/{QUEUE * len(figures)} queued records delivered; "
        f"reconnect {reconnect_s:.2f} s after the broker started (median), then "
        f"{drain:,.0f} records/s"
    )
