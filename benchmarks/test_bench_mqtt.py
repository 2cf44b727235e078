"""MQTT throughput through a local mosquitto (docs/stream.md "MQTT").

- ``test_records_per_second``: N frame records (one face each, ~330 bytes) written to an
  :class:`~ferfast.sinks.mqtt.MqttSink` as fast as it takes them, until the last one reached a
  subscriber on the same broker: records per second end to end (QoS 1 both ways), for a few
  in-flight windows (``inflight``; the default is 32).
- ``test_write_cost``: one ``MqttSink.write`` (the change filter, JSON, the queue): what the
  stream loop pays per frame.
- ``test_stream_cost``: the stream loop on the benchmark video (the fast INT8 model, YuNet at 320,
  default cadence) with no output, ``--jsonl``, ``--mqtt`` and ``--mqtt-on change``, alternating
  (3 rounds): fps and process CPU per frame (the sender and paho threads included).
- ``test_delivery_after_restart``: the broker stops, a full queue (3,000 records, 100 s of a 30 fps
  camera) is written meanwhile, the broker starts again: how many arrive (all of them is the
  contract), how long from the broker's start to the sink's reconnect, and at what rate the
  queue drains after it.

Loopback only, nothing leaves the machine. Skips without mosquitto or paho-mqtt.
"""

from __future__ import annotations

import statistics
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

from ferfast.sinks import JsonlSink  # noqa: E402
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


def test_stream_cost(benchmark, broker: Broker, tmp_path: Path) -> None:
    from stream_support import YUNET, write_face_video

    from ferfast import Engine
    from ferfast.stream.pipeline import Lane, StreamLoop
    from ferfast.stream.sources import FrameSource, parse_source
    from ferfast.stream.tracking import IouTracker

    video = write_face_video(tmp_path / "face.mp4", 300)
    engine = Engine("fast", detector="yunet", detector_model=str(YUNET), threads=1)
    outputs = ("none", "jsonl", "mqtt", "mqtt change")
    fps: dict[str, list[float]] = {k: [] for k in outputs}
    cpu: dict[str, list[float]] = {k: [] for k in outputs}

    def run(kind: str, i: int) -> None:
        sinks: list = []
        if kind == "jsonl":
            sinks.append(JsonlSink(tmp_path / f"{i}.jsonl", engine.emotions, option="--jsonl"))
        elif kind.startswith("mqtt"):
            mode = "change" if kind.endswith("change") else "frame"
            url = f"mqtt://127.0.0.1:{broker.port}/bench"
            sinks.append(MqttSink(url, [str(video)], mode=mode))
        source = FrameSource(parse_source(str(video)), decode_threads=1).open().start()
        try:
            lane = Lane(source, IouTracker(engine.emotions))
            result = StreamLoop(engine, [lane], sinks=sinks).run()
        finally:
            source.stop()
            for sink in sinks:
                sink.close()
        if kind == "mqtt":
            stats = sinks[0].stats()
            assert (stats.published, stats.dropped) == (300, 0)
        fps[kind].append(result.summary.fps)
        cpu[kind].append(result.summary.cpu_ms_per_frame)

    def rounds() -> None:
        for i in range(3):
            for kind in outputs:
                run(kind, i)

    benchmark.pedantic(rounds, rounds=1, iterations=1)
    benchmark.group = "mqtt stream"
    print()
    for kind in outputs:
        line = (
            f"{kind:12} {statistics.median(fps[kind]):6.0f} fps "
            f"({' '.join(f'{f:.0f}' for f in fps[kind])}), "
            f"{statistics.median(cpu[kind]):.2f} ms CPU per frame"
        )
        benchmark.extra_info[kind] = line
        print(f"stream, {line}")
