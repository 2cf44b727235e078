"""Nothing lost: outputs never replace inputs or earlier files unasked, bad output paths are
one-line errors before any work, and a failed write ends the run with an error and a summary."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from stream_support import (
    YUNET,
    cli_command,
    cli_env,
    count_lines,
    engine_args,
    read_jsonl,
    wait_for,
    write_face_video,
)

from ferfast.cli import main as predict_main
from ferfast.labels import EMOTIONS
from ferfast.outpaths import OutputPathError, check_file, open_text
from ferfast.sinks.table import cell_width, table_line
from ferfast.stream.cli import main as stream_main


@pytest.fixture()
def photo_dir(tmp_path: Path, photos: dict[str, np.ndarray]) -> Path:
    root = tmp_path / "photos"
    root.mkdir()
    cv2.imwrite(str(root / "a.jpg"), photos["images_1.jpg"])
    cv2.imwrite(str(root / "b.png"), photos["demo_1.png"])
    return root


def _predict(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = predict_main(["predict", "--detector-model", str(YUNET), "--no-progress", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _digests(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# --- ferfast predict ----------------------------------------------------------------------


def test_annotate_into_the_input_folder_keeps_the_originals(
    photo_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _digests(photo_dir)
    code, out, _ = _predict([str(photo_dir), "--annotate", str(photo_dir)], capsys)
    assert code == 0
    after = _digests(photo_dir)
    assert {k: after[k] for k in before} == before  # originals byte for byte
    assert sorted(set(after) - set(before)) == ["a.ferfast.jpg", "b.ferfast.png"]
    assert cv2.imread(str(photo_dir / "a.ferfast.jpg")) is not None
    assert out.count("\n") == 3  # header + one face per photo: the copies were not inputs

    # Again: the copies of the first run are refused by name, nothing is processed.
    code, out, err = _predict([str(photo_dir), "--annotate", str(photo_dir)], capsys)
    assert code == 2 and out == ""
    assert "a.ferfast.jpg" in err and "--force" in err and "Traceback" not in err
    # --force replaces the copies; the originals stay as they were.
    code, _, _ = _predict([str(photo_dir), "--annotate", str(photo_dir), "--force"], capsys)
    assert code == 0
    assert {k: _digests(photo_dir)[k] for k in before} == before


def test_annotate_refuses_two_inputs_with_one_copy_name(
    photo_dir: Path, tmp_path: Path, photos: dict[str, np.ndarray], capsys
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    cv2.imwrite(str(other / "a.jpg"), photos["demo_2.png"])
    ann = tmp_path / "ann"
    code, out, err = _predict(
        [str(photo_dir / "a.jpg"), str(other / "a.jpg"), "--annotate", str(ann)], capsys
    )
    assert code == 2 and out == ""
    assert "would both be written to" in err and "a.ferfast.jpg" in err


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (lambda t: (t / "out").mkdir(), ["-o", "{t}/out"], "-o {t}/out is a folder"),
        (lambda t: None, ["-o", "{t}/no/such/x.csv"], "the folder {t}/no/such does not exist"),
        (
            lambda t: (t / "f").write_text("x"),
            ["-o", "{t}/f/x.csv"],
            "-o {t}/f/x.csv: {t}/f is not a folder",
        ),
        (lambda t: (t / "ann").write_text("x"), ["--annotate", "{t}/ann"], "is a file; give a"),
        (lambda t: (t / "old.csv").write_text("keep"), ["-o", "{t}/old.csv"], "exists; use --f"),
        (lambda t: None, ["-o", "{t}/photos/a.jpg", "--force"], "is an input of this run"),
    ],
)
def test_predict_output_paths_are_checked_before_any_work(
    make, args: list[str], message: str, photo_dir: Path, tmp_path: Path, capsys
) -> None:
    make(tmp_path)
    before = _digests(photo_dir)
    args = [a.format(t=tmp_path) for a in args]
    code, out, err = _predict([str(photo_dir), *args], capsys)
    assert code == 2, err
    assert out == ""  # no row printed before the error
    assert err.strip() == f"ferfast predict: error: {message.format(t=tmp_path)}" or (
        message.format(t=tmp_path) in err and len(err.strip().splitlines()) == 1
    ), err
    assert _digests(photo_dir) == before
    if (tmp_path / "old.csv").exists():
        assert (tmp_path / "old.csv").read_text() == "keep"


def test_predict_force_replaces_an_earlier_output(photo_dir: Path, tmp_path: Path, capsys) -> None:
    out_csv = tmp_path / "faces.csv"
    out_csv.write_text("old\n")
    assert _predict([str(photo_dir), "-o", str(out_csv), "--force"], capsys)[0] == 0
    assert out_csv.read_text().startswith("source,frame,face")


def test_predict_summary_repeats_the_haar_fallback_and_names_tiny_images(
    tmp_path: Path, photos: dict[str, np.ndarray], capsys
) -> None:
    # The session is offline with an empty cache (conftest): "auto" falls back to Haar.
    cv2.imwrite(str(tmp_path / "a.jpg"), photos["images_1.jpg"])
    cv2.imwrite(str(tmp_path / "tiny.png"), photos["images_1.jpg"][:10, :10])
    code = predict_main(["predict", str(tmp_path), "--format", "csv", "--no-progress"])
    assert code == 0
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("ferfast predict: 2 images/frames")
    assert "Haar fallback" in last and "--detector-model" in last
    assert "tiny.png (10x10): too small for the face detector" in last


def test_table_keeps_the_end_of_long_paths_and_aligns_wide_characters() -> None:
    values = ["x", "0", "0", "1,2,3,4", "0.90", "happy", "0.80", *["0.10"] * len(EMOTIONS)]
    long_path = "/data/" + "a" * 60 + "/photo_0001.jpg"
    line = table_line([long_path, *values[1:]], EMOTIONS)
    assert line.startswith("\u2026") and line[:40].endswith("photo_0001.jpg")
    short = table_line(["photo.jpg", *values[1:]], EMOTIONS)
    wide = table_line(["写真/顔.jpg", *values[1:]], EMOTIONS)  # 2 columns per CJK character
    cut = table_line(["写" * 30, *values[1:]], EMOTIONS)
    assert cut.startswith("\u2026")

    def frame_column(text: str) -> int:  # terminal column where the frame column starts
        return cell_width(text[: text.index(" 0 ")])

    assert frame_column(wide) == frame_column(short) == frame_column(line) == frame_column(cut)


# --- ferfast-stream -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_face_video(tmp_path_factory.mktemp("clip") / "clip.mp4", 30)


def _stream(args: list[str], tiny_model: Path, capsys) -> tuple[int, str, str]:
    code = stream_main([*engine_args(tiny_model), "-q", "--no-progress", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (lambda t: (t / "e.jsonl").write_text("keep\n"), ["--jsonl", "{t}/e.jsonl"], "or --append"),
        (lambda t: (t / "v.mp4").write_text("keep"), ["--output", "{t}/v.mp4"], "exists; use"),
        (lambda t: None, ["--summary-json", "{t}/no/s.json"], "the folder {t}/no does not exist"),
        (lambda t: (t / "s").mkdir(), ["--summary-json", "{t}/s"], "--summary-json {t}/s is a f"),
        (lambda t: (t / "c").write_text("keep"), ["--save-crops", "{t}/c"], "is a file; give a"),
        (lambda t: None, ["--jsonl", "{clip}", "--force"], "is an input of this run"),
        (
            lambda t: None,
            ["--jsonl", "{t}/x.json", "--summary-json", "{t}/x.json"],
            "--jsonl and --summary-json name the same file",
        ),
        (lambda t: None, ["--append"], "--append adds to a --jsonl file"),
        (
            lambda t: ((t / "c").mkdir(), (t / "c" / "f0000001_id1_happy.jpg").write_text("k")),
            ["--save-crops", "{t}/c"],
            "holds crops of an earlier run",
        ),
    ],
)
def test_stream_output_paths_are_checked_before_the_source_opens(
    make, args: list[str], message: str, clip: Path, tiny_model: Path, tmp_path: Path, capsys
) -> None:
    make(tmp_path)
    before = clip.read_bytes()
    args = [a.format(t=tmp_path, clip=clip) for a in args]
    code, out, err = _stream(["--source", str(clip), *args], tiny_model, capsys)
    assert code == 2, err
    assert out == ""
    assert message.format(t=tmp_path) in err and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    assert clip.read_bytes() == before
    for kept in (tmp_path / "e.jsonl", tmp_path / "v.mp4", tmp_path / "c"):
        if kept.is_file():
            assert kept.read_text().startswith("keep")


def test_stream_records_go_to_stdout_when_no_output_is_chosen(
    clip: Path, tiny_model: Path, capsys
) -> None:
    code, out, _ = _stream(["--source", str(clip), "--max-frames", "5"], tiny_model, capsys)
    assert code == 0
    frames = [json.loads(line)["frame"] for line in out.splitlines()]
    assert frames == [0, 1, 2, 3, 4]


def test_stream_append_and_force(clip: Path, tiny_model: Path, tmp_path: Path, capsys) -> None:
    events = tmp_path / "e.jsonl"
    base = ["--source", str(clip), "--max-frames", "3", "--jsonl", str(events)]
    assert _stream(base, tiny_model, capsys)[0] == 0
    assert _stream([*base, "--append"], tiny_model, capsys)[0] == 0
    assert [e["frame"] for e in read_jsonl(events)] == [0, 1, 2, 0, 1, 2]
    assert _stream([*base, "--force"], tiny_model, capsys)[0] == 0
    assert [e["frame"] for e in read_jsonl(events)] == [0, 1, 2]


def test_stream_summary_repeats_the_haar_fallback(clip: Path, tiny_model: Path, capsys) -> None:
    code = stream_main(
        ["--source", str(clip), "--model", str(tiny_model), "--max-frames", "2", "-q"]
    )
    assert code == 0
    assert "Haar fallback" in capsys.readouterr().err.strip().splitlines()[-1]


def test_a_second_run_cannot_write_a_jsonl_file_in_use(tiny_model: Path, tmp_path: Path) -> None:
    video = write_face_video(tmp_path / "long.mp4", 90)
    events = tmp_path / "e.jsonl"
    cmd = cli_command("--source", video, *engine_args(tiny_model), "--realtime")
    cmd += ["--jsonl", str(events)]
    first = subprocess.Popen(cmd, env=cli_env(), stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: count_lines(events) >= 3, 20.0), "the first run wrote nothing"
        second = subprocess.run(
            [*cmd, "--append"], env=cli_env(), capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 2, second.stderr
        assert "is being written by another run" in second.stderr
        _, err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err
    assert [e["frame"] for e in read_jsonl(events)] == list(range(90))


def _run_stream(args: list[str], timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        cli_command(*args), env=cli_env(), capture_output=True, text=True, timeout=timeout, **kw
    )


def test_sigterm_exits_143_with_complete_outputs(tiny_model: Path, tmp_path: Path) -> None:
    video = write_face_video(tmp_path / "v.mp4", 90)
    events = tmp_path / "e.jsonl"
    cmd = cli_command("--source", video, *engine_args(tiny_model), "--realtime")
    proc = subprocess.Popen(
        [*cmd, "--jsonl", str(events)], env=cli_env(), stderr=subprocess.PIPE, text=True
    )
    try:
        assert wait_for(lambda: count_lines(events) >= 3, 20.0)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert "stopped (interrupted)" in err
    assert read_jsonl(events)


@pytest.mark.parametrize("where", ["_check_outputs", "engine_from_args", "_open_source"])
def test_a_ctrl_c_before_the_handlers_prints_no_traceback(
    where: str, tiny_model: Path, clip: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Ctrl-C while the arguments are checked, a source opens or the model loads."""
    from ferfast.stream import cli

    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, where, interrupted)
    code, _, err = _stream(["--source", str(clip)], tiny_model, capsys)
    assert code == 130
    assert err.strip().splitlines()[-1] == "ferfast-stream: interrupted"


