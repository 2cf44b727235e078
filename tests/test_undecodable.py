"""Frames that do not decode are skipped, counted and numbered by position, not taken for the end.

A damaged MP4 (random bytes over 10 KB in the middle), a loopback MJPEG server with one corrupt
part among good ones, one that sends nothing but garbage, and scripted captures.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest
from stream_support import read_jsonl, wait_for, write_video

from ferfast.cli import main as cli_main
from ferfast.files import predict_files
from ferfast.stream.cli import main as stream_main
from ferfast.stream.sources import Frame, FrameSource, SourceError, parse_source
from ferfast.video import MAX_FAILED_READS, FrameReader

N_FRAMES = 240


def decode_all(path: Path, retries: int = 0) -> dict[int, np.ndarray]:
    """The frames OpenCV decodes, by position, reading on past up to ``retries`` failed reads
    in a row (0: stop at the first one, as a naive reader does)."""
    cap = cv2.VideoCapture(str(path))
    frames: dict[int, np.ndarray] = {}
    position = failures = 0
    while failures <= retries:
        ok, image = cap.read()
        if ok:
            frames[position] = image
            failures = 0
        else:
            failures += 1
        position += 1
    cap.release()
    return frames


@dataclass(frozen=True)
class Damaged:
    path: Path
    clean: dict[int, np.ndarray]  # every frame of the undamaged file, by position
    decodable: list[int]  # positions of the damaged file's frames that decode
    naive: int  # frames a reader gets that stops at the first failed read

    @property
    def lost(self) -> int:
        return N_FRAMES - len(self.decodable)


@pytest.fixture(scope="module")
def damaged(tmp_path_factory: pytest.TempPathFactory) -> Damaged:
    """A 240-frame MP4 (mp4v, noise so that each frame is ~5 KB) with 10 KB of random bytes
    written over its middle: OpenCV fails a few reads there, then goes on."""
    folder = tmp_path_factory.mktemp("damaged")
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (120, 160, 3), dtype=np.uint8) for _ in range(N_FRAMES)]
    clean_path = write_video(folder / "clean.mp4", frames)
    data = bytearray(clean_path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 10_240] = np.random.default_rng(1).bytes(10_240)
    path = folder / "damaged.mp4"
    path.write_bytes(bytes(data))
    clean = decode_all(clean_path)
    assert sorted(clean) == list(range(N_FRAMES))
    decodable = sorted(decode_all(path, retries=1000))
    naive = len(decode_all(path))
    # The damage stops a naive reader in the middle, and most frames after it still decode.
    assert naive < N_FRAMES // 2 + 20 and decodable[-1] == N_FRAMES - 1
    assert 0 < N_FRAMES - len(decodable) < 20 and len(decodable) > naive + 100
    return Damaged(path, clean, decodable, naive)


def same_frame(a: np.ndarray, b: np.ndarray) -> bool:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean()) < 1.0


class NoFaces:
    """Engine stand-in for predict_files: no faces in any frame."""

    def predict_batch(self, frames):
        return [[] for _ in frames]


def test_predict_files_reads_past_undecodable_frames(damaged: Damaged) -> None:
    preds = list(predict_files(damaged.path, NoFaces(), keep_images=True))  # type: ignore[arg-type]
    assert all(p.error is None for p in preds)
    assert [p.frame for p in preds] == damaged.decodable  # true positions: the gap shows
    assert sum(p.undecodable for p in preds) == damaged.lost
    previous = -1
    for p in preds:
        assert p.undecodable == p.frame - previous - 1  # each gap is counted where it is
        previous = p.frame
    after_gap = [p for p in preds if p.frame > damaged.naive + damaged.lost]
    assert len(after_gap) > 100
    for p in after_gap:
        assert p.image is not None and same_frame(p.image, damaged.clean[p.frame])
    # Every other frame, by position: the gap's frames are counted though not all were due.
    halves = list(predict_files(damaged.path, NoFaces(), every=2))  # type: ignore[arg-type]
    assert [p.frame for p in halves] == [i for i in damaged.decodable if i % 2 == 0]
    assert sum(p.undecodable for p in halves) == damaged.lost


def test_predict_cli_reports_undecodable_frames(
    damaged: Damaged, tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "faces.jsonl"
    args = ["predict", str(damaged.path), "--model", str(tiny_model), "--detector", "haar"]
    args += ["--every", "40", "--no-progress", "-o", str(out)]  # the detector: 0.1 s a frame
    assert cli_main(args) == 0
    err = capsys.readouterr().err
    due = [i for i in damaged.decodable if i % 40 == 0]
    assert f"{len(due)} images/frames" in err
    assert f"{damaged.lost} undecodable video frames skipped" in err


def drain(source: FrameSource, timeout: float = 20.0) -> list[Frame]:
    """Every frame the source delivers until it ends (or ``timeout``)."""
    frames = []
    deadline = time.monotonic() + timeout
    while not source.ended and time.monotonic() < deadline:
        frame = source.read(0.05)
        if frame is not None:
            frames.append(frame)
    return frames


def test_file_source_reads_past_undecodable_frames(damaged: Damaged) -> None:
    source = FrameSource(parse_source(str(damaged.path))).start()
    frames = drain(source)
    ended = source.ended
    source.stop()
    assert ended and source.error is None
    assert [f.index for f in frames] == damaged.decodable
    assert source.frames_read == len(damaged.decodable) and source.undecodable == damaged.lost
    last = frames[-1]
    assert last.index == N_FRAMES - 1 and same_frame(last.image, damaged.clean[last.index])


def test_stream_cli_reports_undecodable_frames(
    damaged: Damaged, tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events, summary = tmp_path / "ev.jsonl", tmp_path / "summary.json"
    args = ["--source", str(damaged.path), "--model", str(tiny_model), "--detector", "haar"]
    args += ["--jsonl", str(events), "--summary-json", str(summary), "--no-progress"]
    args += ["--detect-every", "1000"]  # the detector takes 0.1 s on a noise frame
    assert stream_main(args) == 0
    err = capsys.readouterr().err
    data = json.loads(summary.read_text())
    assert data["frames"] == data["frames_read"] == len(damaged.decodable)
    assert data["undecodable"] == damaged.lost and data["reason"] == "end"
    assert f"undecodable {damaged.lost}," in err
    assert [e["frame"] for e in read_jsonl(events)] == damaged.decodable


# --- MJPEG over HTTP on loopback -------------------------------------------------------------


def jpeg(value: int) -> bytes:
    """A 64x48 JPEG of one grey level (decodes back to ``value`` within 1 or 2)."""
    ok, data = cv2.imencode(".jpg", np.full((48, 64, 3), value, np.uint8))
    assert ok
    return data.tobytes()


GARBAGE = np.random.default_rng(2).bytes(3000)  # not a JPEG: no SOI marker


@contextlib.contextmanager
def mjpeg_server(
    part: Callable[[int], bytes | None], interval: float = 0.005, lifetime: float = 30.0
) -> Iterator[str]:
    """An MJPEG camera on 127.0.0.1 (multipart/x-mixed-replace): part ``i`` of each connection is
    ``part(i)``, one every ``interval`` s; None ends the connection. Every connection ends after
    ``lifetime`` s and when the block exits; yields the URL."""
    done = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            deadline = time.monotonic() + lifetime
            i = 0
            with contextlib.suppress(OSError):
                while not done.is_set() and time.monotonic() < deadline:
                    body = part(i)
                    if body is None:
                        return
                    head = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                    self.wfile.write(head % len(body) + body + b"\r\n")
                    i += 1
                    time.sleep(interval)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/cam.mjpg"
    finally:
        done.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_corrupt_mjpeg_part_is_skipped_not_a_lost_connection() -> None:
    """One corrupt part among 60 good ones costs that frame only, counted, not the connection
    (which would lose every frame until the reconnect)."""
    bad = 20

    def part(i: int) -> bytes | None:
        return None if i >= 60 else GARBAGE if i == bad else jpeg(i)

    with mjpeg_server(part) as url:
        source = FrameSource(parse_source(url), max_reconnects=0, timeout_s=2.0).start()
        frames = drain(source)
        source.stop()
    assert source.frames_read == 59 and source.undecodable == 1 and source.reconnects == 0
    assert bad not in [f.index for f in frames]
    for f in frames:  # each frame's number is its part's: the corrupt part leaves a gap
        assert abs(int(f.image[0, 0, 0]) - f.index) <= 2
    # The connection ended after the last part; with no reconnect allowed the source gives up.
    assert isinstance(source.error, SourceError) and "0 reconnect attempts" in str(source.error)


def test_max_reconnects_ends_a_server_that_never_sends_a_decodable_frame(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A server that connects but sends only garbage: the reconnect is no success, so
    --max-reconnects gives up on it (it used to reconnect forever with 0 frames)."""
    caplog.set_level("WARNING", logger="ferfast.stream")
    with mjpeg_server(lambda i: GARBAGE, interval=0.01) as url:
        source = FrameSource(
            parse_source(url), max_reconnects=1, backoff=(0.05, 0.05), timeout_s=1.0
        ).start()
        ended = wait_for(lambda: source.ended, 30.0)
        source.stop()
    assert ended, "the source kept reconnecting to a server that sends no frame"
    assert source.frames_read == 0 and source.reconnects == 0
    assert isinstance(source.error, SourceError) and "1 reconnect attempts" in str(source.error)
    assert "connected, but no frame decoded" in caplog.text


