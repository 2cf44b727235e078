"""Unit tests of the ferfast-stream modules (no engine, no files from ../shared)."""

from __future__ import annotations

import csv
import json
import threading
import time
from dataclasses import replace

import cv2
import numpy as np
import pytest
from stream_support import FakeEngine

from ferfast.faces import FaceResult
from ferfast.records import FrameRecord, face_record, row_fields
from ferfast.sinks import JsonlSink, open_sink
from ferfast.stream.annotate import color_of, draw_faces, draw_fps
from ferfast.stream.cli import build_parser, main
from ferfast.stream.kiosk import BACKGROUND, primary_face, render_kiosk
from ferfast.stream.sources import (
    FrameSource,
    SourceError,
    SourceKind,
    default_decode_threads,
    open_capture,
    parse_source,
)
from ferfast.stream.stats import STAGES, RunStats, process_age
from ferfast.stream.tracking import IouTracker, iou

# FER2013 order (the contract).
EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def det(
    box: tuple[float, float, float, float], probs: np.ndarray, score: float = 0.9
) -> FaceResult:
    """A single frame's face (no track id) with ``probs``, as the engine returns it."""
    return FaceResult(box, score, None, probs, EMOTIONS[int(np.argmax(probs))], EMOTIONS)


def onehot(i: int, p: float = 0.9) -> np.ndarray:
    v = np.full(7, (1 - p) / 6, np.float32)
    v[i] = p
    return v


# --- sources -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("0", SourceKind.CAMERA),
        ("12", SourceKind.CAMERA),
        ("/dev/video0", SourceKind.DEVICE),
        ("rtsp://10.0.0.2:554/stream", SourceKind.URL),
        ("http://127.0.0.1:8080/cam.mjpg", SourceKind.URL),
        ("nvarguscamerasrc ! nvvidconv ! video/x-raw,format=BGRx ! appsink", SourceKind.GSTREAMER),
        ("clip.mp4", SourceKind.FILE),
        ("/data/my video.avi", SourceKind.FILE),
    ],
)
def test_parse_source_kinds(text: str, kind: SourceKind) -> None:
    spec = parse_source(text)
    assert spec.kind is kind
    assert spec.live == (kind is not SourceKind.FILE)


def test_parse_source_file_url_and_bad_input() -> None:
    assert parse_source("file:///tmp/a.mp4").text == "/tmp/a.mp4"
    with pytest.raises(ValueError, match="empty"):
        parse_source("  ")
    with pytest.raises(TypeError, match="str"):
        parse_source(0)  # type: ignore[arg-type]


class FakeCapture:
    """A VideoCapture stand-in yielding ``n`` numbered frames, then failing reads."""

    def __init__(self, n: int, start: int = 0, fps: float = 30.0, delay: float = 0.0) -> None:
        self.n, self.i, self.fps, self.start, self.delay = n, 0, fps, start, delay
        self.released = False

    def read(self):
        time.sleep(self.delay)  # a camera's frame interval (0: as fast as possible)
        if self.i >= self.n:
            return False, None
        img = np.full((4, 4, 3), (self.start + self.i) % 256, np.uint8)
        self.i += 1
        return True, img

    def get(self, prop: int) -> float:
        return {cv2.CAP_PROP_FPS: self.fps, cv2.CAP_PROP_FRAME_COUNT: float(self.n)}.get(prop, 0)

    def release(self) -> None:
        self.released = True


def drain(source: FrameSource, delay: float = 0.0, timeout: float = 10.0) -> list[int]:
    """Read every frame index until the source ends (sleeping ``delay`` per frame)."""
    seen = []
    deadline = time.monotonic() + timeout
    while not source.ended and time.monotonic() < deadline:
        frame = source.read(0.05)
        if frame is not None:
            seen.append(int(frame.image[0, 0, 0]))
            time.sleep(delay)
    return seen


def test_file_source_never_drops_even_when_consumer_is_slow() -> None:
    cap = FakeCapture(40)
    src = FrameSource(parse_source("x.mp4"), buffer=2, opener=lambda spec, **kw: cap).start()
    seen = drain(src, delay=0.002)
    src.stop()
    assert seen == list(range(40))
    assert src.dropped == 0 and src.frames_read == 40 and src.frame_count == 40
    assert cap.released and src.error is None


