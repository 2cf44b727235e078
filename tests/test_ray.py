"""ferfast.ray and ``ferfast predict --ray``: the same records as ``ferfast predict``.

One local Ray instance (2 CPUs) serves the module; tests that need Ray skip when it is not
installed (the ``ray`` extra). Frame ranges of videos and the command line without Ray are
tested without it.
"""

from __future__ import annotations

import csv
import importlib.util
import socket
import subprocess
import sys
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from stream_support import write_face_video

import ferfast
from ferfast import Engine, predict_files
from ferfast.cli import main as cli_main
from ferfast.files import InputFile
from ferfast.records import FrameRecord

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "photos"
HAS_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not HAS_RAY, reason='Ray is not installed: pip install ".[ray]"')


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 20-frame video of a moving face (skips without the shared photo and YuNet)."""
    return write_face_video(tmp_path_factory.mktemp("ray_clip") / "clip.mp4", 20)


@pytest.fixture(scope="module")
def inputs(clip: Path, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The shared photos, the clip, an unreadable image and a missing path."""
    if not PHOTOS.is_dir():
        pytest.skip(f"shared photos not available at {PHOTOS}")
    broken = tmp_path_factory.mktemp("ray_broken") / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    return [str(PHOTOS), str(clip), str(broken), str(clip.parent / "missing.mp4")]


@pytest.fixture(scope="module")
def ray_local() -> Iterator[Any]:
    """A local Ray instance with 2 CPUs whose workers import this ferfast."""
    if not HAS_RAY:
        pytest.skip('Ray is not installed: pip install ".[ray]"')
    import ray

    src = str(Path(ferfast.__file__).resolve().parents[1])
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        logging_level="WARNING",
        runtime_env={"env_vars": {"PYTHONPATH": src}},
    )
    yield ray
    ray.shutdown()


def _without_time(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "time"}


def test_video_ranges_read_as_the_whole_video(clip: Path, yunet_path: Path) -> None:
    """Frame ranges (any cut points) give the whole read's frames, positions and faces; a range
    past the end is empty, not an error."""
    engine = Engine(detector_model=yunet_path, threads=1)
    item = InputFile(clip, "video")

    def read(*items: InputFile) -> list[tuple[int, list[dict[str, object]], str | None]]:
        preds = predict_files(list(items), engine, every=3)
        return [(p.frame, [f.as_dict() for f in p.faces], p.error) for p in preds]

    whole = read(item)
    assert [frame for frame, _, _ in whole] == list(range(0, 20, 3))
    cuts = [0, 5, 6, 13, None]
    parts = [InputFile(clip, "video", start=a, stop=b) for a, b in pairwise(cuts)]
    assert read(*parts) == whole
    assert read(InputFile(clip, "video", start=40)) == []


