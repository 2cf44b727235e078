"""Classification metrics on 7-class probabilities (scikit-learn)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
)

from .data import EMOTIONS


@dataclass
class Metrics:
    """Accuracy, macro-F1, per-class P/R/F1, one-vs-rest AUC and the confusion matrix."""

    n: int
    accuracy: float
    macro_f1: float
    disgust_recall: float
    precision: dict[str, float]
    recall: dict[str, float]
    f1: dict[str, float]
    auc_ovr: dict[str, float | None]
    macro_auc_ovr: float | None
    confusion: list[list[int]]

    def as_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        return (
            f"acc={self.accuracy:.4f} macroF1={self.macro_f1:.4f} "
            f"disgustR={self.disgust_recall:.3f}"
        )


def accuracy_macro_f1(y: np.ndarray, pred: np.ndarray, num_classes: int) -> tuple[float, float]:
    """Accuracy and macro-F1 (fractions) of predicted class indices ``pred`` against ``y``.

    Macro-F1 is the unweighted mean over classes ``0..num_classes-1``; a class that is neither
    present nor predicted counts as F1 0.
    """
    labels = list(range(num_classes))
    f1 = f1_score(y, pred, labels=labels, average="macro", zero_division=0)
    return float(accuracy_score(y, pred)), float(f1)


def compute_metrics(y: np.ndarray, probs: np.ndarray, with_auc: bool = True) -> Metrics:
    """``y`` int (N,), ``probs`` (N,7) in EMOTIONS order."""
    k = len(EMOTIONS)
    if probs.ndim != 2 or probs.shape[1] != k or len(probs) != len(y):
        raise ValueError(f"probs must be (N,{k}) matching y, got {probs.shape} vs {len(y)}")
    labels = list(range(k))
    pred = probs.argmax(1)
    p, r, f, _ = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    aucs: dict[str, float | None] = {}
    if with_auc:
        for c, e in enumerate(EMOTIONS):
            pos = y == c
            aucs[e] = float(roc_auc_score(pos, probs[:, c])) if 0 < pos.sum() < len(y) else None
    valid = [a for a in aucs.values() if a is not None]
    accuracy, macro_f1 = accuracy_macro_f1(y, pred, k)
    return Metrics(
        n=len(y),
        accuracy=accuracy,
        macro_f1=macro_f1,
        disgust_recall=float(r[EMOTIONS.index("disgust")]),
        precision={e: float(v) for e, v in zip(EMOTIONS, p, strict=True)},
        recall={e: float(v) for e, v in zip(EMOTIONS, r, strict=True)},
        f1={e: float(v) for e, v in zip(EMOTIONS, f, strict=True)},
        auc_ovr=aucs,
        macro_auc_ovr=float(np.mean(valid)) if valid else None,
        confusion=confusion_matrix(y, pred, labels=labels).tolist(),
    )