def test_live_source_drops_when_behind_and_counts_drops() -> None:
    caps = iter([FakeCapture(200)])
    src = FrameSource(
        parse_source("0"), max_reconnects=0, backoff=(0.01, 0.01), opener=lambda s, **k: next(caps)
    ).start()
    seen = drain(src, delay=0.01)
    src.stop()
    assert src.frames_read == 200
    assert src.dropped > 0
    assert len(seen) + src.dropped == 200  # every frame was either processed or counted dropped
    assert seen == sorted(seen)  # newest frames only, in order


def test_live_source_reconnects_with_backoff_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    attempts: list[float] = []

    def opener(spec, **kw):
        attempts.append(time.monotonic())
        if len(attempts) == 1:
            return FakeCapture(5)
        if len(attempts) == 4:
            return FakeCapture(5, start=100)
        raise SourceError("connection refused")

    caplog.set_level("INFO", logger="ferfast.stream")
    spec = parse_source("rtsp://cam/x")
    src = FrameSource(spec, backoff=(0.02, 0.05), max_reconnects=3, opener=opener).start()
    seen = drain(src)
    src.stop()
    assert src.frames_read == 10 and src.reconnects == 1
    assert seen[-1] == 104  # frames after the reconnect arrived
    gaps = np.diff(attempts[:4])
    assert gaps[1] >= 0.02 and gaps[2] >= 0.04  # the delay doubles after each failed attempt
    text = caplog.text
    assert "source lost" in text and "reconnect attempt 2 failed" in text
    assert "reconnected after 3 attempt(s)" in text
    # After the second capture ended, 3 more failed attempts exhaust max_reconnects.
    assert isinstance(src.error, SourceError) and "3 reconnect attempts" in str(src.error)


def test_live_source_gives_up_after_max_reconnects() -> None:
    def opener(spec, **kw):
        if not hasattr(opener, "done"):
            opener.done = True
            return FakeCapture(3)
        raise SourceError("refused")

    src = FrameSource(
        parse_source("http://cam/x"), backoff=(0.01, 0.01), max_reconnects=2, opener=opener
    ).start()
    drain(src)
    src.stop()
    assert isinstance(src.error, SourceError) and "2 reconnect attempts" in str(src.error)


def test_frame_source_validates_arguments() -> None:
    spec = parse_source("a.mp4")
    with pytest.raises(ValueError, match="buffer"):
        FrameSource(spec, buffer=0)
    with pytest.raises(ValueError, match="backoff"):
        FrameSource(spec, backoff=(1.0, 0.5))
    with pytest.raises(ValueError, match="max_reconnects"):
        FrameSource(spec, max_reconnects=-1)
    with pytest.raises(SourceError, match="not found"):
        FrameSource(parse_source("/nonexistent/clip.mp4")).start()


def test_decode_threads(tmp_path, monkeypatch) -> None:
    """A file opens with the asked-for FFmpeg decoder threads (0: FFmpeg's choice); a file FFmpeg
    cannot open fails as without them; 1 thread is the default on up to 3 CPUs."""
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (64, 48))
    for i in range(3):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    one = open_capture(parse_source(str(clip)), decode_threads=1)
    assert one.get(cv2.CAP_PROP_N_THREADS) == 1 and one.read()[0]
    one.release()
    auto = open_capture(parse_source(str(clip)))
    assert auto.read()[0]
    auto.release()
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    with pytest.raises(SourceError, match="no frame could be read|cannot open file source"):
        FrameSource(parse_source(str(text)), decode_threads=1).open()
    with pytest.raises(ValueError, match="decode_threads"):
        FrameSource(parse_source(str(clip)), decode_threads=-1)
    for cpus, want in ((1, 1), (2, 1), (3, 1), (4, 0), (16, 0)):
        monkeypatch.setattr("os.sched_getaffinity", lambda _pid, n=cpus: set(range(n)))
        assert default_decode_threads() == want
    assert build_parser().parse_args(["--source", "0"]).decode_threads is None


# --- tracking ----------------------------------------------------------------------------


def test_iou() -> None:
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == pytest.approx(1.0)
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0


