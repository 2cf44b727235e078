"""How many 640x480, 30 fps cameras one ferfast-stream process keeps up with in real time.

``pytest benchmarks/test_bench_capacity.py -s`` (docs/stream.md "How many cameras one box
carries"). Each run is one ``ferfast-stream`` process with N sources of the benchmark video (one
real face, 640x480, 30 fps), the defaults a deployment runs (the fast INT8 model, YuNet at 320,
the detector on every 5th frame, tracking) and ``--jsonl`` to a file; N climbs 1, 2, 4, 8, 12,
16, ... A run keeps up when

- no frame was dropped after the first second of records (a camera's frames that arrived
  while the model loaded are stale and dropped at once),
- the p95 of the ``latency`` stage (a frame's end of decoding to its record written; the run
  summary's total over all sources) is under 100 ms, and
- (files) the run took the video's length: a file source that falls behind does not drop, its
  reader waits, so the run would stretch.

``test_capacity_files``: ``--realtime`` file sources, each read at 30 fps as a camera delivers
frames. ``test_capacity_cameras``: network cameras, ffmpeg serving an MJPEG stream at 30 fps
over HTTP on loopback per source (``-re``, the JPEG frames copied, not re-encoded, so the servers
cost little CPU); these are live sources, which drop frames when the loop is behind.

The first N that fails is run once more (on a shared machine another job's burst is not the
pipeline's limit); the capacity is the largest N that kept up, refined by 2 between the ladder's
steps. A climb stops when it has used its time (``FERFAST_CAPACITY_BUDGET_S``, default 150 s per
test; a run takes the video's length, ``FERFAST_CAPACITY_SECONDS``, default 10, plus start-up).
Printed per run: the criteria, fps, CPU per frame (the process, all threads, over the run), the
cores that makes, the per-stage means and the load average; and where the CPU goes, per frame:
each thread's CPU time (``/proc/PID/task/TID/stat``, sampled every 0.2 s from the first record to
the end) summed over the loop's thread (classification, tracking, output), the N capture threads
(decoding), the N detector threads and the rest (ONNX Runtime, ffmpeg's own threads).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from stream_support import (
    MjpegCamera,
    cli_command,
    cli_env,
    engine_args,
    free_port,
    write_face_video,
)

from ferfast.models import BUNDLED, MODELS_DIR

FPS = 30
SECONDS = float(os.environ.get("FERFAST_CAPACITY_SECONDS", "10"))
BUDGET_S = float(os.environ.get("FERFAST_CAPACITY_BUDGET_S", "150"))
LADDER = (1, 2, 4, 8, 12, 16, 20, 24, 28, 32, 40, 48, 56, 64)
LATENCY_P95_MS = 100.0
# A run that keeps up ends within this of the video's length after its first frame.
PACE_SLACK_S = 0.5
# A camera's frames that arrive while the model loads are stale when the loop starts, and a
# live source drops them at once: drops in this first stretch of records do not count.
WARMUP_S = 1.0
THREADS = ("loop", "capture", "detector", "other")


@dataclass(frozen=True)
class Load:
    """One run of N sources: what the summary says, and whether it kept up."""

    n: int
    frames: int
    expected: int  # frames the sources delivered (files: all of them)
    dropped: int  # in all, the start included
    late_dropped: int  # after the first WARMUP_S of records (see ok)
    p95_ms: float  # latency p95, all sources together
    worst_p95_ms: float  # the highest latency p95 of one source
    elapsed_s: float
    fps: float
    cpu_ms_per_frame: float
    means_ms: dict[str, float]
    detector_runs: int
    load_avg: float
    paced: bool  # file sources only: the run took the video's length
    thread_ms: dict[str, float]  # CPU ms per frame of each kind of thread (THREADS)

    @property
    def ok(self) -> bool:
        return (
            self.late_dropped == 0
            and self.frames >= self.expected
            and self.p95_ms < LATENCY_P95_MS
            and self.paced
        )

    @property
    def cores(self) -> float:
        """CPU cores the process used while it ran."""
        return self.cpu_ms_per_frame * self.fps / 1000.0

    def line(self) -> str:
        m = self.means_ms
        verdict = "keeps up" if self.ok else "behind"
        return (
            f"N={self.n:>2}: {verdict:<8} frames {self.frames}/{self.expected}, dropped "
            f"{self.late_dropped} ({self.dropped} with the start), latency p95 "
            f"{self.p95_ms:.1f} ms (worst source {self.worst_p95_ms:.1f}), {self.elapsed_s:.2f} s, "
            f"{self.fps:.0f} fps, "
            f"{self.cpu_ms_per_frame:.2f} ms CPU per frame = {self.cores:.2f} cores; means ms: "
            f"read {m['read']:.2f}, wait {m['wait']:.2f}, detect {m['detect']:.2f} "
            f"({self.detector_runs} runs), classify {m['classify']:.2f}, track {m['track']:.2f}, "
            f"output {m['output']:.2f}, latency {m['latency']:.1f}; load average "
            f"{self.load_avg:.2f}"
        )

    def cpu_line(self) -> str:
        """CPU per frame by thread (where the time goes)."""
        t = self.thread_ms
        return (
            f"CPU per frame {sum(t.values()):.2f} ms: loop thread {t['loop']:.2f} (classify, "
            f"track, output), capture threads {t['capture']:.2f} (decode), detector threads "
            f"{t['detector']:.2f} (YuNet on {self.detector_runs / max(self.frames, 1):.0%} of the "
            f"frames), other {t['other']:.2f}"
        )


def late_drops(records: list[dict]) -> int:
    """Frames missing from each source's records (gaps in ``frame``) after the first
    ``WARMUP_S`` of records."""
    by_source: dict[str, list[tuple[int, float]]] = {}
    for r in records:
        by_source.setdefault(r["source"], []).append((r["frame"], r["time"]))
    start = min(t for frames in by_source.values() for _, t in frames)
    missing = 0
    for frames in by_source.values():
        frames.sort()
        for (before, _), (index, t) in zip(frames, frames[1:], strict=False):
            if t - start > WARMUP_S:
                missing += index - before - 1
    return missing


@dataclass(frozen=True)
class Run:
    """What one ferfast-stream process left: its summary, late drops, CPU per frame by thread."""

    summary: dict
    late_dropped: int
    thread_ms: dict[str, float]


def _load(n: int, run: Run, expected: int, paced: bool) -> Load:
    summary = run.summary
    stages = {s["name"]: s for s in summary["stages"]}
    worst = max(
        {s["name"]: s for s in src["stages"]}["latency"]["p95_ms"]
        for src in summary.get("sources", [summary])
    )
    return Load(
        n=n,
        frames=summary["frames"],
        expected=expected,
        dropped=summary["dropped"],
        late_dropped=run.late_dropped,
        p95_ms=stages["latency"]["p95_ms"],
        worst_p95_ms=worst,
        elapsed_s=summary["elapsed_s"],
        fps=summary["fps"],
        cpu_ms_per_frame=summary["cpu_ms_per_frame"],
        means_ms={name: s["mean_ms"] for name, s in stages.items()},
        detector_runs=summary["detections"],
        load_avg=os.getloadavg()[0],
        paced=paced,
        thread_ms=run.thread_ms,
    )


def climb(run: Callable[[int], Load], label: str) -> tuple[int, list[Load]]:
    """Run N up the ladder until one fails twice or the time budget is spent; refine by 2.

    Returns the largest N that kept up (0: none) and every run.
    """
    t0 = time.monotonic()
    runs: list[Load] = []
    best, failed = 0, None

    def passes(n: int) -> bool:
        for _ in range(2):  # a failure is retried once
            runs.append(run(n))
            print(f"{label} {runs[-1].line()}\n    {runs[-1].cpu_line()}", flush=True)
            if runs[-1].ok:
                return True
        return False

    for n in LADDER:
        if time.monotonic() - t0 > BUDGET_S:
            break
        if not passes(n):
            failed = n
            break
        best = n
    while failed is not None and failed - best > 2 and time.monotonic() - t0 <= BUDGET_S:
        n = best + 2
        if passes(n):
            best = n
        else:
            failed = n
    return best, runs


def report(label: str, best: int, runs: list[Load]) -> None:
    print(f"\n{label}: {len(runs)} runs, the largest N that kept up: {best}")
    for r in runs:
        if r.n == best and r.ok:
            print(f"  {r.line()}\n  {r.cpu_line()}")
            break


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("capacity")
    return write_face_video(folder / "face_640x480_30fps.mp4", int(SECONDS * FPS))


@pytest.fixture(scope="module")
def model() -> Path:
    path = MODELS_DIR / BUNDLED["fast"]
    if not path.is_file():
        pytest.skip(f"bundled model {path.name} not present")
    return path


def _thread_ticks(pid: int) -> dict[int, int]:
    """CPU clock ticks (user + system) of each thread of ``pid`` now."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            out[int(task.name)] = int(fields[11]) + int(fields[12])
    return out


