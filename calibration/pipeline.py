"""Calibrate -> quantize -> evaluate, shared by ``python -m calibration`` and ``.compare``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ferfast.contract import ModelMetadata
from ferfast.measure import Latency, measure_latency, run_batches
from ferfast.ort import OrtRunner
from training.data import EMOTIONS, load, normalise, read_faces
from training.paths import CACHE, FER2013, MODELS

from .dataset import (
    DEFAULT_PER_CLASS,
    DEFAULT_SEED,
    RECORD_PATH,
    CalibrationSet,
    stratified_sample,
)
from .evaluate import Scores, score

TRAIN_ROOT = FER2013 / "train"
TEST_DATA = FER2013 / "test"
FP32_MODEL = MODELS / "ferfast_fp32.onnx"
INT8_MODEL = MODELS / "ferfast_int8.onnx"


def read_model_info(path: str | Path) -> ModelMetadata:
    """Class names and input scale/bias of a ferfast ONNX model (checked by ``OrtRunner``)."""
    runner = OrtRunner(path)
    return ModelMetadata(runner.emotions, runner.input_scale, runner.input_bias)


def calibration_set(
    record: str | Path = RECORD_PATH,
    resample: bool = False,
    classes: tuple[str, ...] | None = None,
    per_class: int = DEFAULT_PER_CLASS,
    seed: int = DEFAULT_SEED,
    train_root: str | Path = TRAIN_ROOT,
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
    cset: CalibrationSet, info: ModelMetadata, root: str | Path | None = None
) -> np.ndarray:
    """The set's faces normalised per the model's metadata: float32 (N,1,48,48)."""
    return normalise(read_faces(cset.paths(root)), info.input_scale, info.input_bias)


@dataclass(frozen=True)
class TestSplit:
    """A labelled split restricted to a model's classes (labels index ``emotions``)."""

    faces: np.ndarray
    labels: np.ndarray
    emotions: tuple[str, ...]


def load_test(
    emotions: tuple[str, ...], data: str | Path = TEST_DATA, cache: str | Path | None = CACHE
) -> TestSplit:
    """PublicTest faces of the classes the model predicts, labelled in the model's output order.

    ``data``: a FER2013 folder (the whole set or one split) or CSV, read by ``training.data.load``
    (decoded arrays cached in ``cache``).
    """
    fer, _ = load(data, cache)
    faces, labels = fer.subset("PublicTest")
    if len(faces) == 0:
        raise ValueError(f"{data}: no PublicTest faces")
    unknown = set(emotions) - set(EMOTIONS)
    if unknown:
        raise ValueError(f"model classes {sorted(unknown)} are not FER2013 classes {EMOTIONS}")
    keep = np.isin(labels, [EMOTIONS.index(e) for e in emotions])
    remap = np.array([emotions.index(e) if e in emotions else -1 for e in EMOTIONS], np.int64)
    return TestSplit(faces[keep], remap[labels[keep]], emotions)


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
    runner = OrtRunner(path)
    if runner.emotions != test.emotions:
        raise ValueError(
            f"{path}: emotions {runner.emotions} differ from the split's {test.emotions}"
        )
    x = normalise(test.faces, runner.input_scale, runner.input_bias)
    probs = run_batches(runner, x)
    lat = {b: measure_latency(runner, b, repeats=repeats, data=x) for b in latency_batches}
    return ModelEval(name or Path(path).stem, score(probs, test.labels, reference), probs, lat)
