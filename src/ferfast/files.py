"""Emotions for image files, folders and recorded videos: paths -> per-frame typed results.

``predict_files`` is the Python side of ``ferfast predict``: it expands folders (recursively, by
extension), reads images and video frames, classifies the faces of several frames in one model
run (``Engine.predict_batch``) and yields one :class:`FramePrediction` per image or video frame,
in input order. A file that cannot be read yields one prediction with ``error`` set; it never
stops the run.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from ferfast._types import PathLike
from ferfast.engine import Engine
from ferfast.faces import Faces
from ferfast.video import FrameReader

__all__ = [
    "ANNOTATED_MARK",
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "FramePrediction",
    "InputFile",
    "annotated_name",
    "collect_inputs",
    "is_annotated",
    "predict_files",
]

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"})
# Marks the copies that ``ferfast predict --annotate`` writes: they cannot take an input's name,
# and a folder scan passes over them, so annotating into the input folder is safe to repeat.
ANNOTATED_MARK = ".ferfast"

# Frames held at once before their faces are classified together: enough faces for a fast batch,
# bounded in memory for large photos.
_BATCH_FRAMES = 16
_BATCH_PIXELS = 48_000_000


@dataclass(frozen=True)
class InputFile:
    """One input: the file, how to read it, and the folder it was found in (for output names)."""

    path: Path
    kind: str  # "image", "video", or "unknown" (a file named directly: tried as both)
    root: Path | None = None  # the folder argument it came from, None for a file argument
    # The frame positions of a video to read, start <= i < stop (None: to the end); a share of a
    # long video that one worker reads (ferfast.ray). The whole video by default.
    start: int = 0
    stop: int | None = None

    @property
    def relative(self) -> Path:
        """The path below its folder argument (its name for a file argument)."""
        return self.path.relative_to(self.root) if self.root is not None else Path(self.path.name)


@dataclass(frozen=True)
class FramePrediction:
    """The faces of one image or video frame, or why the file could not be read."""

    source: str  # the file's path as found
    frame: int  # 0 for an image; the frame's position (from 0) in a video
    faces: Faces = field(default_factory=Faces.empty)
    error: str | None = None  # set when the file could not be read
    image: np.ndarray | None = field(default=None, repr=False)  # BGR, with keep_images=True
    # The input it came from, its kind as decoded ("image" or "video"); None for a missing path.
    input: InputFile | None = field(default=None, repr=False)
    # Video frames that could not be decoded and were skipped since the previous prediction of
    # this video (a damaged stretch of the file): the gap in ``frame`` they leave.
    undecodable: int = 0
    size: tuple[int, int] | None = None  # (width, height) of the image or frame, when decoded


def annotated_name(name: str) -> str:
    """The file name of an annotated copy of image ``name`` (``photo.jpg`` ->
    ``photo.ferfast.jpg``); a suffix OpenCV cannot write becomes ``<name>.ferfast.png``."""
    stem, suffix = os.path.splitext(name)
    if suffix.lower() not in IMAGE_EXTENSIONS:
        return f"{name}{ANNOTATED_MARK}.png"
    return f"{stem}{ANNOTATED_MARK}{suffix}"


def is_annotated(path: Path) -> bool:
    """Whether ``path`` is named as an annotated copy (such files in a folder are not inputs)."""
    return Path(path.stem).suffix == ANNOTATED_MARK


def _kind(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        return "image"
    if suffix in VIDEO_EXTENSIONS:
        return "video"
    return None


def collect_inputs(paths: Iterable[PathLike]) -> tuple[list[InputFile], list[FramePrediction]]:
    """Expand ``paths`` into input files; also return an error entry for each unusable path.

    Folders are searched recursively for image and video extensions (sorted, hidden entries
    skipped). A file named directly is read whatever its extension (an unknown one is tried as
    an image first, then as a video).
    """
    inputs: list[InputFile] = []
    errors: list[FramePrediction] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and _kind(p) is not None
                and not is_annotated(p)
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not found:
                errors.append(
                    FramePrediction(str(path), 0, error="folder holds no image or video files")
                )
            inputs.extend(InputFile(p, _kind(p) or "image", root=path) for p in found)
        elif path.is_file():
            inputs.append(InputFile(path, _kind(path) or "unknown"))
        else:
            errors.append(FramePrediction(str(path), 0, error="no such file or folder"))
    return inputs, errors


def _read_image(path: Path) -> np.ndarray | None:
    """BGR image, or None when the file is not a readable image (any path encoding)."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None
    if data.size == 0:
        return None
    return cv2.imdecode(data, cv2.IMREAD_COLOR)


