"""Frame sources: open a camera, V4L2 device, file, URL or GStreamer pipeline; a capture thread.

Live sources (camera, device, URL, GStreamer) keep only the newest frame when inference falls
behind (older frames are dropped and counted) and reconnect with exponential backoff when they
fail. File sources never drop a frame and end at the end of the file. Both skip frames that do
not decode (:class:`ferfast.video.FrameReader`, counted in ``undecodable``).
"""

from __future__ import annotations

import collections
import enum
import logging
import os
import re
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import cv2
import numpy as np

from ferfast.video import FrameReader, VideoFrame

log = logging.getLogger("ferfast.stream")

T = TypeVar("T")
_URL_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_UNDECODABLE = "not a video or image this OpenCV build can decode"


class SourceError(RuntimeError):
    """A source could not be opened (or reopened)."""


class SourceKind(enum.Enum):
    """How a ``--source`` string is opened."""

    CAMERA = "camera"  # integer index
    DEVICE = "device"  # V4L2 device path such as /dev/video0
    FILE = "file"  # a video file
    URL = "url"  # rtsp://, http:// (MJPEG), udp://, ... through FFmpeg
    GSTREAMER = "gstreamer"  # a GStreamer pipeline ending in appsink


@dataclass(frozen=True)
class SourceSpec:
    """A parsed ``--source`` value."""

    text: str
    kind: SourceKind

    @property
    def live(self) -> bool:
        """Live sources drop frames when behind and reconnect; files do neither."""
        return self.kind is not SourceKind.FILE

    @property
    def name(self) -> str:
        """The source as records, logs and metrics name it: a URL without its user and
        password (``rtsp://user:pw@host/s`` -> ``rtsp://host/s``), anything else as given."""
        if self.kind is not SourceKind.URL:
            return self.text
        parts = urllib.parse.urlsplit(self.text)
        if "@" not in parts.netloc:
            return self.text
        return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def parse_source(text: str) -> SourceSpec:
    """Classify a ``--source`` string (camera index, device path, URL, pipeline or file)."""
    if not isinstance(text, str):
        raise TypeError(f"source must be a str, got {type(text).__name__}")
    text = text.strip()
    if not text:
        raise ValueError("source is empty")
    if text.isdigit():
        return SourceSpec(text, SourceKind.CAMERA)
    if _URL_RE.match(text) and not text.startswith("file://"):
        return SourceSpec(text, SourceKind.URL)
    if "!" in text:
        return SourceSpec(text, SourceKind.GSTREAMER)
    if text.startswith("/dev/"):
        return SourceSpec(text, SourceKind.DEVICE)
    if text.startswith("file://"):
        text = text[len("file://") :]
    return SourceSpec(text, SourceKind.FILE)


def has_gstreamer() -> bool:
    """Whether this OpenCV build can open GStreamer pipelines."""
    info = cv2.getBuildInformation()
    match = re.search(r"GStreamer:\s*(\S+)", info)
    return match is not None and match.group(1).upper() != "NO"


