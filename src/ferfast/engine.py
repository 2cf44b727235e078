"""The ferfast Engine: frame -> detect -> preprocess -> run -> Faces."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ferfast._types import PathLike
from ferfast.contract import SIDE
from ferfast.detect import Detector, check_frame
from ferfast.detectors import DETECTOR_NAMES, make_detector
from ferfast.faces import Face, Faces, as_faces
from ferfast.framing import FRAMING, Framing
from ferfast.preprocess import preprocess
from ferfast.runner import Runner, frame_runner
from ferfast.runtime import make_runner


def _check_faces(faces: object) -> npt.NDArray[np.uint8]:
    """uint8 (N, 48, 48) or (48, 48) -> (N, 48, 48)."""
    if not isinstance(faces, np.ndarray):
        raise TypeError(f"faces must be a numpy.ndarray, got {type(faces).__name__}")
    if faces.dtype != np.uint8:
        raise TypeError(f"faces must be uint8 gray crops, got {faces.dtype}")
    crops: npt.NDArray[np.uint8] = faces[None] if faces.ndim == 2 else faces
    if crops.ndim != 3 or crops.shape[1:] != (SIDE, SIDE):
        raise ValueError(
            f"faces must have shape (N, {SIDE}, {SIDE}) or ({SIDE}, {SIDE}), got {faces.shape}"
        )
    return crops


def _as_boxes(boxes: Any) -> np.ndarray:
    """Caller boxes -> float64 (N, 4) array; values are checked by the preprocess kernel."""
    try:
        arr = np.asarray(boxes, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"boxes must be numeric (N, 4) x, y, w, h: {exc}") from None
    if arr.size == 0:
        return np.empty((0, 4), dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4) (x, y, w, h), got {arr.shape}")
    return arr


def _as_scores(scores: Any, n: int) -> np.ndarray:
    """Caller scores -> (n,) finite float64."""
    try:
        arr = np.asarray(scores, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"scores must be numeric (N,): {exc}") from None
    if arr.shape != (n,):
        raise ValueError(f"scores must have one value per box ({n}), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("scores must be finite")
    return arr


def _is_face_list(boxes: Any) -> bool:
    """True for a non-empty list/tuple of :class:`Face` views."""
    if not isinstance(boxes, (list, tuple)) or not boxes:
        return False
    return all(isinstance(b, Face) for b in boxes)


def _as_landmarks(landmarks: Any) -> np.ndarray:
    """Caller landmarks -> a new float32 array (shape and values checked by the kernel)."""
    try:
        return np.array(landmarks, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"landmarks must be numeric (N, 5, 2): {exc}") from None


class Engine:
    """Facial-emotion recognition engine.

    ``model``: a bundled model, "fast" or "accurate" (INT8), "fast-fp32" or "accurate-fp32"
    ("int8" and "fp32" are aliases of the fast pair; ``ferfast.list_models()``), or a path to an
    .onnx or .engine file. ``backend``:
    "auto" (an .engine file: the native TensorRT runtime; an .onnx model: ONNX Runtime's CUDA
    provider when onnxruntime-gpu has it and an NVIDIA GPU is present, else the CPU), "cpu"
    (ONNX Runtime on the CPU; "onnxruntime" is an alias), "cuda" (ONNX Runtime's CUDA provider:
    ``pip install "ferfast[gpu]"``) or "tensorrt" (an .engine file, or an .onnx model on ONNX
    Runtime's TensorRT provider). A backend that cannot run here raises
    ``ferfast.runner.BackendUnavailableError`` naming the missing package or GPU. With a
    TensorRT engine and the extension's CUDA kernel, ``predict`` crops the faces on the GPU.
    ``detector``: "auto" (YuNet: ``detector_model``, else $FERFAST_YUNET, else the pinned
    release fetched once into the cache, ``ferfast.assets``; when that fetch fails, one warning
    and the Haar cascade), "yunet" (the same models; a failed fetch is an error), "haar", a
    detector object with ``detect(frame)``, or None (boxes are always given to ``predict``).
    ``detector_size``: the longer side of the frame the detector sees. ``score_threshold``:
    YuNet's minimum face score. ``threads``: ONNX Runtime intra-op threads (default
    min(2, CPUs)).

    Thread safety: one Engine may be shared between threads. Each thread gets its own model
    input buffer (preprocess writes into it, the model reads it in place), the detector is
    called under a lock, and the runner is re-entrant (ONNX Runtime sessions run concurrently;
    IO bindings are per thread). Results never share memory with another call's results.
    """

    def __init__(
        self,
        model: PathLike = "fast",
        backend: str = "auto",
        detector: Detector | str | None = "auto",
        detector_model: PathLike | None = None,
        detector_size: int = 320,
        score_threshold: float = 0.6,
        threads: int | None = None,
    ) -> None:
        self.runner: Runner = make_runner(model, backend=backend, threads=threads)
        # Set when the runner preprocesses on the GPU: predict then hands it the frame once.
        self._frame_runner = frame_runner(self.runner)
        self.emotions: tuple[str, ...] = tuple(self.runner.emotions)
        self.input_scale = float(self.runner.input_scale)
        self.input_bias = float(self.runner.input_bias)
        self.detector: Detector | None
        names = ", ".join(repr(n) for n in DETECTOR_NAMES)
        if detector is None or isinstance(detector, str):
            self.detector = make_detector(
                detector,
                model_path=detector_model,
                input_size=detector_size,
                score_threshold=score_threshold,
                # Beside a model on the GPU, the detector runs there too.
                provider="cuda" if getattr(self.runner, "provider", "cpu") != "cpu" else "cpu",
            )
        elif callable(getattr(detector, "detect", None)):
            if not isinstance(getattr(detector, "framing", None), Framing):
                raise TypeError(
                    "a detector object needs a framing attribute (a ferfast.framing.Framing: "
                    "how its boxes are cropped, e.g. FRAMING_YUNET or FRAMING_HAAR)"
                )
            self.detector = detector
        else:
            raise TypeError(f"detector must be {names}, None or an object with detect(frame)")
        self._local = threading.local()
        # Crop geometry per detector (framing.py), input normalisation from the model metadata.
        base = FRAMING if self.detector is None else self.detector.framing
        self.framing: Framing = base.with_input(self.input_scale, self.input_bias)

    def _input(self, n: int) -> np.ndarray:
        """This thread's model input buffer, the leading ``n`` rows (grown on demand)."""
        buf = getattr(self._local, "buf", None)
        if buf is None or len(buf) < n:
            buf = self.runner.new_input_buffer(max(n, 8, 0 if buf is None else 2 * len(buf)))
            self._local.buf = buf
        return buf[:n]

    def classify(self, faces: np.ndarray) -> np.ndarray:
        """Probabilities (N, K) float32 for uint8 gray 48x48 crops (N, 48, 48) or (48, 48).

        The crops are normalised as ``gray * input_scale + input_bias`` (from the model's
        metadata) straight into the model input buffer.
        """
        faces = _check_faces(faces)
        n = len(faces)
        if n == 0:
            return np.empty((0, len(self.emotions)), dtype=np.float32)
        batch = self._input(n)
        dst = batch[:, 0]
        np.multiply(faces, np.float32(self.input_scale), out=dst, casting="unsafe")
        if self.input_bias != 0.0:
            np.add(dst, np.float32(self.input_bias), out=dst)
        return self.runner.run(batch)

    def detect(self, frame: np.ndarray) -> Faces:
        """Faces found by the detector in ``frame`` (uint8 gray/BGR/BGRA): boxes, scores and
        (YuNet) landmarks, not yet classified."""
        frame = check_frame(frame)
        if self.detector is None:
            raise ValueError("this Engine has no detector (detector=None): pass boxes to predict")
        # A custom detector may give a list of Face views.
        return as_faces(self.detector.detect(frame))

    def predict(
        self,
        frame: np.ndarray,
        boxes: npt.ArrayLike | Faces | Sequence[Face] | None = None,
        landmarks: npt.ArrayLike | None = None,
        framing: Framing | None = None,
        scores: npt.ArrayLike | None = None,
        *,
        crops: bool = False,
    ) -> Faces:
        """Detect faces (unless ``boxes`` are given), preprocess them, classify them.

        ``frame``: uint8 (H, W) gray, (H, W, 3) BGR or (H, W, 4) BGRA, any strides.
        ``boxes``: optional :class:`Faces` (e.g. from ``detect`` or a tracker: their boxes,
        scores and landmarks are used), a list of :class:`Face`, or (N, 4) x, y, w, h in frame
        pixels. ``landmarks``: optional (N, 5, 2) YuNet landmarks for given boxes (eye
        alignment). ``framing``: crop geometry for given boxes (default: that of this engine's
        detector). ``scores``: optional (N,) detector scores for given boxes (default 1.0).
        Results follow the detector's order (YuNet: best score first; Haar: largest first), or
        the order of the given boxes. ``crops``: also hand back each face's model input in
        ``Faces.crops`` (a copy of what the model saw; no second preprocess).
        """
        located = self._locate(frame, boxes, landmarks, framing, scores)
        return self._classify([(frame, *located)], crops)[0]

    def predict_batch(
        self,
        frames: Sequence[np.ndarray],
        boxes: Sequence[npt.ArrayLike | Faces | Sequence[Face]] | None = None,
        *,
        crops: bool = False,
    ) -> list[Faces]:
        """Detect faces in each frame and classify the faces of all frames in one model run.

        Same results as ``[predict(f, crops=crops) for f in frames]``, with one model call
        instead of one per frame (batches run faster per face). ``boxes``: optional, one entry
        per frame, each what ``predict`` takes as ``boxes`` (empty for none): the detector is
        skipped. Returns the :class:`Faces` of each frame, in order.
        """
        if isinstance(frames, np.ndarray):
            raise TypeError("frames must be a sequence of frames; use predict() for one frame")
        if boxes is None:
            return self._classify([(f, *self._locate(f)) for f in frames], crops)
        if len(boxes) != len(frames):
            raise ValueError(
                f"boxes must have one entry per frame ({len(frames)}), got {len(boxes)}"
            )
        located = [(f, *self._locate(f, b)) for f, b in zip(frames, boxes, strict=True)]
        return self._classify(located, crops)

    def _locate(
        self,
        frame: np.ndarray,
        boxes: Any = None,
        landmarks: Any = None,
        framing: Framing | None = None,
        scores: Any = None,
    ) -> tuple[Faces, Framing]:
        """Where the faces of ``frame`` are (detected, or the caller's boxes, validated) and the
        crop geometry for them."""
        if boxes is None:
            if landmarks is not None or framing is not None or scores is not None:
                raise ValueError(
                    "landmarks, framing and scores are only accepted together with boxes"
                )
            return self.detect(frame), self.framing
        check_frame(frame)
        if framing is None:
            geometry = self.framing
        elif isinstance(framing, Framing):
            geometry = framing.with_input(self.input_scale, self.input_bias)
        else:
            raise TypeError(f"framing must be a Framing, got {type(framing).__name__}")
        if isinstance(boxes, Faces) or _is_face_list(boxes):
            if landmarks is not None or scores is not None:
                raise ValueError("Faces carry their own landmarks and scores: pass neither")
            given = as_faces(boxes)
            if given.probs is not None or given.crops is not None or given.track_ids is not None:
                given = Faces(given.boxes, given.scores, given.landmarks)  # where, not what
            return given, geometry
        box_arr = _as_boxes(boxes)
        n = len(box_arr)
        return Faces(
            box_arr,
            np.ones(n) if scores is None else _as_scores(scores, n),
            None if landmarks is None else _as_landmarks(landmarks),
        ), geometry

    def _classify(
        self, located: list[tuple[np.ndarray, Faces, Framing]], crops: bool = False
    ) -> list[Faces]:
        """Classify every located face (one model run, or one native call per frame), split."""
        total = sum(len(faces) for _, faces, _ in located)
        if total == 0:
            return [faces.replace(emotions=self.emotions) for _, faces, _ in located]
        kept: np.ndarray | None = None
        if self._frame_runner is not None and not crops:
            # The runner crops on the GPU straight into its input: one native call per frame.
            probs = np.concatenate(
                [
                    self._frame_runner.run_frame(frame, faces.boxes, faces.landmarks, framing)
                    for frame, faces, framing in located
                    if len(faces)
                ]
            )
        else:
            batch = self._input(total)
            start = 0
            for frame, faces, framing in located:
                n = len(faces)
                if n:
                    # The kernel validates boxes and landmarks (finite, sizes, shapes) at its
                    # boundary.
                    preprocess(
                        frame,
                        faces.boxes,
                        out=batch[start : start + n],
                        landmarks=faces.landmarks,
                        framing=framing,
                    )
                start += n
            # A copy: the input buffer is this thread's and the next call overwrites it.
            kept = batch[:, 0].copy() if crops else None
            probs = self.runner.run(batch)
        out: list[Faces] = []
        start = 0
        for _, faces, _ in located:
            n = len(faces)
            out.append(
                faces.replace(
                    probs=probs[start : start + n],
                    crops=None if kept is None else kept[start : start + n],
                    emotions=self.emotions,
                )
            )
            start += n
        return out

    def __repr__(self) -> str:
        return f"Engine(runner={self.runner!r}, detector={self.detector!r})"