def test_the_stream_cli_imports_no_numpy_before_main() -> None:
    """Its import is short, so a Ctrl-C at start-up meets main()'s handler, not an import."""
    code = "import sys, ferfast.stream.cli; print('numpy' in sys.modules, 'cv2' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.split() == ["False", "False"]


# --- full disks -----------------------------------------------------------------------------


@contextlib.contextmanager
def small_disk(tmp_path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on a fresh folder (root only; else the test skips)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mnt.mkdir()
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)], capture_output=True
    )
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(disk: Path) -> None:
    """Fill ``disk`` to the last byte."""
    with open(disk / "filler", "wb", buffering=0) as f:
        for block in (b"\0" * 65536, b"\0" * 512, b"\0"):
            with contextlib.suppress(OSError):
                while f.write(block):
                    pass


def test_predict_to_a_full_disk_is_an_error_with_a_summary(
    photo_dir: Path, tmp_path: Path, capsys
) -> None:
    with small_disk(tmp_path, "256k") as disk:
        fill(disk)
        code, _, err = _predict([str(photo_dir), "-o", str(disk / "faces.csv")], capsys)
        assert code == 1, err
        assert "Traceback" not in err
        lines = err.strip().splitlines()
        assert lines[-2].startswith("ferfast predict: 0 images/frames")  # nothing written
        assert lines[-1] == (
            f"ferfast predict: error: cannot write {disk / 'faces.csv'}: No space left on device"
        )
        code, _, err = _predict([str(photo_dir), "--annotate", str(disk / "ann")], capsys)
        assert code == 1, err
        assert "cannot write the annotated image" in err and "Traceback" not in err