def frame_count(item: InputFile, every: int = 1) -> int:
    """Frames that ``predict_files`` reads from ``item`` (1 for an image; 0 if unknown)."""
    if item.kind == "image":
        return 1
    cap = cv2.VideoCapture(str(item.path))
    try:
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
    finally:
        cap.release()
    n = max(0, min(n, item.stop if item.stop is not None else n))
    return max(0, -(-n // every) - -(-item.start // every))


@dataclass(frozen=True)
class _Frame:
    """A frame of an input to process, or why the input could not be read."""

    input: InputFile  # as decoded
    index: int
    image: np.ndarray | None
    error: str | None
    undecodable: int = 0  # video frames skipped just before this one


def _frames(item: InputFile, every: int) -> Iterator[_Frame]:
    """Each frame of ``item`` to process (every ``every``-th video frame, by position, within
    ``item.start`` and ``item.stop``)."""
    if item.kind in ("image", "unknown"):
        image = _read_image(item.path)
        if image is not None:
            yield _Frame(replace(item, kind="image"), 0, image, None)
            return
        if item.kind == "image":
            yield _Frame(item, 0, None, "not a readable image")
            return
    video = replace(item, kind="video")
    cap = cv2.VideoCapture(str(item.path))
    try:
        if not cap.isOpened():
            yield _Frame(item, 0, None, "not a readable image or video")
            return
        reader = FrameReader(cap)
        read_any = False
        reported = 0  # undecodable frames already attached to a yielded frame
        start, stop = item.start, item.stop

        # Frames before ``start`` are only grabbed: positions count the same as in a whole read.
        def wanted(i: int) -> bool:
            return i >= start and i % every == 0

        while (got := reader.next(decode=wanted)) is not None:
            if stop is not None and got.index >= stop:
                break
            read_any = True
            if got.index < start:
                reported = reader.skipped  # a gap before the range is not this share's
            elif got.image is not None:
                yield _Frame(video, got.index, got.image, None, reader.skipped - reported)
                reported = reader.skipped
        # A share that starts past the end (frame counts are estimates) is empty, not an error.
        if not read_any and start == 0:
            yield _Frame(item, 0, None, "no frame could be decoded")
    finally:
        cap.release()


def predict_files(
    paths: PathLike | Sequence[PathLike | InputFile],
    engine: Engine | None = None,
    *,
    every: int = 1,
    progress: bool = False,
    keep_images: bool = False,
) -> Iterator[FramePrediction]:
    """Emotions for the faces in image files, folders of them, and video files.

    Args:
        paths: a file or folder, or a list of them (folders are searched recursively), or the
            :class:`InputFile` list of :func:`collect_inputs` (used as it is).
        engine: the :class:`ferfast.Engine` to use (default: ``Engine()``, made on first need).
        every: in videos, process every ``every``-th frame (1: all frames).
        progress: show a progress bar (tqdm, on stderr) over the frames to read.
        keep_images: attach each BGR image or frame to its prediction (``image``), e.g. to draw
            on it; off by default so that long videos do not pile up in memory.

    Yields:
        First one :class:`FramePrediction` with ``error`` set per path that does not exist (or
        an empty folder), then one per image or processed video frame in input order (the
        folder walk is sorted), with ``error`` set for a file that cannot be read. A video's
        frames that do not decode are skipped (:class:`ferfast.video.FrameReader`): ``frame``
        is the position in the video, and ``undecodable`` counts the frames skipped before it.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if isinstance(every, bool) or not isinstance(every, int):
        raise TypeError(f"every must be an int, got {type(every).__name__}")
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    inputs: list[InputFile] = []
    for item in paths:
        if isinstance(item, InputFile):
            inputs.append(item)
        else:
            found, errors = collect_inputs([item])
            inputs.extend(found)
            yield from errors
    if not inputs:
        return
    engine = engine if engine is not None else Engine()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        total = sum(frame_count(item, every) for item in inputs)
        bar = tqdm(total=total or None, unit="frame", desc="ferfast predict", leave=False)
    pending: list[_Frame] = []
    pixels = 0

    def flush() -> Iterator[FramePrediction]:
        nonlocal pixels
        frames = [f.image for f in pending if f.image is not None]
        for f, frame, faces in zip(pending, frames, engine.predict_batch(frames), strict=True):
            image = frame if keep_images else None
            size = (frame.shape[1], frame.shape[0])
            yield FramePrediction(
                str(f.input.path),
                f.index,
                faces,
                image=image,
                input=f.input,
                size=size,
                undecodable=f.undecodable,
            )
        pending.clear()
        pixels = 0

    try:
        for item in inputs:
            for got in _frames(item, every):
                if bar is not None:
                    bar.update(1)
                if got.image is None:
                    yield from flush()
                    yield FramePrediction(str(item.path), got.index, error=got.error, input=item)
                    continue
                pending.append(got)
                pixels += got.image.shape[0] * got.image.shape[1]
                if len(pending) >= _BATCH_FRAMES or pixels >= _BATCH_PIXELS:
                    yield from flush()
        yield from flush()
    finally:
        if bar is not None:
            bar.close()
