"""Face detectors: YuNet (cv2.FaceDetectorYN) at a reduced input size, and the Haar fallback.

Both run on a copy of the frame resized so that its longer side is ``input_size`` and map boxes
(and YuNet's five landmarks) back to frame pixels. Each detector carries the ``framing`` that
preprocess must use for its boxes (YuNet and Haar boxes frame a face differently). Detectors
serialise their own calls with a lock, so one instance may be shared between threads.
"""

from __future__ import annotations

import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from ferfast import assets
from ferfast._types import PathLike
from ferfast.framing import FRAMING_HAAR, FRAMING_YUNET, Framing

YUNET_ENV = "FERFAST_YUNET"
HAAR_CASCADE = "haarcascade_frontalface_default.xml"


@dataclass(frozen=True, eq=False)
class Detection:
    """One detected face: box (x, y, w, h) and landmarks (5, 2) in frame pixels."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray | None = None  # float32 (5, 2), YuNet order; None for Haar


class Detector(Protocol):
    """Finds faces in a uint8 gray/BGR/BGRA frame."""

    framing: Framing  # how preprocess frames this detector's boxes

    def detect(self, frame: np.ndarray) -> list[Detection]: ...


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


class YuNetDetector:
    """YuNet face detector (``cv2.FaceDetectorYN``) run on a frame scaled to ``input_size``."""

    def __init__(
        self,
        model_path: PathLike,
        input_size: int = 320,
        score_threshold: float = 0.6,
        nms_threshold: float = 0.3,
        top_k: int = 5000,
    ) -> None:
        self.model_path = Path(model_path)
        self.input_size = _check_size(input_size)
        for name, value in (("score_threshold", score_threshold), ("nms_threshold", nms_threshold)):
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        if not self.model_path.is_file():
            raise FileNotFoundError(f"YuNet model not found: {self.model_path}")
        size = (self.input_size, self.input_size)
        try:
            self._net = cv2.FaceDetectorYN.create(
                str(self.model_path), "", size, self.score_threshold, self.nms_threshold, top_k
            )
            self._net.detect(np.zeros((size[1], size[0], 3), np.uint8))  # fails on a non-YuNet
        except cv2.error as exc:
            raise ValueError(
                f"cannot load YuNet face detector from {self.model_path} "
                f"(corrupt or not a YuNet ONNX model): {str(exc).strip().splitlines()[0]}"
            ) from exc
        self._size = size
        self._lock = threading.Lock()
        self.framing: Framing = FRAMING_YUNET

    def detect(self, frame: np.ndarray) -> list[Detection]:
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
            return []
        faces = np.asarray(faces, dtype=np.float64)
        faces = faces[np.argsort(-faces[:, 14], kind="stable")]
        out = []
        for row in faces:
            x, y, w, h = row[0] * sx, row[1] * sy, row[2] * sx, row[3] * sy
            marks = row[4:14].reshape(5, 2) * (sx, sy)
            out.append(
                Detection(
                    box=(float(x), float(y), float(w), float(h)),
                    score=float(row[14]),
                    landmarks=marks.astype(np.float32),
                )
            )
        return out

    def __repr__(self) -> str:
        return f"YuNetDetector({str(self.model_path)!r}, input_size={self.input_size})"


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

    def detect(self, frame: np.ndarray) -> list[Detection]:
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
        boxes = sorted(([float(v) for v in r] for r in rects), key=lambda r: -r[2] * r[3])
        return [Detection(box=(x * sx, y * sy, w * sx, h * sy), score=1.0) for x, y, w, h in boxes]

    def __repr__(self) -> str:
        return f"HaarDetector(input_size={self.input_size})"


def _yunet_hint() -> str:
    return f"pass detector_model= (--detector-model on the command line) or set {YUNET_ENV}=path"


def make_detector(
    kind: str | None = "auto",
    model_path: PathLike | None = None,
    input_size: int = 320,
    score_threshold: float = 0.6,
    nms_threshold: float = 0.3,
) -> YuNetDetector | HaarDetector | None:
    """Build a detector.

    ``kind``: "auto", "yunet", "haar", or None (no detector: the caller always gives boxes).
    YuNet's model is ``model_path``, else $FERFAST_YUNET, else the pinned YuNet release from the
    cache (``ferfast.assets``: fetched once, verified, used offline afterwards). A given model
    file that is missing or corrupt is an error, never a silent fallback. When the cached model
    cannot be fetched, "yunet" raises RuntimeError (AssetError) and "auto" warns once, naming
    the cause and the fix, and uses the Haar cascade.
    """
    if kind is None or kind == "none":
        return None
    if kind not in ("auto", "yunet", "haar"):
        raise ValueError(f"detector must be 'auto', 'yunet', 'haar' or None, got {kind!r}")
    if kind == "haar":
        return HaarDetector(input_size=input_size)
    if model_path is None:
        model_path = os.environ.get(YUNET_ENV) or None
    if model_path is None:
        try:
            model_path = assets.fetch(assets.YUNET)
        except assets.AssetError as exc:
            if kind == "yunet":
                raise assets.AssetError(f"detector 'yunet': {exc}; or {_yunet_hint()}") from exc
            return _haar_fallback(exc, input_size)
    return YuNetDetector(
        model_path,
        input_size=input_size,
        score_threshold=score_threshold,
        nms_threshold=nms_threshold,
    )


def _haar_fallback(cause: assets.AssetError, input_size: int) -> HaarDetector:
    """The Haar cascade for detector "auto" when YuNet cannot be fetched (one warning)."""
    try:
        detector = HaarDetector(input_size=input_size)
    except (RuntimeError, FileNotFoundError, ValueError) as exc:
        raise RuntimeError(
            f"no face detector available: YuNet cannot be fetched ({cause}; or {_yunet_hint()}) "
            f"and this OpenCV build has no usable Haar cascade ({exc})"
        ) from exc
    warnings.warn(
        f"using the Haar cascade instead of YuNet (less accurate): {cause}; or {_yunet_hint()}",
        UserWarning,
        stacklevel=3,
    )
    return detector