# --- scripted captures -----------------------------------------------------------------------


class ScriptedCapture:
    """A VideoCapture stand-in: ``script[i]`` True decodes frame ``i`` (pixels = i), False fails;
    past the script every read fails (the end). ``delay``: seconds per read; ``pace``: extra
    seconds per decoded frame."""

    def __init__(self, script: list[bool], delay: float = 0.0, pace: float = 0.0) -> None:
        self.script, self.delay, self.pace, self.calls = script, delay, pace, []
        self.released = False

    def _next(self) -> bool:
        time.sleep(self.delay)  # every read
        i = len(self.calls)
        ok = i < len(self.script) and self.script[i]
        self.calls.append(i)
        if ok:
            time.sleep(self.pace)  # a camera's frame interval
        return ok

    def read(self):
        i = len(self.calls)
        return (True, np.full((4, 4, 3), i, np.uint8)) if self._next() else (False, None)

    def grab(self) -> bool:
        return self._next()

    def get(self, prop: int) -> float:
        return {cv2.CAP_PROP_FPS: 30.0, cv2.CAP_PROP_FRAME_COUNT: float(len(self.script))}.get(
            prop, 0.0
        )

    def release(self) -> None:
        self.released = True


def test_frame_reader_numbers_by_position_and_bounds_the_failures() -> None:
    script = [True, False, False, True, True, False, True]
    reader = FrameReader(ScriptedCapture(script), max_failed_reads=5)
    got = [reader.next() for _ in range(4)]
    assert [(g.index, g.skipped) for g in got if g] == [(0, 0), (3, 2), (4, 0), (6, 1)]
    assert all(g is not None and int(g.image[0, 0, 0]) == g.index for g in got)
    assert reader.next() is None and reader.skipped == 3  # the failures at the end are not
    # Grab-only frames by position: the decode choice follows the index, failures included.
    cap = ScriptedCapture(script)
    reader = FrameReader(cap)
    got = [reader.next(decode=lambda i: i % 3 == 0) for _ in range(4)]
    assert [(g.index, g.image is not None) for g in got if g] == [
        (0, True),
        (3, True),
        (4, False),
        (6, True),
    ]
    # A run of failures ends after max_failed_reads reads, or after max_failed_s seconds.
    cap = ScriptedCapture([])
    assert FrameReader(cap).next() is None and len(cap.calls) == MAX_FAILED_READS
    slow = ScriptedCapture([], delay=0.02)
    t0 = time.perf_counter()
    assert FrameReader(slow, max_failed_s=0.1).next() is None
    assert time.perf_counter() - t0 < 1.0 and 4 <= len(slow.calls) < MAX_FAILED_READS
    stopped = ScriptedCapture([])
    assert FrameReader(stopped).next(cancelled=lambda: True) is None and stopped.calls == [0]
    with pytest.raises(ValueError, match="max_failed_reads"):
        FrameReader(cap, max_failed_reads=0)
    with pytest.raises(ValueError, match="max_failed_s"):
        FrameReader(cap, max_failed_s=0.0)


