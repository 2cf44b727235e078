"""Prometheus metrics of a running ``ferfast-stream`` (``--metrics-port``), with prometheus-client.

The collector reads the loop's own counters (:class:`~ferfast.stream.stats.RunStats`, the
sources' read / drop / reconnect counts, an MQTT sink's queue) when Prometheus scrapes, so a
frame pays nothing for being watched beyond one histogram bucket per stage. Every series but
``ferfast_info`` carries a ``source`` label (the source's name, a URL without its password).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .stats import BUCKETS

if TYPE_CHECKING:
    from .pipeline import Lane

#: The stages exported as latency histograms (``ferfast_stage_seconds{stage=...}``).
EXPORTED_STAGES = ("read", "detect", "classify", "track", "output", "latency")

#: Per-source counters: metric name (without ``ferfast_`` and ``_total``), help, how to read it.
_COUNTERS: tuple[tuple[str, str, Callable[[Lane], int]], ...] = (
    ("frames", "Frames processed", lambda lane: lane.stats.frames),
    ("frames_read", "Frames decoded from the source", lambda lane: lane.source.frames_read),
    ("faces", "Faces classified", lambda lane: lane.stats.faces),
    ("dropped_frames", "Frames a live source dropped: inference was behind",
     lambda lane: lane.source.dropped),
    ("undecodable_frames", "Frames that did not decode and were skipped",
     lambda lane: lane.source.undecodable),
    ("reconnects", "Successful reconnects of a live source", lambda lane: lane.source.reconnects),
    ("detector_runs", "Frames the face detector ran on", lambda lane: lane.stats.detections),
    ("redetects", "Early detector runs: a carried face no longer looked like itself",
     lambda lane: lane.stats.redetects),
)  # fmt: skip


@dataclass(frozen=True)
class QueueStats:
    """What an output with a send queue (the MQTT sink) reports to metrics."""

    published: int  # records delivered
    dropped: int  # records dropped because the queue was full
    depth: int  # records waiting now


class StreamCollector:
    """A prometheus-client collector over the loop's lanes (register it in a registry)."""

    def __init__(
        self,
        lanes: Sequence[Lane],
        info: dict[str, str],
        queues: Sequence[Callable[[], dict[str, QueueStats]]] = (),
    ) -> None:
        """``info``: the ``ferfast_info`` labels (version, model, backend, ...); ``queues``:
        callables giving per-source :class:`QueueStats` (e.g. the MQTT sink's)."""
        self.lanes = list(lanes)
        self.info = dict(info)
        self.queues = list(queues)
        for lane in self.lanes:
            lane.stats.keep_histograms()

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
            InfoMetricFamily,
        )

        yield InfoMetricFamily("ferfast", "ferfast-stream version, model and backend", self.info)
        names = [lane.source.spec.name for lane in self.lanes]
        for metric, doc, read in _COUNTERS:
            family = CounterMetricFamily(f"ferfast_{metric}", doc, labels=["source"])
            for name, lane in zip(names, self.lanes, strict=True):
                family.add_metric([name], read(lane))
            yield family
        hist = HistogramMetricFamily(
            "ferfast_stage_seconds", "Latency of each stage, per frame", labels=["source", "stage"]
        )
        bounds = [repr(b) for b in BUCKETS] + ["+Inf"]
        for name, lane in zip(names, self.lanes, strict=True):
            histograms = lane.stats.histograms()
            for stage in EXPORTED_STAGES:
                h = histograms.get(stage)
                if h is not None:
                    hist.add_metric(
                        [name, stage], list(zip(bounds, h.counts, strict=True)), h.sum_s
                    )
        yield hist
        if self.queues:
            published = CounterMetricFamily(
                "ferfast_mqtt_published", "Records delivered to the MQTT broker", labels=["source"]
            )
            dropped = CounterMetricFamily(
                "ferfast_mqtt_dropped",
                "Records dropped: the MQTT queue was full",
                labels=["source"],
            )
            depth = GaugeMetricFamily(
                "ferfast_mqtt_queue_depth", "Records waiting for the MQTT broker", labels=["source"]
            )
            for read_queues in self.queues:
                for name, q in read_queues().items():
                    published.add_metric([name], q.published)
                    dropped.add_metric([name], q.dropped)
                    depth.add_metric([name], q.depth)
            yield from (published, dropped, depth)


def serve(collector: StreamCollector, port: int, host: str = "127.0.0.1") -> Any:
    """Serve ``collector`` in Prometheus text format on http://host:port/metrics (a daemon
    thread); returns the server (``shutdown()`` stops it). OSError when the port is taken."""
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server