def default_decode_threads() -> int:
    """FFmpeg decoder threads for files and URLs: 1 on up to 3 CPUs, else 0 (FFmpeg's choice).

    The stream's capture, detector and classification threads already keep three cores busy;
    with fewer cores, FFmpeg's frame threads only add hand-overs between threads (measured on
    2 cores, docs/stream.md: 8-11 % less CPU per frame and a fifth of the context switches
    with 1 thread, at the same frame rate).
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return 1 if cpus <= 3 else 0


def open_capture(
    spec: SourceSpec,
    *,
    timeout_s: float = 5.0,
    size: tuple[int, int] | None = None,
    decode_threads: int = 0,
) -> cv2.VideoCapture:
    """Open ``spec`` with OpenCV; raise :class:`SourceError` with the reason when it fails.

    ``decode_threads``: FFmpeg's decoder threads for a file or URL (0: FFmpeg's choice).
    """
    if decode_threads < 0:
        raise ValueError(f"decode_threads must be >= 0, got {decode_threads}")
    ms = int(timeout_s * 1000)
    timeouts = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
    threads = [cv2.CAP_PROP_N_THREADS, decode_threads] if decode_threads else []
    if spec.kind is SourceKind.FILE:
        if not os.path.isfile(spec.text):
            raise SourceError(f"video file not found: {spec.text}")
        if os.path.getsize(spec.text) == 0:
            raise SourceError(f"source file is empty: {spec.text}")
        cap = None
        if threads:
            # FFmpeg takes the thread count when it opens the file only; a file FFmpeg cannot
            # open goes through OpenCV's other backends.
            cap = cv2.VideoCapture(spec.text, cv2.CAP_FFMPEG, threads)
            if not cap.isOpened():
                cap.release()
                cap = None
        if cap is None:
            cap = cv2.VideoCapture(spec.text)
    elif spec.kind is SourceKind.URL:
        cap = cv2.VideoCapture(spec.text, cv2.CAP_FFMPEG, timeouts + threads)
    elif spec.kind is SourceKind.GSTREAMER:
        if not has_gstreamer():
            raise SourceError("this OpenCV build has no GStreamer support; cannot open pipeline")
        cap = cv2.VideoCapture(spec.text, cv2.CAP_GSTREAMER)
    elif spec.kind is SourceKind.DEVICE:
        if not os.path.exists(spec.text):
            raise SourceError(f"video device not found: {spec.text}")
        cap = cv2.VideoCapture(spec.text, cv2.CAP_V4L2)
    else:
        cap = cv2.VideoCapture(int(spec.text))
    if not cap.isOpened():
        cap.release()
        if spec.kind is SourceKind.FILE:
            raise SourceError(f"cannot open file source {spec.text}: {_UNDECODABLE}")
        raise SourceError(f"cannot open {spec.kind.value} source: {spec.name}")
    if size is not None and spec.kind in (SourceKind.CAMERA, SourceKind.DEVICE):
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
    return cap


@dataclass(frozen=True)
class Frame:
    """One decoded frame."""

    # 0-based position in the source, across reconnects: frames read, dropped or undecodable
    index: int
    image: np.ndarray  # BGR uint8 (H, W, 3)
    captured: float  # time.perf_counter() when the frame was decoded
    read_s: float  # seconds spent in VideoCapture.read()


class _Mailbox(Generic[T]):
    """Bounded buffer; when full it either drops the oldest item or blocks the producer."""

    def __init__(self, capacity: int, drop: bool) -> None:
        self._items: collections.deque[T] = collections.deque()
        self._capacity = capacity
        self._drop = drop
        self._cond = threading.Condition()
        self.closed = False
        self.dropped = 0

    def put(self, frame: T, stop: threading.Event) -> None:
        with self._cond:
            while len(self._items) >= self._capacity:
                if self._drop:
                    self._items.popleft()
                    self.dropped += 1
                    break
                if stop.is_set():
                    return
                self._cond.wait(0.1)
            self._items.append(frame)
            self._cond.notify_all()

    def get(self, timeout: float) -> T | None:
        with self._cond:
            if not self._items and not self.closed:
                self._cond.wait(timeout)
            if self._items:
                frame = self._items.popleft()
                self._cond.notify_all()
                return frame
            return None

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    @property
    def drained(self) -> bool:
        with self._cond:
            return self.closed and not self._items


class FrameSource:
    """Reads frames on a background thread so decoding overlaps inference.

    ``start()`` opens the source synchronously (raising :class:`SourceError` if it cannot be
    opened, or if a file yields no frame at all), then the thread reads until the file ends,
    ``stop()`` is called or a live source cannot be reopened within ``max_reconnects`` attempts.
    Frames that do not decode are skipped and counted (:attr:`undecodable`; they leave gaps in
    :attr:`Frame.index`): a file ends after :data:`~ferfast.video.MAX_FAILED_READS` failed
    reads in a row, a live source is lost after as many or after ``timeout_s`` of them, and a
    reconnect succeeds only when a frame decodes. ``realtime`` paces a file at its own frame
    rate (as a camera would deliver it); it still never drops frames. ``decode_threads``:
    FFmpeg's decoder threads for a file or URL (0: FFmpeg's choice; see
    :func:`default_decode_threads`).
    """

    def __init__(
        self,
        spec: SourceSpec,
        *,
        buffer: int = 8,
        backoff: tuple[float, float] = (0.25, 5.0),
        max_reconnects: int | None = None,
        timeout_s: float = 5.0,
        size: tuple[int, int] | None = None,
        realtime: bool = False,
        decode_threads: int = 0,
        opener: Callable[..., cv2.VideoCapture] = open_capture,
    ) -> None:
        if buffer < 1:
            raise ValueError(f"buffer must be >= 1, got {buffer}")
        if not 0 < backoff[0] <= backoff[1]:
            raise ValueError(f"backoff must satisfy 0 < initial <= maximum, got {backoff}")
        if max_reconnects is not None and max_reconnects < 0:
            raise ValueError(f"max_reconnects must be >= 0 or None, got {max_reconnects}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.spec = spec
        self._backoff = backoff
        self._max_reconnects = max_reconnects
        self._timeout_s = timeout_s
        self._realtime = realtime and not spec.live
        if decode_threads < 0:
            raise ValueError(f"decode_threads must be >= 0, got {decode_threads}")
        self._open: Callable[[], cv2.VideoCapture] = lambda: opener(
            spec, timeout_s=timeout_s, size=size, decode_threads=decode_threads
        )
        # Live: keep only the newest frame; file: a small FIFO that blocks the reader when full.
        self._box: _Mailbox[Frame] = _Mailbox(1 if spec.live else buffer, drop=spec.live)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cap: cv2.VideoCapture | None = None
        self._reader: FrameReader | None = None
        # A frame read before the thread took over (a file's probe, a reconnect's first frame).
        self._first: VideoFrame | None = None
        self._base = 0  # positions in the source before the current connection
        self.frames_read = 0
        self.undecodable = 0  # frames skipped because they did not decode
        self.reconnects = 0
        self.reconnecting = False  # True while a live source is being reopened
        self.error: SourceError | None = None
        self.fps = 0.0
        self.frame_count = 0

    def _reader_for(self, cap: cv2.VideoCapture) -> FrameReader:
        # A live source whose reads fail for timeout_s in a row is lost (a dead connection, a
        # server sending garbage); a file's end is a run of failed reads, each one quick.
        return FrameReader(cap, max_failed_s=self._timeout_s if self.spec.live else None)

    def open(self) -> FrameSource:
        """Open the source now; raise :class:`SourceError` when it cannot be opened."""
        if self._cap is None:
            cap = self._open()
            reader = self._reader_for(cap)
            if not self.spec.live:
                # A file that opens but decodes to nothing (a text file named .jpg, a truncated
                # video) is an error now, before the engine loads, not a run of 0 frames.
                first = reader.next()
                if first is None:
                    cap.release()
                    raise SourceError(
                        f"no frame could be read from {self.spec.name}: {_UNDECODABLE}"
                    )
                self._first = first
                self.frame_count = max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0), 0)
            self.fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
            self._cap, self._reader = cap, reader
        return self

    def start(self) -> FrameSource:
        """Open the source if needed (raises :class:`SourceError`); start the capture thread."""
        if self._thread is not None:
            raise RuntimeError("FrameSource already started")
        self.open()
        self._thread = threading.Thread(target=self._run, name="ferfast-capture", daemon=True)
        self._thread.start()
        return self

    @property
    def dropped(self) -> int:
        """Frames discarded because inference was behind (live sources only)."""
        return self._box.dropped

    @property
    def ended(self) -> bool:
        """True once the source has finished and every buffered frame has been read."""
        return self._box.drained

    def read(self, timeout: float = 0.1) -> Frame | None:
        """The next frame, or None if none arrived within ``timeout`` (see :attr:`ended`)."""
        return self._box.get(timeout)

    def stop(self) -> None:
        """Stop the capture thread and release the device."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)
        elif self._cap is not None:
            self._cap.release()
            self._cap = None
        self._reader = None
        self._first = None
        self._box.close()

    def _run(self) -> None:
        cap, reader = self._cap, self._reader
        period = 1.0 / self.fps if self._realtime and self.fps > 0 else 0.0
        t_start = time.perf_counter()
        try:
            while not self._stop.is_set():
                assert cap is not None and reader is not None
                if period:
                    due = t_start + (self.frames_read + self.undecodable) * period
                    ahead = due - time.perf_counter()
                    if ahead > 0 and self._stop.wait(ahead):
                        return
                got: VideoFrame | None = self._first  # stamped now: read before the thread ran
                if got is not None:
                    self._first = None
                else:
                    got = reader.next(cancelled=self._stop.is_set)
                t1 = time.perf_counter()
                if got is not None and got.image is not None:
                    if got.skipped:
                        log.debug(
                            "skipped %d undecodable frame(s) before frame %d: %s",
                            got.skipped,
                            self._base + got.index,
                            self.spec.name,
                        )
                    self.undecodable += got.skipped
                    self.frames_read += 1
                    frame = Frame(self._base + got.index, got.image, t1, got.read_s)
                    self._box.put(frame, self._stop)
                    continue
                cap.release()
                cap = None
                self._base += reader.position
                if self._stop.is_set():
                    return
                if not self.spec.live:
                    log.info(
                        "end of file after %d frames (%d undecodable skipped): %s",
                        self.frames_read,
                        self.undecodable,
                        self.spec.name,
                    )
                    return
                reopened = self._reconnect()
                if reopened is None:
                    return
                cap, reader = reopened
        finally:
            if cap is not None:
                cap.release()
            self._box.close()

    def _reconnect(self) -> tuple[cv2.VideoCapture, FrameReader] | None:
        """Reopen a live source with exponential backoff; None when stopped or out of attempts."""
        self.reconnecting = True
        try:
            return self._reconnect_loop()
        finally:
            self.reconnecting = False

    def _reconnect_loop(self) -> tuple[cv2.VideoCapture, FrameReader] | None:
        delay = self._backoff[0]
        attempt = 0
        log.warning("source lost: %s; reconnecting", self.spec.name)
        while not self._stop.is_set():
            if self._max_reconnects is not None and attempt >= self._max_reconnects:
                self.error = SourceError(
                    f"giving up on {self.spec.name} after {attempt} reconnect attempts"
                )
                log.error("%s", self.error)
                return None
            attempt += 1
            log.warning("reconnect attempt %d in %.2f s: %s", attempt, delay, self.spec.name)
            if self._stop.wait(delay):
                return None
            try:
                cap = self._open()
            except SourceError as exc:
                log.warning("reconnect attempt %d failed: %s", attempt, exc)
                delay = min(delay * 2.0, self._backoff[1])
                continue
            # Connected is not enough: a server that sends only undecodable data would otherwise
            # reconnect forever, each attempt a "success", and never reach max_reconnects.
            reader = self._reader_for(cap)
            first = reader.next(cancelled=self._stop.is_set)
            if first is None:
                cap.release()
                if self._stop.is_set():
                    return None
                log.warning(
                    "reconnect attempt %d failed: connected, but no frame decoded: %s",
                    attempt,
                    self.spec.name,
                )
                delay = min(delay * 2.0, self._backoff[1])
                continue
            self._first = first
            self.reconnects += 1
            log.warning("reconnected after %d attempt(s): %s", attempt, self.spec.name)
            return cap, reader
        return None