def test_reconnect_counts_only_when_a_frame_decodes(caplog: pytest.LogCaptureFixture) -> None:
    """Captures that open but never decode are failed reconnect attempts: max_reconnects ends
    them. One that decodes again is a reconnect; its frames are numbered on from the lost ones."""
    caplog.set_level(logging.WARNING, logger="ferfast.stream")
    scripts = {0: [True, True], 3: [False, True, True]}  # the rest open, then fail every read
    opened: list[ScriptedCapture] = []

    def opener(spec, **kw) -> ScriptedCapture:
        opened.append(ScriptedCapture(scripts.get(len(opened), []), pace=0.02))
        return opened[-1]

    src = FrameSource(
        parse_source("rtsp://cam/x"), backoff=(0.01, 0.01), max_reconnects=3, opener=opener
    ).start()
    frames = drain(src, timeout=10.0)
    ended = src.ended
    src.stop()
    assert ended, "reconnected forever to captures that never decode"
    # Capture 0: frames 0, 1. Attempts 1, 2: no frame. Attempt 3: a reconnect (a failed read,
    # then frames 3, 4). Then 3 attempts without a frame: out of attempts.
    assert len(opened) == 7 and src.reconnects == 1
    assert src.frames_read == 4 and src.undecodable == 1
    assert [f.index for f in frames] == [0, 1, 3, 4] and all(c.released for c in opened)
    assert "3 reconnect attempts" in str(src.error)
    assert caplog.text.count("connected, but no frame decoded") == 5