def test_predict_ray_without_ray_is_one_line_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    monkeypatch.setitem(sys.modules, "ferfast.ray", None)
    monkeypatch.delattr(ferfast, "ray", raising=False)
    photo = tmp_path / "p.png"
    photo.write_bytes(b"")
    code = cli_main(["predict", str(photo), "--ray", "-o", str(tmp_path / "out.csv")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == [
        'ferfast predict: error: --ray needs Ray (not installed): pip install "ferfast[ray]"'
    ]


@needs_ray
def test_paths_that_are_not_utf8_are_reported_not_planned(tmp_path: Path) -> None:
    from ferfast.ray import _split

    bad = tmp_path / "caf\udce9.jpg"  # a Latin-1 name as Python decodes it
    inputs, errors = _split([InputFile(bad, "image"), InputFile(tmp_path / "ok.jpg", "image")])
    assert [i.path.name for i in inputs] == ["ok.jpg"]
    assert errors == [(str(bad), "the path is not UTF-8 (use ferfast predict without --ray)")]


def test_import_ferfast_does_not_import_ray() -> None:
    code = "import sys, ferfast, ferfast.cli; sys.exit(len({'ray', 'pyarrow'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], check=False, timeout=60).returncode == 0


def test_ray_option_refuses_a_path_as_its_address(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli_main(["predict", "--ray", "photos/", "x.jpg"])
    assert exc.value.code == 2
    assert "'photos/' is not a Ray address" in capsys.readouterr().err


@needs_ray
def test_an_address_nothing_listens_on_fails_at_once() -> None:
    """Ray would retry for minutes; connect() refuses at once (the CLI: one line, exit 1)."""
    from ferfast.ray import RayJobError, _check_reachable

    with socket.socket() as sock:  # a port that was free a moment ago
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(RayJobError, match=f"cannot reach the Ray head at 127.0.0.1:{port}: "):
        _check_reachable(f"127.0.0.1:{port}")
    _check_reachable("auto")  # left to Ray


@needs_ray
def test_plan_cuts_long_videos_and_groups_images(clip: Path) -> None:
    from ferfast.ray import plan_tasks

    photos = [InputFile(clip.parent / f"p{i}.jpg", "image") for i in range(9, -1, -1)]
    tasks = plan_tasks([*photos, InputFile(clip, "video")], every=2, actors=2, task_frames=4)
    # Sorted by source; 10 images + 10 frames make 10 per actor: the video (one fair share)
    # stays whole, the images go 4 to a task.
    assert [t.sources for t in tasks] == [
        [str(clip)],
        *(
            [str(clip.parent / f"p{i}.jpg") for i in group]
            for group in ((0, 1, 2, 3), (4, 5, 6, 7), (8, 9))
        ),
    ]
    assert [t.stops for t in tasks] == [[-1], [-1] * 4, [-1] * 4, [-1] * 2]
    # Alone, it is cut in two at a multiple of `every`, the last range open-ended.
    tasks = plan_tasks([InputFile(clip, "video")], every=2, actors=2, task_frames=4)
    assert [(t.starts, t.stops) for t in tasks] == [([0], [10]), ([10], [-1])]


@needs_ray
def test_parquet_records_equal_predict_files(
    ray_local: Any, inputs: list[str], yunet_path: Path, tmp_path: Path
) -> None:
    """2 actors, small tasks (the clip cut in ranges): the Parquet rows are the frame records of
    predict_files, time aside, sorted by (source, frame); unreadable files are counted."""
    import pyarrow.parquet as pq

    from ferfast.ray import EngineOptions, predict_ray, record_schema

    options = EngineOptions(detector_model=str(yunet_path))
    out = tmp_path / "faces.parquet"
    run = predict_ray(inputs, out, options, every=2, actors=2, task_frames=4)
    engine = options.engine()
    expected = sorted(
        (
            _without_time(FrameRecord(p.source, p.frame, 0, p.faces, engine.emotions).as_dict())
            for p in predict_files(inputs, engine, every=2)
            if p.error is None
        ),
        key=lambda r: (r["source"], r["frame"]),
    )
    table = pq.read_table(out)
    assert table.schema == record_schema(engine.emotions)
    assert [_without_time(r) for r in table.to_pylist()] == expected
    assert run.frames == len(expected) == 5 + 10
    assert run.faces == sum(len(r["faces"]) for r in expected) >= 10
    assert sorted(why for _, why in run.errors) == [
        "no such file or folder",
        "not a readable image",
    ]
    assert run.actors == 2 and run.detectors == {"yunet": 15}


@needs_ray
def test_cli_ray_csv_equals_ferfast_predict(
    ray_local: Any,
    inputs: list[str],
    yunet_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``ferfast predict --ray -o x.csv`` writes the rows of ``ferfast predict -o x.csv``."""
    common = [*inputs, "--every", "2", "--detector-model", str(yunet_path), "--threads", "1"]
    ref, out = tmp_path / "ref.csv", tmp_path / "ray.csv"
    assert cli_main(["predict", *common, "-o", str(ref)]) == 0
    plain = capsys.readouterr().err
    assert cli_main(["predict", *common, "--ray", "--actors", "2", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    # The Ray instance in place is used (and kept); the summary is predict's, plus Ray's part.
    assert ray_local.is_initialized()
    assert plain.splitlines()[-1] in err.splitlines()[-1]
    assert "; Ray: 2 actors" in err
    with ref.open(newline="") as fh:
        expected = list(csv.reader(fh))
    with out.open(newline="") as fh:
        got = list(csv.reader(fh))
    assert got[0] == expected[0]
    assert got[1:] == sorted(expected[1:], key=lambda r: (r[0], int(r[1]), int(r[2])))
    # The output checks of ferfast predict apply: an existing file needs --force.
    assert cli_main(["predict", *common, "--ray", "-o", str(out)]) == 2
    assert "exists; use --force" in capsys.readouterr().err