def test_tracker_keeps_ids_for_moving_faces_and_adds_new_ones() -> None:
    tr = IouTracker(EMOTIONS, smoothing=1.0)
    ids = []
    for step in range(10):
        dets = [
            det((100 + 8 * step, 50, 80, 100), onehot(3)),
            det((400, 300 - 5 * step, 60, 70), onehot(0)),
        ]
        if step >= 5:
            dets.append(det((10, 400, 40, 40), onehot(6)))
        ids.append([f.track_id for f in tr.update(dets)])
    assert all(row[:2] == [1, 2] for row in ids)
    assert all(row[2] == 3 for row in ids[5:])


def test_tracker_ema_smoothing_and_switch_off() -> None:
    a = 0.25
    tr = IouTracker(EMOTIONS, smoothing=a)
    box = (0, 0, 50, 50)
    tr.update([det(box, onehot(3))])
    out = tr.update([det(box, onehot(4))])[0]
    np.testing.assert_allclose(out.probs, a * onehot(4) + (1 - a) * onehot(3), rtol=1e-6)
    assert out.emotion == "happy"  # one flickering frame does not flip the label
    for _ in range(6):
        out = tr.update([det(box, onehot(4))])[0]
    assert out.emotion == "sad" and out.track_id == 1

    raw = IouTracker(EMOTIONS, smoothing=1.0)
    raw.update([det(box, onehot(3))])
    np.testing.assert_allclose(raw.update([det(box, onehot(4))])[0].probs, onehot(4))


def test_tracker_disabled_and_track_expiry() -> None:
    off = IouTracker(EMOTIONS, enabled=False)
    box = (0, 0, 50, 50)
    assert [off.update([det(box, onehot(1))])[0].track_id for _ in range(3)] == [1, 2, 3]

    tr = IouTracker(EMOTIONS, max_missed=2)
    assert tr.update([det(box, onehot(1))])[0].track_id == 1
    tr.update([])
    tr.update([])
    assert tr.update([det(box, onehot(1))])[0].track_id == 1  # survived 2 missed frames
    for _ in range(3):
        tr.update([])
    assert tr.update([det(box, onehot(1))])[0].track_id == 2  # expired after 3


def test_tracker_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="smoothing"):
        IouTracker(EMOTIONS, smoothing=0.0)
    with pytest.raises(ValueError, match="iou_threshold"):
        IouTracker(EMOTIONS, iou_threshold=1.5)
    with pytest.raises(ValueError, match="probs"):
        IouTracker(EMOTIONS).update([det((0, 0, 1, 1), np.ones(3, np.float32))])
    with pytest.raises(ValueError, match="box"):
        IouTracker(EMOTIONS).update([det((0, 0, 1), onehot(0))])  # type: ignore[arg-type]


def test_tracker_returns_the_faces_with_track_id_and_smoothed_probs() -> None:
    marks = np.arange(10, dtype=np.float32).reshape(5, 2)
    crop = np.full((48, 48), 0.5, np.float32)
    tr = IouTracker(EMOTIONS, smoothing=0.5)
    tr.update([det((0, 0, 50, 50), onehot(3))])
    face = replace(det((2, 0, 50, 50), onehot(4), 0.75), landmarks=marks, crop=crop)
    (out,) = tr.update([face])
    assert out.track_id == 1 and face.track_id is None  # a copy; the input is unchanged
    assert out.box == (2.0, 0.0, 50.0, 50.0) and out.score == 0.75
    np.testing.assert_array_equal(out.landmarks, marks)
    np.testing.assert_array_equal(out.crop, crop)
    assert out.emotions == EMOTIONS
    np.testing.assert_allclose(out.probs, 0.5 * onehot(3) + 0.5 * onehot(4), rtol=1e-6)
    assert out.emotion == "happy" and face.emotion == "sad"  # the label follows the smoothing


def test_face_result_as_dict_is_the_face_record_with_id_only_when_tracked() -> None:
    face = det((1, 2, 3, 4), onehot(3))
    assert list(face.as_dict()) == ["box", "score", "emotion", "confidence", "probs"]
    tracked_dict = replace(face, track_id=5).as_dict()
    assert list(tracked_dict) == ["id", "box", "score", "emotion", "confidence", "probs"]
    assert tracked_dict["id"] == 5 and tracked_dict["probs"] == face.as_dict()["probs"]
    assert face.as_dict() == face_record(face)


# --- records and sinks ----------------------------------------------------------------------


