"""Run statistics: per-stage latency percentiles, throughput, drops and an end-of-run summary."""

from __future__ import annotations

import bisect
import collections
import os
import threading
import time
from dataclasses import asdict, dataclass

import numpy as np

#: Stages timed by the stream loop, in pipeline order.
#: ``read``: VideoCapture.read on the capture thread (decode; for live sources also the wait for
#: the next frame). ``wait``: inference loop waiting for a frame. ``detect``: one detector run
#: (on the detector thread, or an early re-detect; only frames it ran on). ``classify``:
#: preprocess and model. ``infer`` = this frame's ``detect`` (if any) + ``classify``.
#: ``latency``: end of read to end of output, per frame.
STAGES = ("read", "wait", "detect", "classify", "infer", "track", "output", "latency")

#: Percentiles are computed over the most recent samples only (bounded memory on long runs).
WINDOW = 100_000

#: Upper bounds (seconds) of the latency histogram buckets that metrics export (plus +Inf).
BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


@dataclass(frozen=True)
class Histogram:
    """Cumulative latency histogram of one stage since the run started (all samples, not only
    the percentile window): ``counts[i]`` samples fell at or below ``BUCKETS[i]``,
    ``counts[-1]`` (the +Inf bucket) is every sample."""

    counts: tuple[int, ...]
    sum_s: float

    @property
    def count(self) -> int:
        return self.counts[-1]


@dataclass(frozen=True)
class StageStats:
    """Latency of one stage in milliseconds."""

    name: str
    count: int
    p50_ms: float
    p95_ms: float
    mean_ms: float


@dataclass(frozen=True)
class RunSummary:
    """What a run did, printed at its end (and optionally written as JSON)."""

    frames: int  # frames processed (inference + events)
    frames_read: int  # frames decoded from the source
    undecodable: int  # frames of the source that did not decode and were skipped
    dropped: int  # frames discarded by a live source because inference was behind
    reconnects: int  # successful reconnects of a live source
    faces: int  # face results over all processed frames
    detections: int  # frames the detector ran on (cadence and early re-detects)
    redetects: int  # early re-detects: a carried face no longer looked like itself
    elapsed_s: float  # from the first processed frame's arrival to the end of the run
    fps: float  # frames / elapsed_s
    cpu_ms_per_frame: float  # process CPU time (all threads) over elapsed_s, per frame
    first_result_s: float | None  # from launch to the first result
    stages: tuple[StageStats, ...]

    def as_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return asdict(self)

    def format(self) -> str:
        """Human-readable multi-line summary."""
        first = "n/a" if self.first_result_s is None else f"{self.first_result_s:.2f} s"
        lines = [
            f"frames {self.frames} processed / {self.frames_read} read, undecodable "
            f"{self.undecodable}, dropped {self.dropped}, reconnects {self.reconnects}, faces "
            f"{self.faces}, detector runs {self.detections} ({self.redetects} early)",
            f"fps {self.fps:.1f} over {self.elapsed_s:.2f} s ({self.cpu_ms_per_frame:.2f} ms CPU "
            f"per frame), first result after {first}",
            "stage latency (ms):   p50      p95     mean",
        ]
        for s in self.stages:
            if s.count:
                lines.append(f"  {s.name:<16}{s.p50_ms:8.2f} {s.p95_ms:8.2f} {s.mean_ms:8.2f}")
        return "\n".join(lines)