def test_stream_jsonl_to_a_full_disk_is_an_error_with_a_summary(
    clip: Path, tiny_model: Path, tmp_path: Path
) -> None:
    with small_disk(tmp_path, "256k") as disk:
        fill(disk)
        events = disk / "e.jsonl"
        res = _run_stream(["--source", clip, *engine_args(tiny_model), "--jsonl", events])
        assert res.returncode == 1, res.stderr
        assert "stopped (output-failed)" in res.stderr and "fps" in res.stderr
        assert f"error: cannot write {events}: No space left on device" in res.stderr


def test_stream_video_to_a_small_disk_stops_with_a_playable_file(
    tiny_model: Path, tmp_path: Path
) -> None:
    video = write_face_video(tmp_path / "v.mp4", 150)
    with small_disk(tmp_path, "3m") as disk:
        out = disk / "out.avi"  # MJPG: ~30-60 kB a frame, so 3 MB fill within the clip
        res = _run_stream(["--source", video, *engine_args(tiny_model), "--output", out])
        assert res.returncode == 1, res.stderr
        assert "stopped (output-failed)" in res.stderr
        assert f"cannot write the video {out}: the disk is nearly full" in res.stderr
        cap = cv2.VideoCapture(str(out))
        try:
            assert cap.isOpened() and cap.get(cv2.CAP_PROP_FRAME_COUNT) > 10
        finally:
            cap.release()


