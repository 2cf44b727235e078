"""Helpers for the ferfast-stream tests: a moving-face video, a loopback MJPEG camera, CLI runs."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from ferfast.faces import Faces, as_faces
from tools.moving_face import face_frames

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
YUNET = SHARED / "models" / "face_detection_yunet_2026may.onnx"
FACE_PHOTO = SHARED / "data" / "photos" / "images_1.jpg"


def write_video(path: Path, frames: list[np.ndarray], fps: float = 30.0) -> Path:
    """Write ``frames`` with cv2.VideoWriter (mp4v for .mp4, MJPG for .avi)."""
    fourcc = "MJPG" if path.suffix == ".avi" else "mp4v"
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert writer.isOpened(), f"cannot write {path}"
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def write_face_video(path: Path, n: int) -> Path:
    """``n`` frames of the shared photo's moving face written to ``path`` (see write_video).

    Skips the calling test when the shared photo or the YuNet model is missing.
    """
    if not FACE_PHOTO.is_file() or not YUNET.is_file():
        pytest.skip(f"shared photo or YuNet model missing under {SHARED}")
    photo = cv2.imread(str(FACE_PHOTO))
    assert photo is not None, f"cannot read {FACE_PHOTO}"
    return write_video(path, face_frames(photo, n))


# FER2013 order (the contract).
FAKE_EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def numbered_frame(i: int, size: tuple[int, int] = (4, 4)) -> np.ndarray:
    """A tiny BGR frame whose pixels all hold ``i % 256`` (the fakes read the number back)."""
    return np.full((size[1], size[0], 3), i % 256, np.uint8)


class FakeEngine:
    """Engine stand-in for loop tests: one face per frame, everything derived from the frame.

    The frame number is its first pixel (:func:`numbered_frame`). ``detect`` records the
    numbers it ran on in ``detected`` and finds one face at ``box`` (or ``box(number)``);
    ``predict`` gives each box the one-hot probabilities of ``number % 7`` and, with
    ``crops=True``, the crop ``look(number)`` (default: one fixed pattern). ``delay(number)``
    seconds are slept in ``detect`` (detector cost, to shuffle thread timing).
    """

    emotions = FAKE_EMOTIONS

    def __init__(
        self,
        box=(1.0, 1.0, 2.0, 2.0),
        look=None,
        delay=None,
    ) -> None:
        self.box = box
        self.look = look or (lambda n: _PATTERN)
        self.delay = delay or (lambda n: 0.0)
        self.detected: list[int] = []
        self.crops_asked: set[bool] = set()  # the crops= values predict was called with

    def detect(self, image: np.ndarray) -> Faces:
        n = int(image[0, 0, 0])
        self.detected.append(n)
        time.sleep(self.delay(n))
        box = self.box(n) if callable(self.box) else self.box
        return Faces(np.array([box], np.float64), np.array([0.9]))

    def predict(self, image: np.ndarray, boxes=None, *, crops: bool = False) -> Faces:
        n = int(image[0, 0, 0])
        self.crops_asked.add(crops)
        faces = self.detect(image) if boxes is None else as_faces(boxes, FAKE_EMOTIONS)
        probs = np.full((len(faces), 7), 0.05, np.float32)
        probs[:, n % 7] = 0.7
        look = np.stack([self.look(n)] * len(faces)) if crops and len(faces) else None
        return Faces(faces.boxes, faces.scores, faces.landmarks, probs, look, None, FAKE_EMOTIONS)

    def predict_batch(self, images, boxes, *, crops: bool = False) -> list[Faces]:
        return [self.predict(i, b, crops=crops) for i, b in zip(images, boxes, strict=True)]


_PATTERN = np.indices((48, 48)).sum(axis=0).astype(np.float32) / 94.0  # a diagonal ramp


class NumberedCapture:
    """A ``cv2.VideoCapture`` stand-in yielding ``n`` numbered frames, then failing reads."""

    def __init__(
        self, n: int, start: int = 0, size: tuple[int, int] = (4, 4), delay: float = 0.0
    ) -> None:
        self.n, self.i, self.start, self.size, self.delay = n, 0, start, size, delay

    def read(self):
        time.sleep(self.delay)  # a camera's frame interval (0: as fast as possible)
        if self.i >= self.n:
            return False, None
        self.i += 1
        return True, numbered_frame(self.start + self.i - 1, self.size)

    def get(self, prop: int) -> float:
        return {cv2.CAP_PROP_FPS: 30.0, cv2.CAP_PROP_FRAME_COUNT: float(self.n)}.get(prop, 0.0)

    def release(self) -> None:
        pass


def cli_env() -> dict[str, str]:
    """Environment for CLI subprocesses: no inherited YuNet override, unbuffered output.

    The subprocess imports the *installed* ferfast, as the tests themselves do: ``src/`` is not
    put on the path, since its ``ferfast`` has no compiled ``_core`` in a fresh clone.
    """
    env = dict(os.environ)
    env.pop("FERFAST_YUNET", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def cli_command(*args: str | Path) -> list[str]:
    """``python -m ferfast.stream.cli ARGS`` (works without the console script installed)."""
    return [sys.executable, "-m", "ferfast.stream.cli", *(str(a) for a in args)]


def engine_args(model: Path, detector_size: int = 160) -> list[str]:
    """Engine flags for tests: the given model and YuNet at a reduced input size."""
    return [
        "--model",
        str(model),
        "--detector",
        "yunet",
        "--detector-model",
        str(YUNET),
        "--detector-size",
        str(detector_size),
    ]


def read_jsonl(path: Path) -> list[dict]:
    """Every line of a JSON Lines file, parsed (raises on an incomplete or invalid line)."""
    text = path.read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n"), "last JSON Lines record is incomplete"
    return [json.loads(line) for line in text.splitlines()]


def count_lines(path: Path) -> int:
    """Complete lines in ``path`` so far (0 if it does not exist yet)."""
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def wait_for(predicate, timeout: float, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def is_listening(port: int) -> bool:
    """Whether some socket listens on 127.0.0.1:``port`` (from /proc, without connecting)."""
    want = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[1].endswith(want) and fields[3] == "0A":
                return True
    return False


class MjpegCamera:
    """A network camera: ffmpeg serving a looping video as MJPEG over HTTP on loopback.

    ffmpeg's HTTP server (``-listen 1``) serves one client and exits when it goes away, so while
    the camera is "on" a supervisor thread restarts ffmpeg whenever it exits, as a real camera
    keeps serving. ``kill()`` switches the camera off (SIGKILL, no restart).
    """

    def __init__(self, video: Path, port: int) -> None:
        self.video = video
        self.port = port
        self.url = f"http://127.0.0.1:{port}/cam.mjpg"
        self.proc: subprocess.Popen | None = None
        self.spawned = 0
        self._on = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def _spawn(self) -> subprocess.Popen:
        ffmpeg = shutil.which("ffmpeg")
        assert ffmpeg is not None
        cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-re"]
        cmd += ["-stream_loop", "-1", "-i", str(self.video), "-c:v", "mjpeg", "-q:v", "5"]
        cmd += ["-f", "mpjpeg", "-listen", "1", self.url]
        self.spawned += 1
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _supervise(self) -> None:
        while self._on.is_set():
            with self._lock:
                if self._on.is_set() and (self.proc is None or self.proc.poll() is not None):
                    self.proc = self._spawn()
            time.sleep(0.05)

    def start(self) -> MjpegCamera:
        """Switch the camera on; return once ffmpeg listens."""
        self._on.set()
        self._thread = threading.Thread(target=self._supervise, daemon=True)
        self._thread.start()
        ok = wait_for(lambda: is_listening(self.port) or self.spawned > 1, 20.0)
        assert ok, "ffmpeg did not start listening"
        return self

    def kill(self) -> None:
        """Switch the camera off at once (SIGKILL), as a crash or a pulled cable would."""
        with self._lock:
            self._on.clear()
            if self.proc is not None and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait(timeout=10)
            self.proc = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


@contextlib.contextmanager
def xvfb_display(size: tuple[int, int] = (1024, 600)) -> Iterator[str | None]:
    """A private Xvfb server (its own free display number); yields DISPLAY, or None if no Xvfb."""
    if shutil.which("Xvfb") is None:
        yield None
        return
    read_fd, write_fd = os.pipe()
    cmd = ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", f"{size[0]}x{size[1]}x24"]
    cmd += ["-nolisten", "tcp"]
    proc = subprocess.Popen(cmd, pass_fds=(write_fd,), stderr=subprocess.DEVNULL)
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as fh:
            number = fh.readline().strip()
        yield f":{number}" if number else None
    finally:
        proc.terminate()
        proc.wait(timeout=10)


RECORD_SCHEMA = REPO / "docs" / "record.schema.json"


def check_record(record: dict) -> None:
    """``record`` is a valid frame record: docs/record.schema.json, and each face's emotion is
    its most probable one, with that probability as its confidence."""
    import jsonschema

    jsonschema.validate(record, json.loads(RECORD_SCHEMA.read_text()))
    for face in record["faces"]:
        probs = face["probs"]
        assert face["emotion"] == max(probs, key=probs.get)
        assert face["confidence"] == probs[face["emotion"]]
        assert abs(sum(probs.values()) - 1.0) < 1e-4