def _by_kind(pid: int, n: int, ticks: dict[int, int]) -> dict[str, float]:
    """``ticks`` summed into THREADS: the main thread runs the loop; the last 2N threads
    started are the N capture threads (started before the loop) and the N detector threads
    (started by it)."""
    tids = sorted(ticks)
    kinds = dict.fromkeys(tids, "other")
    kinds[pid] = "loop"
    for tid in tids[-2 * n : -n]:
        kinds[tid] = "capture"
    for tid in tids[-n:]:
        kinds[tid] = "detector"
    out = dict.fromkeys(THREADS, 0.0)
    for tid, t in ticks.items():
        out[kinds[tid]] += t
    return out


def _stream(sources: list[str], model: Path, folder: Path, max_frames: int | None = None) -> Run:
    """One ferfast-stream process over ``sources``. Files are read ``--realtime``; live
    sources until ``max_frames`` frames were processed."""
    summary, events = folder / "summary.json", folder / "events.jsonl"
    events.unlink(missing_ok=True)
    cmd = cli_command(*[a for s in sources for a in ("--source", s)], *engine_args(model, 320))
    cmd += ["--jsonl", str(events), "--force", "-q", "--no-progress"]
    cmd += ["--summary-json", str(summary)]
    cmd += ["--realtime"] if max_frames is None else ["--max-frames", str(max_frames)]
    first: tuple[float, dict[int, int]] | None = None
    last: tuple[float, dict[int, int]] | None = None
    log = folder / "stderr.txt"
    with (
        log.open("w") as err,
        subprocess.Popen(cmd, env=cli_env(), stdout=subprocess.DEVNULL, stderr=err) as proc,
    ):
        while proc.poll() is None:
            with contextlib.suppress(OSError):
                sample = (time.time(), _thread_ticks(proc.pid))
                if first is None and events.exists() and events.stat().st_size:
                    first = sample
                # Until the threads end: an ended thread's time is no longer listed.
                if first is not None and sample[1].keys() >= first[1].keys():
                    last = sample
            time.sleep(0.2)
    assert proc.returncode == 0, log.read_text()[-2000:]
    records = [json.loads(line) for line in events.read_text().splitlines()]
    thread_ms = dict.fromkeys(THREADS, 0.0)
    if first is not None and last is not None and last[0] > first[0]:
        ticks = {tid: last[1][tid] - t for tid, t in first[1].items()}
        frames = sum(1 for r in records if first[0] <= r["time"] <= last[0])
        per_tick_ms = 1000.0 / os.sysconf("SC_CLK_TCK") / max(frames, 1)
        by_kind = _by_kind(proc.pid, len(sources), ticks)
        thread_ms = {kind: t * per_tick_ms for kind, t in by_kind.items()}
    return Run(json.loads(summary.read_text()), late_drops(records), thread_ms)


