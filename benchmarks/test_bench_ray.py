"""Images per second: ``ferfast predict`` in one process against ``ferfast.ray`` with 1 and 2
actors (pytest-benchmark): ``pytest benchmarks/test_bench_ray.py``.

The same folder of photos (the shared photos, copied ``COPIES`` times) is written to CSV by each.
A local Ray instance with 2 CPUs is started once (its start is measured apart); each Ray job
starts its own actors, so a job's time includes their start and the sort. Figures:
docs/scale.md.
"""

from __future__ import annotations

import importlib.util
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ferfast.cli import main as cli_main

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "photos"
YUNET = PHOTOS.parents[1] / "models" / "face_detection_yunet_2026may.onnx"
COPIES = 60  # 5 photos x 60 = 300 images: a job of seconds, so that start costs show as such
ROUNDS = 3

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None, reason='Ray is not installed: pip install ".[ray]"'
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not PHOTOS.is_dir() or not YUNET.is_file():
        pytest.skip(f"shared photos or YuNet missing under {PHOTOS.parents[1]}")
    out = tmp_path_factory.mktemp("ray_bench")
    for photo in sorted(PHOTOS.iterdir()):
        for k in range(COPIES):
            shutil.copyfile(photo, out / f"{photo.stem}_{k:03d}{photo.suffix}")
    return out


@pytest.fixture(scope="module")
def ray_local() -> Iterator[float]:
    """A local Ray instance with 2 CPUs whose workers import this ferfast; yields its start
    time in seconds."""
    import ray

    import ferfast

    src = str(Path(ferfast.__file__).resolve().parents[1])
    start = time.perf_counter()
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        logging_level="WARNING",
        runtime_env={"env_vars": {"PYTHONPATH": src}},
    )
    yield time.perf_counter() - start
    ray.shutdown()


def _images_per_s(benchmark: Any, n: int) -> None:
    stats = getattr(getattr(benchmark, "stats", None), "stats", None)
    if stats is not None:
        benchmark.extra_info["images_per_s"] = round(n / stats.median, 2)


def test_ferfast_predict(benchmark: Any, speedup: Any, folder: Path, tmp_path: Path) -> None:
    """The baseline: ``ferfast predict FOLDER -o x.csv`` in this process (Engine load included,
    default threads: min(2, CPUs))."""
    out = tmp_path / "faces.csv"
    args = ["predict", str(folder), "-o", str(out), "--force", "--no-progress"]
    args += ["--detector-model", str(YUNET)]
    benchmark.group = f"{COPIES * 5} photos to CSV"
    code = benchmark.pedantic(cli_main, args=(args,), rounds=ROUNDS, iterations=1)
    assert code == 0
    _images_per_s(benchmark, COPIES * 5)
    speedup.record(benchmark, "ferfast predict", baseline=True)


@pytest.mark.parametrize("actors", [1, 2])
def test_ray(
    benchmark: Any, speedup: Any, ray_local: float, folder: Path, tmp_path: Path, actors: int
) -> None:
    """``predict_ray`` with ``actors`` actors of 1 thread each on the local 2-CPU instance."""
    from ferfast.ray import EngineOptions, predict_ray

    options = EngineOptions(detector_model=str(YUNET))
    out = tmp_path / "faces.csv"
    benchmark.group = f"{COPIES * 5} photos to CSV"
    benchmark.extra_info["ray_start_s"] = round(ray_local, 2)
    run = benchmark.pedantic(
        predict_ray,
        args=([folder], out, options),
        kwargs={"actors": actors, "force": True},
        rounds=ROUNDS,
        iterations=1,
    )
    assert run.frames == COPIES * 5 and run.actors == actors
    _images_per_s(benchmark, COPIES * 5)
    speedup.record(benchmark, f"ray {actors} actor{'s' if actors > 1 else ''}")


def test_actor_start_and_memory(
    benchmark: Any, ray_local: float, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One actor as map_batches makes it: start (worker, imports, Engine), one task of 16
    photos, and its memory (the same FrameRecords class in a plain Ray actor)."""
    import pyarrow as pa
    import ray

    from ferfast.files import collect_inputs
    from ferfast.ray import EngineOptions, FrameRecords, plan_tasks

    yunet = str(YUNET)

    # Local, so that Ray ships it by value (the workers cannot import this module).
    def rss_mb() -> tuple[float, float]:
        """The process's resident memory now and at its peak, in MB (Linux)."""
        status = Path("/proc/self/status").read_text().splitlines()
        fields = dict(line.split(":", 1) for line in status)
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024

    @ray.remote(num_cpus=1)
    class Probe:
        def __init__(self) -> None:
            self.records = FrameRecords(EngineOptions(detector_model=yunet))
            self.idle = rss_mb()[0]

        def run(self, row: dict[str, Any]) -> tuple[int, float, float, float]:
            table = self.records(pa.Table.from_pylist([row]))
            return (table.num_rows, self.idle, *rss_mb())

    inputs, _ = collect_inputs([folder])
    row = plan_tasks(inputs[:16], actors=1)[0].row

    def start_and_run() -> tuple[int, float, float, float]:
        probe = Probe.remote()
        try:
            return ray.get(probe.run.remote(row))
        finally:
            ray.kill(probe)

    benchmark.group = "Ray actor: start, Engine, 16 photos"
    rows, idle, rss, peak = benchmark.pedantic(start_and_run, rounds=ROUNDS, iterations=1)
    assert rows == 16
    benchmark.extra_info.update(idle_rss_mb=round(idle), rss_mb=round(rss), peak_mb=round(peak))
    with capsys.disabled():
        print(
            f"\nRay actor: resident {idle:.0f} MB with its Engine, {rss:.0f} MB after 16 photos "
            f"(peak {peak:.0f} MB); local Ray start {ray_local:.1f} s"
        )
