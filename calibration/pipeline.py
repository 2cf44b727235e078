"""Calibrate -> quantize -> evaluate, shared by ``python -m calibration`` and ``.compare``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .dataset import (
    DEFAULT_PER_CLASS,
    DEFAULT_SEED,
    RECORD_PATH,
    CalibrationSet,
    load_split,
    normalise,
    read_faces,
    stratified_sample,
)
from .evaluate import Scores, score
from .model_info import ModelInfo, read_model_info
from .session import Latency, make_session, measure_latency, run_batches

TRAIN_ROOT = "../shared/data/fer2013/train"
TEST_ROOT = "../shared/data/fer2013/test"
MODELS_DIR = Path("src/ferfast/models")
FP32_MODEL = MODELS_DIR / "ferfast_fp32.onnx"
INT8_MODEL = MODELS_DIR / "ferfast_int8.onnx"


def calibration_set(
    record: str | Path = RECORD_PATH,
    resample: bool = False,
    classes: tuple[str, ...] | None = None,
    per_class: int = DEFAULT_PER_CLASS,
    seed: int = DEFAULT_SEED,
    train_root: str = TRAIN_ROOT,
) -> CalibrationSet:
    """The recorded set (rebuilds the INT8 model exactly), or a new draw that is then recorded."""
    record = Path(record)
    if record.is_file() and not resample:
        return CalibrationSet.load(record)
    if classes is None:
        raise ValueError("classes are needed to draw a new calibration set")
    cset = stratified_sample(train_root, classes, per_class=per_class, seed=seed)
    cset.save(record)
    return cset


def calibration_inputs(
    cset: CalibrationSet, info: ModelInfo, root: str | None = None
) -> np.ndarray:
    """The set's faces normalised per the model's metadata: float32 (N,1,48,48)."""
    return normalise(read_faces(cset.paths(root)), info.input_scale, info.input_bias)


@dataclass(frozen=True)
class TestSplit:
    """A labelled split restricted to a model's classes (labels index ``emotions``)."""

    faces: np.ndarray
    labels: np.ndarray
    emotions: tuple[str, ...]


def load_test(emotions: tuple[str, ...], root: str = TEST_ROOT) -> TestSplit:
    """PublicTest faces of the classes the model predicts, labelled in the model's output order."""
    faces, labels = load_split(root, emotions)
    return TestSplit(faces, labels, emotions)


@dataclass(frozen=True)
class ModelEval:
    """One model's PublicTest scores (and per-face CPU latency when measured)."""

    name: str
    scores: Scores
    probs: np.ndarray
    latency: dict[int, Latency]


def evaluate_model(
    path: str | Path,
    test: TestSplit,
    reference: np.ndarray | None = None,
    name: str | None = None,
    latency_batches: tuple[int, ...] = (),
    repeats: int = 50,
) -> ModelEval:
    """Scores of the model at ``path`` on ``test`` (agreement vs ``reference`` probs if given)."""
    info = read_model_info(path)
    if info.emotions != test.emotions:
        raise ValueError(
            f"{path}: emotions {info.emotions} differ from the split's {test.emotions}"
        )
    sess = make_session(path)
    x = normalise(test.faces, info.input_scale, info.input_bias)
    probs = run_batches(sess, x)
    lat = {b: measure_latency(sess, b, repeats=repeats, data=x) for b in latency_batches}
    return ModelEval(name or Path(path).stem, score(probs, test.labels, reference), probs, lat)
