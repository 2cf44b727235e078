"""End-to-end tests of ferfast-stream on a video of a real face (real Engine, tiny ONNX model)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from stream_support import (
    YUNET,
    check_record,
    cli_command,
    cli_env,
    count_lines,
    engine_args,
    read_jsonl,
    wait_for,
    write_face_video,
    write_video,
)

from ferfast.stream.cli import build_parser, main
from ferfast.stream.tracking import DEFAULT_DETECT_EVERY

N_FRAMES = 75  # 2.5 s at 30 fps


@pytest.fixture(scope="session")
def face_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 640x480, 30 fps, 2.5 s mp4 of the face of ../shared/data/photos/images_1.jpg moving."""
    return write_face_video(tmp_path_factory.mktemp("video") / "face.mp4", N_FRAMES)


def test_file_source_to_jsonl_and_video(
    face_video: Path, tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["--source", str(face_video), *engine_args(tiny_model)]
    args += ["--jsonl", "ev.jsonl", "--output", "out.mp4", "--summary-json", "summary.json"]
    t0 = time.time()
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "stopped (end)" in err and "fps" in err and "p95" in err

    events = read_jsonl(tmp_path / "ev.jsonl")

    assert [e["frame"] for e in events] == list(range(N_FRAMES))  # a file never drops
    for e in events:
        check_record(e)
        assert e["source"] == str(face_video)
        assert all(isinstance(f["id"], int) for f in e["faces"])
    times = [e["time"] for e in events]
    assert t0 <= times[0] and times == sorted(times) and times[-1] <= time.time()
    with_face = [e for e in events if e["faces"]]
    assert len(with_face) >= 0.9 * N_FRAMES
    assert all(len(e["faces"]) == 1 for e in with_face)
    assert {e["faces"][0]["id"] for e in with_face} == {1}  # one face, one track id
    xs = [e["faces"][0]["box"][0] for e in with_face]
    assert xs[-1] - xs[0] > 300  # the face moved across the frame and was followed

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["frames"] == summary["frames_read"] == N_FRAMES
    assert summary["dropped"] == 0 and summary["reason"] == "end" and summary["fps"] > 0
    stages = {s["name"]: s for s in summary["stages"]}
    for name in ("read", "classify", "infer", "output"):
        assert stages[name]["count"] == N_FRAMES and stages[name]["p95_ms"] > 0
    # The detector ran on every DEFAULT_DETECT_EVERY-th frame, plus any early re-detects.
    expected = -(-N_FRAMES // DEFAULT_DETECT_EVERY) + summary["redetects"]
    assert stages["detect"]["count"] == summary["detections"] == expected

    cap = cv2.VideoCapture(str(tmp_path / "out.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == N_FRAMES
    cap.set(cv2.CAP_PROP_POS_FRAMES, 40)
    ok, frame = cap.read()
    cap.release()
    assert ok and frame.shape == (480, 640, 3)
    x, y, w, h = (int(v) for v in events[40]["faces"][0]["box"])
    from ferfast.stream.annotate import color_of

    edge = frame[y + h // 4 : y + 3 * h // 4, max(x - 1, 0) : x + 2].astype(int)
    want = np.array(color_of(events[40]["faces"][0]["emotion"]))
    assert (np.abs(edge - want).max(axis=2) < 60).mean() > 0.5  # the box is drawn (lossy video)
    # Privacy by default: nothing but the requested outputs was written.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ev.jsonl", "out.mp4", "summary.json"]


def test_results_match_engine_and_smoothing(face_video: Path, tiny_model: Path, tmp_path: Path):
    """The JSON Lines probabilities are the Engine's own (raw, or their EMA when smoothing).

    With the detector on every frame; carried boxes: tests/test_stream_pipeline.py."""
    from ferfast import Engine

    n = 12
    raw_path, ema_path = tmp_path / "raw.jsonl", tmp_path / "ema.jsonl"
    base = ["--source", str(face_video), *engine_args(tiny_model), "--max-frames", str(n), "-q"]
    base += ["--detect-every", "1"]
    assert main([*base, "--jsonl", str(raw_path), "--no-smoothing"]) == 0
    assert main([*base, "--jsonl", str(ema_path), "--smoothing", "0.3"]) == 0
    raw, ema = read_jsonl(raw_path), read_jsonl(ema_path)
    assert len(raw) == len(ema) == n

    engine = Engine(model=tiny_model, detector="yunet", detector_model=YUNET, detector_size=160)
    cap = cv2.VideoCapture(str(face_video))
    state = None
    for i in range(n):
        ok, frame = cap.read()
        assert ok
        (res,) = engine.predict(frame)
        got_raw = np.array(list(raw[i]["faces"][0]["probs"].values()))
        np.testing.assert_allclose(got_raw, res.probs, atol=2e-6)
        np.testing.assert_allclose(raw[i]["faces"][0]["box"], res.box, atol=0.01)
        state = res.probs if state is None else 0.3 * res.probs + 0.7 * state
        got_ema = np.array(list(ema[i]["faces"][0]["probs"].values()))
        np.testing.assert_allclose(got_ema, state, atol=2e-6)
    cap.release()


def test_save_crops_only_when_given(face_video: Path, tiny_model: Path, tmp_path: Path) -> None:
    crops = tmp_path / "crops"
    args = ["--source", str(face_video), *engine_args(tiny_model), "--max-frames", "8", "-q"]
    assert main([*args, "--save-crops", str(crops), "--jsonl", str(tmp_path / "e.jsonl")]) == 0
    events = read_jsonl(tmp_path / "e.jsonl")
    expected = sorted(
        f"f{e['frame']:07d}_id{f['id']}_{f['emotion']}.jpg" for e in events for f in e["faces"]
    )
    assert sorted(p.name for p in crops.iterdir()) == expected and len(expected) >= 7
    crop = cv2.imread(str(crops / expected[0]))
    box = next(f["box"] for e in events for f in e["faces"])
    assert abs(crop.shape[1] - box[2]) <= 2 and abs(crop.shape[0] - box[3]) <= 2


def test_jsonl_to_stdout_and_max_frames(face_video: Path, tiny_model: Path, capsys) -> None:
    args = ["--source", str(face_video), *engine_args(tiny_model), "--jsonl", "-"]
    assert main([*args, "--max-frames", "5"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert [json.loads(x)["frame"] for x in lines] == [0, 1, 2, 3, 4]
    assert "stopped (max-frames)" in err and "frames 5 processed" in err


def test_engine_and_display_errors_are_clear(
    face_video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    bad_model = ["--source", str(face_video), "--model", str(tmp_path / "nope.onnx"), "-q"]
    assert main(bad_model) == 1
    assert "error:" in capsys.readouterr().err
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    args = ["--source", str(face_video), "--detector-model", str(YUNET), "--display", "-q"]
    assert main(args) == 1
    assert "DISPLAY is not set" in capsys.readouterr().err
    import ctypes.util

    if ctypes.util.find_library("X11") is None:
        return  # the X check needs libX11; without it Qt would abort this process
    monkeypatch.setenv("DISPLAY", ":987")  # no X server there: a clear error, not a Qt abort
    assert main(args) == 1
    assert "cannot connect to X display :987" in capsys.readouterr().err


def test_ctrl_c_ends_cleanly_and_first_result_is_fast(
    face_video: Path, tiny_model: Path, tmp_path: Path
) -> None:
    """SIGINT mid-run: exit 130, summary printed, every JSON line complete; first result < 3 s."""
    events = tmp_path / "ev.jsonl"
    cmd = cli_command("--source", face_video, *engine_args(tiny_model), "--realtime")
    cmd += ["--jsonl", str(events)]
    launched = time.time()
    proc = subprocess.Popen(
        cmd, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert wait_for(lambda: count_lines(events) >= 10, 20.0), "no results arrived"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "stopped (interrupted)" in err and "fps" in err and "p50" in err
    lines = read_jsonl(events)  # raises if any line is incomplete or invalid
    assert 10 <= len(lines) < N_FRAMES
    assert [e["frame"] for e in lines] == list(range(len(lines)))
    first = lines[0]["time"] - launched
    print(f"first result {first:.2f} s after launch")
    assert first < 3.0


def test_progress_bar_on_a_terminal(face_video: Path, tiny_model: Path, tmp_path: Path) -> None:
    """File sources show a tqdm bar when stderr is a terminal (and none when it is not)."""
    pytest.importorskip("tqdm")
    import fcntl
    import os
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    cmd = cli_command("--source", face_video, *engine_args(tiny_model), "--max-frames", "20")
    proc = subprocess.Popen(cmd, env=cli_env(), stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=30) == 0
    text = b"".join(chunks).decode(errors="replace")
    assert "20/20" in text and "frame/s" in text


def test_haar_detector_and_no_tracking(face_video: Path, tiny_model: Path, tmp_path: Path) -> None:
    """--detector haar (score 1.0, no landmarks) and --no-tracking (a new id per detection)."""
    events = tmp_path / "ev.jsonl"
    args = ["--source", str(face_video), "--model", str(tiny_model), "--detector", "haar"]
    assert main([*args, "--max-frames", "6", "--no-tracking", "--jsonl", str(events), "-q"]) == 0
    faces = [f for e in read_jsonl(events) for f in e["faces"]]
    assert len(faces) >= 5
    assert all(f["score"] == 1.0 for f in faces)
    ids = [f["id"] for f in faces]
    assert ids == sorted(set(ids))  # every detection got a fresh id


def test_live_source_drops_frames_when_inference_is_behind(face_video: Path) -> None:
    """A live source (here FFmpeg reading the file as a stream) keeps only the newest frame."""
    from ferfast.stream.sources import FrameSource, SourceKind, SourceSpec

    spec = SourceSpec(str(face_video), SourceKind.URL)  # live: drop when behind, no pacing
    source = FrameSource(spec, max_reconnects=0, backoff=(0.01, 0.01)).start()
    got = []
    deadline = time.monotonic() + 20
    while not source.ended and time.monotonic() < deadline:
        frame = source.read(0.05)
        if frame is not None:
            got.append(frame.index)
            time.sleep(0.02)  # a slow consumer: ~50 fps against a decoder at hundreds
    source.stop()
    assert source.frames_read == N_FRAMES
    assert source.dropped > 0 and len(got) + source.dropped == N_FRAMES
    assert got == sorted(got) and got[-1] == N_FRAMES - 1  # the newest frame is never lost
    assert source.error is not None  # the stream ended and max_reconnects=0 gave up


def test_version(capsys) -> None:
    from ferfast import __version__

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"ferfast-stream {__version__}"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("notes.jpg", b"meeting notes, not a picture\n", "no frame could be read from"),
        ("notes.txt", b"x", "cannot open file source"),
        ("empty.mp4", b"", "source file is empty"),
        ("missing.mp4", None, "video file not found"),
    ],
)
def test_file_without_frames_is_an_error(
    name: str, content: bytes | None, message: str, tiny_model: Path, tmp_path: Path, capsys
) -> None:
    """A file that yields no frame fails (exit 1, naming it) before the engine loads."""
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    jsonl = tmp_path / "ev.jsonl"
    args = ["--source", str(path), "--model", str(tiny_model), "--detector", "haar"]
    assert main([*args, "--jsonl", str(jsonl), "-q"]) == 1
    err = capsys.readouterr().err
    assert f"ferfast-stream: error: {message}" in err and str(path) in err
    assert "processed" not in err and not jsonl.exists()


def test_single_image_is_one_frame(tiny_model: Path, tmp_path: Path, capsys) -> None:
    image = tmp_path / "still.jpg"
    frame = np.full((120, 160, 3), 90, np.uint8)
    assert cv2.imwrite(str(image), frame)
    jsonl = tmp_path / "ev.jsonl"
    args = ["--source", str(image), "--model", str(tiny_model), "--detector", "haar"]
    assert main([*args, "--jsonl", str(jsonl)]) == 0
    assert "stopped (end)" in capsys.readouterr().err
    assert [e["frame"] for e in read_jsonl(jsonl)] == [0]


@pytest.mark.parametrize("name", ["fast", "int8", "accurate"])
def test_bundled_model_names(name: str, tmp_path: Path, capsys) -> None:
    assert build_parser().parse_args(["--source", "0", "--model", name]).model == name
    assert build_parser().parse_args(["--source", "0"]).model == "fast"
    image = tmp_path / "still.jpg"
    assert cv2.imwrite(str(image), np.full((60, 80, 3), 90, np.uint8))
    jsonl = tmp_path / "ev.jsonl"
    args = ["--source", str(image), "--model", name, "--detector", "haar", "-q"]
    assert main([*args, "--jsonl", str(jsonl)]) == 0
    assert [e["frame"] for e in read_jsonl(jsonl)] == [0]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--model", "foo"],
            "model 'foo' is neither a bundled model name (fast, fast-fp32, accurate,",
        ),
        (["--model", "absent.onnx"], "model file not found: absent.onnx (--model / model=)"),
        (["--backend", "tensorrt"], "backend 'tensorrt' (--backend / backend=) needs ONNX Runtime"),
    ],
)
def test_cli_errors_name_the_flag(
    extra: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    image = tmp_path / "still.jpg"
    assert cv2.imwrite(str(image), np.full((60, 80, 3), 90, np.uint8))
    assert main(["--source", str(image), "--detector", "haar", "-q", *extra]) == 1
    err = capsys.readouterr().err
    assert f"ferfast-stream: error: {message}" in err and "Traceback" not in err


def probe_codec(path: Path) -> tuple[str, str]:
    """(codec name, codec tag) of the first video stream, from ffprobe."""
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        pytest.skip("ffprobe not installed")
    out = subprocess.run(
        [ffprobe, "-v", "error", "-select_streams", "v:0", "-show_entries"]
        + ["stream=codec_name,codec_tag_string", "-of", "csv=p=0", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    name, tag = out.split(",")
    return name, tag


@pytest.mark.parametrize(
    ("output", "fourcc", "codec", "warning"),
    [
        ("out.mp4", "zzzz", ("mpeg4", "mp4v"), "cannot write zzzz to .mp4 files; writing mp4v"),
        ("out.mp4", "mp4v", ("mpeg4", "mp4v"), None),
        ("out.avi", "XVID", ("mpeg4", "XVID"), None),
        ("out.avi", None, ("mjpeg", "MJPG"), None),
    ],
)
def test_output_codec(
    output: str,
    fourcc: str | None,
    codec: tuple[str, str],
    warning: str | None,
    tiny_model: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """--fourcc picks the codec; one the build cannot write falls back with one warning."""
    frames = [np.full((120, 160, 3), 10 * i, np.uint8) for i in range(6)]
    clip = write_video(tmp_path / "clip.avi", frames)
    args = ["--source", str(clip), "--model", str(tiny_model), "--detector", "haar", "-q"]
    args += ["--output", str(tmp_path / output)]
    assert main(args + (["--fourcc", fourcc] if fourcc else [])) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    if warning is None:
        assert warnings == []
    else:
        assert len(warnings) == 1 and warning in warnings[0]
    cap = cv2.VideoCapture(str(tmp_path / output))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    cap.release()
    assert (n, size) == (6, (160, 120))
    assert probe_codec(tmp_path / output) == codec


def test_default_mp4_codec_is_h264_where_the_build_has_it(
    tiny_model: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """.mp4 is H.264 (avc1) when OpenCV can encode it, else mp4v with a warning saying so."""
    from ferfast.stream.recorder import can_write

    clip = write_video(tmp_path / "clip.avi", [np.zeros((96, 128, 3), np.uint8)] * 3)
    args = ["--source", str(clip), "--model", str(tiny_model), "--detector", "haar", "-q"]
    assert main([*args, "--output", str(tmp_path / "out.mp4")]) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    if can_write("avc1", ".mp4"):
        assert probe_codec(tmp_path / "out.mp4") == ("h264", "avc1") and warnings == []
    else:
        assert probe_codec(tmp_path / "out.mp4") == ("mpeg4", "mp4v")
        assert len(warnings) == 1
        assert "cannot write avc1 to .mp4 files; writing mp4v instead" in warnings[0]


def test_fourcc_must_be_four_characters(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--source", "x.mp4", "--output", "o.mp4", "--fourcc", "h264x"])
    assert exc.value.code == 2
    assert "argument --fourcc: fourcc must be 4 ASCII characters" in capsys.readouterr().err


def test_detector_fallback_warning_is_one_log_line(
    face_video: Path, tiny_model: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The test session runs offline with an empty cache (conftest): YuNet cannot be fetched.
    args = ["--source", str(face_video), "--model", str(tiny_model), "--max-frames", "2"]
    with caplog.at_level("WARNING", logger="ferfast.stream"):
        assert main(args) == 0
    warned = [r for r in caplog.records if "using the Haar cascade" in r.getMessage()]
    assert len(warned) == 1 and warned[0].name == "ferfast.stream"
    assert warned[0].levelname == "WARNING"


def test_display_on_headless_opencv_fails_before_the_model_loads(
    face_video: Path, tiny_model: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ferfast.stream.cli as stream_cli
    import ferfast.stream.kiosk as kiosk

    monkeypatch.setattr(kiosk, "opencv_gui", lambda: None)

    def no_engine(_args: object) -> None:
        raise AssertionError("the engine must not be built")

    monkeypatch.setattr(stream_cli, "engine_from_args", no_engine)
    assert main(["--source", str(face_video), "--model", str(tiny_model), "--display"]) == 1
    err = capsys.readouterr().err
    assert "headless" in err and "pip install --force-reinstall --no-deps" in err
