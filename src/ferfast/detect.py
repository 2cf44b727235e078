"""Face detectors: YuNet at a reduced input size, and the Haar fallback.

YuNet runs on ONNX Runtime by default (the same network and decoding as OpenCV's
``cv2.FaceDetectorYN``, about twice as fast on a CPU core), or on OpenCV's DNN module. Both
detectors run on a copy of the frame resized so that its longer side is ``input_size`` and map
boxes (and YuNet's five landmarks) back to frame pixels. Each detector carries the ``framing``
that preprocess must use for its boxes (YuNet and Haar boxes frame a face differently).
Detectors serialise their own calls with a lock, so one instance may be shared between threads.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from ferfast._types import PathLike
from ferfast.faces import Faces
from ferfast.framing import FRAMING_HAAR, FRAMING_YUNET, Framing

HAAR_CASCADE = "haarcascade_frontalface_default.xml"


class Detector(Protocol):
    """Finds faces in a uint8 gray/BGR/BGRA frame."""

    framing: Framing  # how preprocess frames this detector's boxes

    def detect(self, frame: np.ndarray) -> Faces: ...


def check_frame(frame: Any) -> np.ndarray:
    """Validate a frame: uint8 ndarray (H, W), (H, W, 3) BGR or (H, W, 4) BGRA, non-empty."""
    if not isinstance(frame, np.ndarray):
        raise TypeError(f"frame must be a numpy.ndarray, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise TypeError(f"frame must be uint8, got {frame.dtype}")
    if frame.ndim not in (2, 3):
        raise ValueError(f"frame must be (H, W), (H, W, 3) or (H, W, 4), got shape {frame.shape}")
    if frame.ndim == 3 and frame.shape[2] not in (3, 4):
        raise ValueError(f"frame must have 3 (BGR) or 4 (BGRA) channels, got {frame.shape[2]}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"frame is empty: shape {frame.shape}")
    return frame


def _resize_longer(frame: np.ndarray, input_size: int) -> tuple[np.ndarray, float, float]:
    """Resize so the longer side is ``input_size``; return (image, sx, sy) with frame = image*s."""
    h, w = frame.shape[:2]
    scale = input_size / max(h, w)
    sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
    if (sw, sh) == (w, h):
        small = frame
    else:
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        small = cv2.resize(frame, (sw, sh), interpolation=interp)
    return small, w / sw, h / sh


def _check_size(input_size: Any) -> int:
    if not isinstance(input_size, (int, np.integer)) or isinstance(input_size, bool):
        raise TypeError(f"input_size must be an int, got {type(input_size).__name__}")
    if input_size < 32:
        raise ValueError(f"input_size must be >= 32, got {input_size}")
    return int(input_size)


#: YuNet's output heads: scores (cls, obj), boxes and landmarks for each anchor stride.
YUNET_STRIDES = (8, 16, 32)
_YUNET_OUTPUTS = [f"{head}_{s}" for head in ("cls", "obj", "bbox", "kps") for s in YUNET_STRIDES]
_YUNET_DIVISOR = 32  # the network's input sides must be multiples of this (padded)
YUNET_BACKENDS = ("onnxruntime", "opencv")


class _OrtYuNet:
    """YuNet on ONNX Runtime, with ``cv2.FaceDetectorYN``'s pre- and post-processing.

    The image (BGR, exactly the size set by :meth:`setInputSize`) is zero-padded at the right
    and bottom to multiples of 32 and fed as float BGR, unscaled. Each stride's anchor grid
    decodes to boxes ``((col + dx) * s, (row + dy) * s, exp(dw) * s, exp(dh) * s)`` (centre
    to corner) and five landmarks ``((col + kx) * s, (row + ky) * s)``, with score
    ``sqrt(clamp(cls) * clamp(obj))``; anchors below ``score_threshold`` are dropped, and
    ``cv2.dnn.NMSBoxes`` on the integer-truncated boxes removes overlaps, as FaceDetectorYN
    does. :meth:`detect` returns FaceDetectorYN's result: ``(1, faces)``, faces a float32
    (N, 15) array (x, y, w, h, 5 landmark x/y pairs, score) or None when none is found.

    One intra-op thread that sleeps between runs (no spinning): the detector shares its cores
    with decoding and classification, and a batch-1 network this small gains little from more.
    """

    def __init__(
        self,
        model_path: Path,
        size: tuple[int, int],
        score_threshold: float,
        nms_threshold: float,
        top_k: int,
        threads: int = 1,
        provider: str = "cpu",
    ) -> None:
        from ferfast.ort import make_session

        self._session = make_session(model_path, provider=provider, threads=threads, spin=False)
        inputs = self._session.get_inputs()
        names = {o.name for o in self._session.get_outputs()}
        missing = [n for n in _YUNET_OUTPUTS if n not in names]
        if len(inputs) != 1 or missing:
            raise ValueError(f"not a YuNet model: outputs {sorted(names)}")
        self._input = inputs[0].name
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.top_k = top_k
        self.setInputSize(size)

    def setInputSize(self, size: tuple[int, int]) -> None:  # noqa: N802 - FaceDetectorYN's name
        """Set the image size (width, height) that :meth:`detect` takes."""
        width, height = size
        pad_w = -(-width // _YUNET_DIVISOR) * _YUNET_DIVISOR
        pad_h = -(-height // _YUNET_DIVISOR) * _YUNET_DIVISOR
        self._size = (width, height)
        # The padding stays zero: detect writes the image into the top-left corner only.
        self._blob = np.zeros((1, 3, pad_h, pad_w), np.float32)
        self._grids = []
        for stride in YUNET_STRIDES:
            cols, rows = pad_w // stride, pad_h // stride
            col, row = np.meshgrid(
                np.arange(cols, dtype=np.float32), np.arange(rows, dtype=np.float32)
            )
            self._grids.append((col.reshape(-1), row.reshape(-1)))

    def detect(self, image: np.ndarray) -> tuple[int, np.ndarray | None]:
        """Faces in ``image`` (uint8 BGR of the set size): ``(1, faces or None)``."""
        height, width = image.shape[:2]
        if (width, height) != self._size:
            raise ValueError(f"image is {width}x{height}, the input size is {self._size}")
        # Plane by plane (cv2.split, then a uint8 -> float32 copy each): half the time of one
        # strided transposing copy.
        for channel, plane in enumerate(cv2.split(image)):
            self._blob[0, channel, :height, :width] = plane
        heads = self._session.run(_YUNET_OUTPUTS, {self._input: self._blob})
        n = len(YUNET_STRIDES)
        found = []
        for i, stride in enumerate(YUNET_STRIDES):
            cls, obj, bbox, kps = (heads[i + k * n][0] for k in range(4))
            score = np.sqrt(np.clip(cls[:, 0], 0.0, 1.0) * np.clip(obj[:, 0], 0.0, 1.0))
            keep = np.flatnonzero(score >= self.score_threshold)
            if keep.size == 0:
                continue
            col, row = (g[keep] for g in self._grids[i])
            s = np.float32(stride)
            box, marks = bbox[keep], kps[keep]
            w = np.exp(box[:, 2]) * s
            h = np.exp(box[:, 3]) * s
            face = np.empty((keep.size, 15), np.float32)
            face[:, 0] = (col + box[:, 0]) * s - w / np.float32(2.0)
            face[:, 1] = (row + box[:, 1]) * s - h / np.float32(2.0)
            face[:, 2] = w
            face[:, 3] = h
            face[:, 4:14:2] = (marks[:, 0::2] + col[:, None]) * s
            face[:, 5:14:2] = (marks[:, 1::2] + row[:, None]) * s
            face[:, 14] = score[keep]
            found.append(face)
        if not found:
            return 1, None
        faces = np.concatenate(found)
        if len(faces) > 1:
            rects = np.trunc(faces[:, :4]).astype(np.float64).tolist()
            keep_idx = cv2.dnn.NMSBoxes(
                rects,
                faces[:, 14].tolist(),
                self.score_threshold,
                self.nms_threshold,
                1.0,
                self.top_k,
            )
            faces = faces[np.asarray(keep_idx, dtype=np.int64).reshape(-1)]
        return 1, faces


class YuNetDetector:
    """YuNet face detector run on a frame scaled to ``input_size``.

    ``backend``: "onnxruntime" (default: :class:`_OrtYuNet`, one thread, on ONNX Runtime's
    ``provider``: "cpu", or "cuda" beside an Engine on the GPU) or "opencv"
    (``cv2.FaceDetectorYN``, OpenCV's DNN module). Both decode the network's output the same
    way; their convolutions round differently, so boxes agree to about 1e-3 pixels.
    """

    def __init__(
        self,
        model_path: PathLike,
        input_size: int = 320,
        score_threshold: float = 0.6,
        nms_threshold: float = 0.3,
        top_k: int = 5000,
        backend: str = "onnxruntime",
        provider: str = "cpu",
    ) -> None:
        self.model_path = Path(model_path)
        self.input_size = _check_size(input_size)
        for name, value in (("score_threshold", score_threshold), ("nms_threshold", nms_threshold)):
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if backend not in YUNET_BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(YUNET_BACKENDS)}, got {backend!r}")
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.backend = backend
        if not self.model_path.is_file():
            raise FileNotFoundError(f"YuNet model not found: {self.model_path}")
        size = (self.input_size, self.input_size)
        self._net: Any
        try:
            if backend == "onnxruntime":
                self._net = _OrtYuNet(
                    self.model_path,
                    size,
                    self.score_threshold,
                    self.nms_threshold,
                    top_k,
                    provider=provider,
                )
            else:
                self._net = cv2.FaceDetectorYN.create(
                    str(self.model_path), "", size, self.score_threshold, self.nms_threshold, top_k
                )
            self._net.detect(np.zeros((size[1], size[0], 3), np.uint8))  # fails on a non-YuNet
        except Exception as exc:  # cv2.error, ValueError, ONNX Runtime's own exception types
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ValueError(
                f"cannot load YuNet face detector from {self.model_path} "
                f"(corrupt or not a YuNet ONNX model): {first}"
            ) from exc
        self._size = size
        self._lock = threading.Lock()
        self.framing: Framing = FRAMING_YUNET

    def detect(self, frame: np.ndarray) -> Faces:
        """Faces in ``frame`` (best score first), boxes and landmarks in frame pixels."""
        small, sx, sy = _resize_longer(check_frame(frame), self.input_size)
        if small.ndim == 2:
            small = cv2.cvtColor(small, cv2.COLOR_GRAY2BGR)
        elif small.shape[2] == 4:
            small = cv2.cvtColor(small, cv2.COLOR_BGRA2BGR)
        size = (small.shape[1], small.shape[0])
        with self._lock:
            if size != self._size:
                self._net.setInputSize(size)
                self._size = size
            _, faces = self._net.detect(small)
        if faces is None:
            return Faces.empty()
        rows = np.asarray(faces, dtype=np.float64).reshape(-1, 15)
        rows = rows[np.argsort(-rows[:, 14], kind="stable")]
        scale = np.array([sx, sy], np.float64)
        return Faces(
            boxes=rows[:, :4] * np.tile(scale, 2),
            scores=rows[:, 14],
            landmarks=(rows[:, 4:14].reshape(-1, 5, 2) * scale).astype(np.float32),
        )

    def __repr__(self) -> str:
        return (
            f"YuNetDetector({str(self.model_path)!r}, input_size={self.input_size}, "
            f"backend={self.backend!r})"
        )


class HaarDetector:
    """OpenCV's frontal-face Haar cascade (ships with opencv-python: zero download).

    Runs on the frame scaled so its longer side is ``input_size`` (None: full resolution).
    Haar gives no landmarks and no calibrated score: ``score`` is 1.0.
    """

    def __init__(
        self,
        input_size: int | None = 320,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_size: int = 24,
        cascade_path: PathLike | None = None,
    ) -> None:
        self.input_size = None if input_size is None else _check_size(input_size)
        if cascade_path is None:
            data = getattr(getattr(cv2, "data", None), "haarcascades", None)
            if data is None:
                raise RuntimeError("this OpenCV build ships no Haar cascades (cv2.data missing)")
            cascade_path = Path(data) / HAAR_CASCADE
        self.cascade_path = Path(cascade_path)
        if not self.cascade_path.is_file():
            raise FileNotFoundError(f"Haar cascade not found: {self.cascade_path}")
        self._cascade = cv2.CascadeClassifier(str(self.cascade_path))
        if self._cascade.empty():
            raise ValueError(f"cannot load Haar cascade from {self.cascade_path}")
        self.scale_factor = float(scale_factor)
        self.min_neighbors = int(min_neighbors)
        self.min_size = int(min_size)
        self._lock = threading.Lock()
        self.framing: Framing = FRAMING_HAAR

    def detect(self, frame: np.ndarray) -> Faces:
        """Faces in ``frame`` (largest first), boxes in frame pixels, score 1.0."""
        frame = check_frame(frame)
        if self.input_size is None:
            small, sx, sy = frame, 1.0, 1.0
        else:
            small, sx, sy = _resize_longer(frame, self.input_size)
        if small.ndim == 3:
            code = cv2.COLOR_BGR2GRAY if small.shape[2] == 3 else cv2.COLOR_BGRA2GRAY
            small = cv2.cvtColor(small, code)
        with self._lock:
            rects = self._cascade.detectMultiScale(
                small,
                scaleFactor=self.scale_factor,
                minNeighbors=self.min_neighbors,
                minSize=(self.min_size, self.min_size),
            )
        boxes = np.asarray(rects, dtype=np.float64).reshape(-1, 4)
        boxes = boxes[np.argsort(-boxes[:, 2] * boxes[:, 3], kind="stable")]
        return Faces(boxes * (sx, sy, sx, sy), np.ones(len(boxes)))

    def __repr__(self) -> str:
        return f"HaarDetector(input_size={self.input_size})"