def test_capacity_files(video: Path, model: Path, tmp_path: Path) -> None:
    """``--realtime`` file sources (each its own name, so records and summaries tell them apart)."""
    links = []
    for i in range(max(LADDER)):
        links.append(tmp_path / f"cam{i}.mp4")
        links[-1].symlink_to(video)
    frames = int(SECONDS * FPS)

    def run(n: int) -> Load:
        result = _stream([str(p) for p in links[:n]], model, tmp_path)
        paced = result.summary["elapsed_s"] <= SECONDS + PACE_SLACK_S
        return _load(n, result, n * frames, paced)

    best, runs = climb(run, "files")
    report("--realtime files", best, runs)
    assert best >= 1, "not even one 30 fps file kept up"


class _CopyCamera(MjpegCamera):
    """MjpegCamera serving an MJPEG file as it is (no re-encoding: little CPU per camera)."""

    def _spawn(self) -> subprocess.Popen:
        ffmpeg = shutil.which("ffmpeg")
        assert ffmpeg is not None
        cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-re"]
        cmd += ["-stream_loop", "-1", "-i", str(self.video), "-c:v", "copy"]
        cmd += ["-f", "mpjpeg", "-listen", "1", self.url]
        self.spawned += 1
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@contextlib.contextmanager
def cameras(video: Path, n: int) -> Iterator[list[str]]:
    started: list[_CopyCamera] = []
    try:
        for _ in range(n):
            started.append(_CopyCamera(video, free_port()).start())
        yield [c.url for c in started]
    finally:
        for cam in started:
            cam.kill()


def test_capacity_cameras(video: Path, model: Path, tmp_path: Path) -> None:
    """Network cameras (MJPEG over HTTP on loopback, 30 fps): live sources, which drop."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    mjpeg = tmp_path / "face.avi"
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", str(video), "-c:v", "mjpeg"]
        + ["-q:v", "5", str(mjpeg)],
        check=True,
    )
    frames = int(SECONDS * FPS)

    def run(n: int) -> Load:
        with cameras(mjpeg, n) as urls:
            # --max-frames: the cameras loop; the run stops after the video's length of frames.
            result = _stream(urls, model, tmp_path, max_frames=n * frames)
        return _load(n, result, n * frames, True)

    best, runs = climb(run, "cameras")
    report("MJPEG cameras", best, runs)
    assert best >= 1, "not even one 30 fps camera kept up"