def tracked(
    i: int = 7, emotion: int = 3, box: tuple[float, float, float, float] = (10.5, 20.25, 30.0, 40.0)
) -> FaceResult:
    return replace(det(box, onehot(emotion), 0.875), track_id=i)


def test_frame_record_schema() -> None:
    rec = FrameRecord("cam", 12, 1700000000.5, [tracked()], EMOTIONS).as_dict()
    assert list(rec) == ["source", "frame", "time", "faces"]
    assert rec["source"] == "cam" and rec["frame"] == 12 and rec["time"] == 1700000000.5
    (face,) = rec["faces"]
    assert list(face) == ["id", "box", "score", "emotion", "confidence", "probs"]
    assert face["id"] == 7 and face["emotion"] == "happy" and face["score"] == 0.875
    assert face["box"] == [10.5, 20.25, 30.0, 40.0] and face["confidence"] == 0.9
    assert list(face["probs"]) == list(EMOTIONS)
    assert sum(face["probs"].values()) == pytest.approx(1.0, abs=1e-5)
    assert json.loads(json.dumps(rec)) == rec
    with pytest.raises(ValueError, match="probabilities"):
        face_record(replace(tracked(), emotions=EMOTIONS[:6]))


def test_frame_record_bytes_and_rounding() -> None:
    face = replace(tracked(), box=(10.504999, 20.25, 30.0, 40.123456), score=0.87654321)
    line = json.dumps(
        FrameRecord("c", 3, 1.23456, [face], EMOTIONS).as_dict(), separators=(",", ":")
    )
    probs = ",".join(f'"{name}":{0.9 if name == "happy" else 0.016667}' for name in EMOTIONS)
    assert line == (
        '{"source":"c","frame":3,"time":1.235,"faces":[{"id":7,"box":[10.5,20.25,30.0,40.12],'
        f'"score":0.876543,"emotion":"happy","confidence":0.9,"probs":{{{probs}}}}}]}}'
    )


def test_jsonl_sink_flushes_every_line(tmp_path) -> None:
    path = tmp_path / "ev.jsonl"
    sink = JsonlSink(path, EMOTIONS)
    sink.write(FrameRecord("cam", 0, 1.0, [tracked()], EMOTIONS))
    sink.write(FrameRecord("cam", 1, 2.0, [], EMOTIONS))
    # Before close: both lines are already on disk and complete.
    lines = path.read_text().splitlines()
    assert [json.loads(x)["frame"] for x in lines] == [0, 1]
    assert json.loads(lines[1])["faces"] == []
    sink.close()
    with pytest.raises(ValueError, match="does not exist"):
        JsonlSink(tmp_path / "missing" / "ev.jsonl", EMOTIONS)
    with pytest.raises(TypeError):
        JsonlSink(3, EMOTIONS)  # type: ignore[arg-type]


def test_jsonl_sink_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    with JsonlSink("-", EMOTIONS) as sink:
        sink.write(FrameRecord("cam", 5, 3.0, [tracked()], EMOTIONS))
    assert json.loads(capsys.readouterr().out)["frame"] == 5


def test_csv_and_table_sinks_write_the_record_rows(tmp_path, capsys) -> None:
    path = tmp_path / "f.csv"
    with open_sink("csv", path, EMOTIONS) as sink:
        sink.write(FrameRecord("a.jpg", 0, 1.0, [tracked(), tracked(8, 4)], EMOTIONS))
        sink.write(FrameRecord("b.jpg", 0, 1.0, [], EMOTIONS))
    rows = list(csv.DictReader(path.open()))
    assert list(rows[0]) == row_fields(EMOTIONS)
    assert [(r["id"], r["emotion"], r["x"]) for r in rows] == [
        ("7", "happy", "10.5"),
        ("8", "sad", "10.5"),
    ]
    with open_sink("table", "-", EMOTIONS) as sink:
        sink.write(FrameRecord("b.jpg", 0, 1.0, [], EMOTIONS))  # no face: no header yet
        sink.write(FrameRecord("a.jpg", 2, 1.0, [tracked()], EMOTIONS))
    header, line = capsys.readouterr().out.splitlines()
    assert header.split()[:7] == ["source", "frame", "face", "box", "score", "emotion", "conf"]
    assert line.split()[:7] == ["a.jpg", "2", "0", "10,20,30,40", "0.88", "happy", "0.90"]
    with pytest.raises(ValueError, match="format must be one of"):
        open_sink("xml", "-", EMOTIONS)


