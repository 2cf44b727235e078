"""Accuracy, macro-F1 and agreement of a model's predictions on a labelled split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Scores:
    """Classification scores in percent (agreement: same argmax as the reference model)."""

    n: int
    accuracy: float
    macro_f1: float
    agreement: float | None = None
    max_abs_prob_diff: float | None = None


def macro_f1(labels: np.ndarray, pred: np.ndarray, k: int) -> float:
    """Unweighted mean of per-class F1 over the ``k`` classes (absent-and-unpredicted: skipped)."""
    f1s = []
    for c in range(k):
        tp = int(np.sum((pred == c) & (labels == c)))
        fp = int(np.sum((pred == c) & (labels != c)))
        fn = int(np.sum((pred != c) & (labels == c)))
        if tp + fp + fn == 0:
            continue
        f1s.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1s)) if f1s else 0.0


def score(probs: np.ndarray, labels: np.ndarray, reference: np.ndarray | None = None) -> Scores:
    """Scores of ``probs`` (N,K) against ``labels`` (N,), optionally against reference probs."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    if probs.ndim != 2 or labels.shape != (probs.shape[0],):
        raise ValueError(f"probs must be (N,K) and labels (N,), got {probs.shape} {labels.shape}")
    if len(labels) == 0:
        raise ValueError("no samples to score")
    pred = probs.argmax(1)
    agree = diff = None
    if reference is not None:
        if reference.shape != probs.shape:
            raise ValueError(f"reference shape {reference.shape} != probs shape {probs.shape}")
        agree = 100.0 * float(np.mean(pred == reference.argmax(1)))
        diff = float(np.max(np.abs(probs - reference)))
    return Scores(
        n=len(labels),
        accuracy=100.0 * float(np.mean(pred == labels)),
        macro_f1=100.0 * macro_f1(labels, pred, probs.shape[1]),
        agreement=agree,
        max_abs_prob_diff=diff,
    )