def process_age() -> float | None:
    """Seconds since this process was started (Linux /proc, 10 ms resolution), else None."""
    try:
        with open("/proc/self/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        start_ticks = int(fields[19])  # field 22 of stat(5): starttime in clock ticks after boot
        with open("/proc/uptime", encoding="ascii") as fh:
            uptime = float(fh.read().split()[0])
        age = uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
    return age if 0.0 <= age < 3600.0 else None


def launch_perf_counter() -> float:
    """``time.perf_counter()`` value of the moment this process was launched (best effort)."""
    now = time.perf_counter()
    age = process_age()
    return now if age is None else now - age


class RunStats:
    """Collects stage timings and counters during a run."""

    def __init__(self, launched: float | None = None) -> None:
        """``launched``: ``time.perf_counter()`` at program start (for time-to-first-result)."""
        self.launched = time.perf_counter() if launched is None else launched
        self._samples: dict[str, collections.deque[float]] = {
            name: collections.deque(maxlen=WINDOW) for name in STAGES
        }
        self.frames = 0
        self.faces = 0
        self.detections = 0
        self.redetects = 0
        self._lock = threading.Lock()  # the counters below are bumped from two threads
        self.started: float | None = None
        self._cpu_started = 0.0
        self._cpu_last: float | None = None  # process CPU time when the run finished
        self.first_result: float | None = None
        self.last_result: float | None = None
        # Per stage: samples per bucket (the last one: above every bound) and their sum; kept
        # only once histograms() was asked for, so an unwatched run pays nothing for them.
        self._buckets: dict[str, list[int]] | None = None
        self._sums: dict[str, float] = {}

    def record(self, stage: str, seconds: float) -> None:
        """Add one latency sample for ``stage``."""
        if stage not in self._samples:
            raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}")
        self._samples[stage].append(seconds)
        if self._buckets is not None:
            with self._lock:  # the detect stage is recorded from two threads
                self._buckets[stage][bisect.bisect_left(BUCKETS, seconds)] += 1
                self._sums[stage] += seconds

    def keep_histograms(self) -> None:
        """Count every sample from now on into :meth:`histograms` (metrics)."""
        with self._lock:
            if self._buckets is None:
                self._buckets = {name: [0] * (len(BUCKETS) + 1) for name in STAGES}
                self._sums = dict.fromkeys(STAGES, 0.0)

    def histograms(self) -> dict[str, Histogram]:
        """Each stage's cumulative histogram since :meth:`keep_histograms` (empty before)."""
        with self._lock:
            if self._buckets is None:
                return {}
            out = {}
            for name, counts in self._buckets.items():
                running, total = [], 0
                for n in counts:
                    total += n
                    running.append(total)
                out[name] = Histogram(tuple(running), self._sums[name])
            return out

    def detected(self) -> None:
        """Count one run of the detector (any thread)."""
        with self._lock:
            self.detections += 1

    def redetected(self) -> None:
        """Count one early re-detect (also counted by :meth:`detected`)."""
        with self._lock:
            self.redetects += 1

    def frame_started(self, now: float) -> None:
        """Mark the arrival of a frame at the inference loop (the first one starts the clock)."""
        if self.started is None:
            self.started = now
            self._cpu_started = time.process_time()

    def frame_done(self, now: float, faces: int) -> None:
        """Count one processed frame that produced ``faces`` results."""
        self.frames += 1
        self.faces += faces
        if self.first_result is None:
            self.first_result = now
        self.last_result = now

    def finish(self) -> None:
        """Mark the end of this run's frames: the process CPU time is read now (once).

        The loops call it when their last frame is done. Reading the process CPU clock sums
        every thread's time in the kernel (tens of microseconds while the other threads run),
        too much to pay per frame; :meth:`summary` reads it itself when this was not called.
        """
        if self._cpu_last is None and self.started is not None:
            self._cpu_last = time.process_time()

    @property
    def fps(self) -> float:
        """Processed frames per second so far."""
        if self.started is None or self.last_result is None or self.frames == 0:
            return 0.0
        elapsed = self.last_result - self.started
        return self.frames / elapsed if elapsed > 0 else 0.0

    def summary(
        self, *, frames_read: int, dropped: int, reconnects: int, undecodable: int = 0
    ) -> RunSummary:
        """Freeze the counters into a :class:`RunSummary` (with the source's counts)."""
        stages = []
        for name in STAGES:
            data = np.fromiter(self._samples[name], dtype=np.float64) * 1000.0
            if data.size:
                p50, p95 = np.percentile(data, [50, 95])
                stages.append(
                    StageStats(name, int(data.size), float(p50), float(p95), float(data.mean()))
                )
            else:
                stages.append(StageStats(name, 0, 0.0, 0.0, 0.0))
        elapsed = 0.0
        if self.started is not None and self.last_result is not None:
            elapsed = self.last_result - self.started
        self.finish()
        cpu_s = 0.0 if self._cpu_last is None else self._cpu_last - self._cpu_started
        first = None if self.first_result is None else self.first_result - self.launched
        return RunSummary(
            frames=self.frames,
            frames_read=frames_read,
            undecodable=undecodable,
            dropped=dropped,
            reconnects=reconnects,
            faces=self.faces,
            detections=self.detections,
            redetects=self.redetects,
            elapsed_s=elapsed,
            fps=self.fps,
            cpu_ms_per_frame=cpu_s * 1000.0 / self.frames if self.frames else 0.0,
            first_result_s=first,
            stages=tuple(stages),
        )