# --- annotate / kiosk --------------------------------------------------------------------


def test_draw_faces_marks_box_label_and_bars() -> None:
    img = np.zeros((480, 640, 3), np.uint8)
    face = tracked(3, 3, (200, 150, 100, 120))
    draw_faces(img, [face], EMOTIONS)
    hit = (img == np.array(color_of("happy"))).all(axis=2)
    assert hit[160:270, 200].all() and hit[160:270, 300].all()  # left and right box edges
    assert hit[125:150, 200:300].sum() > 300  # the label background above the box
    assert hit[150:260, 306:500].sum() > 300  # the happy bar, right of the box
    assert not hit[:, 520:].any() and not hit[300:, :].any()
    draw_fps(img, 42.0)
    assert img[5:25, 5:80].max() == 255
    with pytest.raises(ValueError, match="uint8"):
        draw_faces(np.zeros((10, 10), np.uint8), [], EMOTIONS)
    with pytest.raises(TypeError):
        draw_faces([[0]], [], EMOTIONS)  # type: ignore[arg-type]


def test_render_kiosk_layout() -> None:
    frame = np.full((480, 640, 3), 200, np.uint8)
    small = tracked(1, 0, (10, 10, 20, 20))
    big = tracked(2, 5, (200, 150, 150, 180))
    assert primary_face([small, big]) is big and primary_face([]) is None
    canvas = render_kiosk(frame, [small, big], EMOTIONS, 30.0, (1024, 600))
    assert canvas.shape == (600, 1024, 3)
    panel = canvas[:, int(1024 * 0.64) :]
    assert (panel == color_of("surprise")).all(axis=2).sum() > 2000  # big label + its bar
    assert (canvas[300, :600] == 200).all(axis=1).sum() > 300  # the video is shown left
    empty = render_kiosk(frame, [], EMOTIONS, 0.0, (640, 360))
    assert (empty[:, 420:] == BACKGROUND).all(axis=2).mean() > 0.8
    with pytest.raises(ValueError, match="at least"):
        render_kiosk(frame, [], EMOTIONS, 0.0, (100, 100))


# --- stats -------------------------------------------------------------------------------


def test_run_stats_cpu_is_read_when_the_run_finishes() -> None:
    """The process CPU clock is read at the first frame and at finish(), not per frame."""
    st = RunStats(launched=0.0)
    st.frame_started(10.0)
    st.frame_done(10.5, faces=1)
    st.finish()
    frozen = st.summary(frames_read=1, dropped=0, reconnects=0).cpu_ms_per_frame
    sum(i * i for i in range(200_000))  # CPU spent after the run's end is not counted
    again = st.summary(frames_read=1, dropped=0, reconnects=0).cpu_ms_per_frame
    assert frozen == again >= 0.0
    idle = RunStats(launched=0.0)
    idle.finish()  # no frame: nothing to read
    assert idle.summary(frames_read=0, dropped=0, reconnects=0).cpu_ms_per_frame == 0.0


def test_run_stats_percentiles_and_fps() -> None:
    st = RunStats(launched=0.0)
    for i in range(100):
        st.record("infer", (i + 1) / 1000)
    st.frame_started(10.0)
    for k in range(50):
        st.frame_done(10.0 + (k + 1) * 0.01, faces=1)
    s = st.summary(frames_read=60, dropped=10, reconnects=1)
    infer = next(x for x in s.stages if x.name == "infer")
    assert infer.count == 100
    assert infer.p50_ms == pytest.approx(50.5) and infer.p95_ms == pytest.approx(95.05)
    assert s.fps == pytest.approx(100.0) and s.frames == 50 and s.faces == 50
    assert s.first_result_s == pytest.approx(10.01)
    assert s.cpu_ms_per_frame >= 0.0
    assert [x.name for x in s.stages] == list(STAGES)
    text = s.format()
    assert "dropped 10" in text and "reconnects 1" in text and "infer" in text
    assert "track" not in text  # stages without samples are left out
    with pytest.raises(ValueError, match="unknown stage"):
        st.record("nope", 1.0)
    age = process_age()
    assert age is None or 0 <= age < 3600


# --- cli argument handling ---------------------------------------------------------------


