"""Accuracy, macro-F1 (``training.metrics``, scikit-learn) and agreement with a reference model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.metrics import accuracy_macro_f1


@dataclass(frozen=True)
class Scores:
    """Classification scores in percent (agreement: same argmax as the reference model)."""

    n: int
    accuracy: float
    macro_f1: float
    agreement: float | None = None
    max_abs_prob_diff: float | None = None


def score(probs: np.ndarray, labels: np.ndarray, reference: np.ndarray | None = None) -> Scores:
    """Scores of ``probs`` (N,K) against ``labels`` (N,), optionally against reference probs."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    if probs.ndim != 2 or labels.shape != (probs.shape[0],):
        raise ValueError(f"probs must be (N,K) and labels (N,), got {probs.shape} {labels.shape}")
    if len(labels) == 0:
        raise ValueError("no samples to score")
    pred = probs.argmax(1)
    accuracy, macro_f1 = accuracy_macro_f1(labels, pred, probs.shape[1])
    agree = diff = None
    if reference is not None:
        if reference.shape != probs.shape:
            raise ValueError(f"reference shape {reference.shape} != probs shape {probs.shape}")
        agree = 100.0 * float(np.mean(pred == reference.argmax(1)))
        diff = float(np.max(np.abs(probs - reference)))
    return Scores(
        n=len(labels),
        accuracy=100.0 * accuracy,
        macro_f1=100.0 * macro_f1,
        agreement=agree,
        max_abs_prob_diff=diff,
    )