def test_stream_video_over_a_file_size_limit_is_an_error(tiny_model: Path, tmp_path: Path) -> None:
    import resource

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes then fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))

    video = write_face_video(tmp_path / "v.mp4", 60)
    out = tmp_path / "out.mp4"
    res = _run_stream(
        ["--source", video, *engine_args(tiny_model), "--output", out], preexec_fn=limit
    )
    assert res.returncode == 1, res.stderr
    assert f"cannot write the video {out}" in res.stderr and "Traceback" not in res.stderr


# --- outpaths ------------------------------------------------------------------------------


def test_open_text_refuses_a_file_that_appeared_and_a_locked_file(tmp_path: Path) -> None:
    path = check_file(tmp_path / "x.jsonl", "--jsonl")
    path.write_text("someone else's\n")
    with pytest.raises(OutputPathError, match="exists"):
        open_text(path, "--jsonl")
    assert path.read_text() == "someone else's\n"
    with open_text(path, "--jsonl", append=True) as held:
        with pytest.raises(OutputPathError, match="being written by another run"):
            open_text(path, "--jsonl", force=True)
        held.write("mine\n")
    assert path.read_text() == "someone else's\nmine\n"


def test_check_file_refuses_a_read_only_folder(tmp_path: Path) -> None:
    with small_disk(tmp_path, "64k") as disk:
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        with pytest.raises(OutputPathError, match="no permission to write in"):
            check_file(disk / "x.csv", "-o")
        code = predict_main(["predict", sys.executable, "-o", str(disk / "x.csv")])
        assert code == 2


# --- the engine and download commands -----------------------------------------------------------


def test_engine_commands_check_their_output_before_any_work(
    tiny_model: Path, tmp_path: Path, capsys
) -> None:
    (tmp_path / "out").mkdir()
    cases = [
        (["build-engine", str(tiny_model), "-o", str(tmp_path / "out")], "is a folder"),
        (["build-engine", str(tiny_model), "-o", str(tiny_model), "--force"], "is an input"),
        (
            [
                "build-engine",
                str(tiny_model),
                "-o",
                str(tmp_path / "m.engine"),
                "--timing-cache",
                str(tmp_path / "out"),
            ],
            "--timing-cache",
        ),
    ]
    plan = tmp_path / "m.plan"
    plan.write_bytes(b"plan")
    old = tmp_path / "old.engine"
    old.write_bytes(b"keep")
    wrap = ["wrap-engine", str(plan), "--model", str(tiny_model), "--precision", "fp16"]
    cases += [
        ([*wrap, "--max-batch", "8", "-o", str(old)], "exists; use --force"),
        ([*wrap, "--max-batch", "8", "-o", str(plan), "--force"], "is an input"),
        (["download", "--dir", str(old)], "is a file; give a folder"),
    ]
    for args, message in cases:
        assert predict_main(args) == 2, args
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert old.read_bytes() == b"keep" and plan.read_bytes() == b"plan"


def test_dev_null_and_fifos_are_outputs_without_force(tmp_path: Path) -> None:
    assert check_file("/dev/null", "--jsonl") == Path("/dev/null")
    with open_text("/dev/null", "--jsonl") as fh:
        fh.write("discarded\n")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert check_file(fifo, "-o") == fifo