def test_cli_help_and_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for flag in (
        "--source",
        "--jsonl",
        "--output",
        "--display",
        "--fullscreen",
        "--max-frames",
        "--detector",
        "--detector-model",
        "--model",
        "--backend",
        "--save-crops",
    ):
        assert flag in out
    for bad in (
        ["--source", "0", "--max-frames", "0"],
        ["--source", "0", "--kiosk-size", "big"],
        ["--source", "0", "--smoothing", "2"],
        [],
        ["--source", "0", "--detector", "x"],
        ["--source", "0", "--max-reconnects", "-1"],
        ["--source", "0", "--max-missed", "-2"],
        ["--source", "0", "--backend", "gpu"],
        ["--source", "0", "--timeout", "0"],
        ["--source", "0", "--decode-threads", "-1"],
    ):
        with pytest.raises(SystemExit) as exc:
            build_parser().parse_args(bad)
        assert exc.value.code == 2


def test_cli_unopenable_sources_fail_clearly(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    cases = {
        str(tmp_path / "missing.mp4"): "video file not found",
        "http://127.0.0.1:9/none.mjpg": "cannot open url source",
        "videotestsrc ! appsink": "GStreamer",
        "/dev/video-none": "video device not found",
    }
    for src, message in cases.items():
        assert main(["--source", src, "--timeout", "2", "-q"]) == 1
        err = capsys.readouterr().err
        assert "error:" in err and message in err, err
    assert not list(tmp_path.iterdir())


def test_interrupt_handler_sets_stop_event() -> None:
    import signal

    from ferfast.stream.cli import _Interrupts

    stop = threading.Event()
    before = signal.getsignal(signal.SIGINT)
    with _Interrupts(stop):
        signal.raise_signal(signal.SIGINT)
        assert stop.is_set()
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)  # a second Ctrl-C forces the exit
    assert signal.getsignal(signal.SIGINT) is before


# --- the loop (fake engine and window) -----------------------------------------------------


class FakeWindow:
    size = (320, 240)

    def __init__(self) -> None:
        self.shown: list[np.ndarray] = []
        self.polls = 0

    def show(self, image: np.ndarray) -> bool:
        self.shown.append(image)
        return True

    def poll(self) -> bool:
        self.polls += 1
        return True

    def close(self) -> None:
        pass


def test_stream_loop_across_a_reconnect_keeps_the_window_alive(tmp_path) -> None:
    from ferfast.stream.kiosk import status_screen
    from ferfast.stream.pipeline import Lane, LaneOutputs, StreamLoop

    calls = []

    def opener(spec, **kw):
        calls.append(1)
        if len(calls) == 1:
            return FakeCapture(5, delay=0.01)  # a 100 fps camera, then it goes away
        if len(calls) < 4:
            raise SourceError("refused")
        return FakeCapture(50, start=100, delay=0.01)

    src = FrameSource(parse_source("rtsp://cam"), backoff=(0.15, 0.15), opener=opener).start()
    window = FakeWindow()
    jsonl = JsonlSink(tmp_path / "ev.jsonl", EMOTIONS)
    lane = Lane(src, IouTracker(EMOTIONS), outputs=LaneOutputs(window=window))
    loop = StreamLoop(FakeEngine(), [lane], [jsonl])
    loop.max_frames = 8
    result = loop.run()
    src.stop()
    jsonl.close()
    assert result.reason == "max-frames" and result.summary.frames == 8
    assert result.summary.reconnects == 1
    lines = [json.loads(x) for x in (tmp_path / "ev.jsonl").read_text().splitlines()]
    frames = [e["frame"] for e in lines]
    assert len(frames) == 8 and frames == sorted(set(frames))
    assert frames[-1] >= 5  # frames after the reconnect were processed
    assert window.polls > 3  # events were handled while the camera was away
    notice = status_screen("camera lost - reconnecting", (320, 240))
    assert any(np.array_equal(img, notice) for img in window.shown)
    assert (notice != notice[0, 0]).any()  # the message is drawn


def test_a_source_is_named_without_its_password() -> None:
    assert parse_source("rtsp://user:pw@10.0.0.5:554/s1").name == "rtsp://10.0.0.5:554/s1"
    assert parse_source("http://127.0.0.1:8080/cam.mjpg").name == "http://127.0.0.1:8080/cam.mjpg"
    for text in ("0", "clip.mp4", "/dev/video0"):
        assert parse_source(text).name == text
