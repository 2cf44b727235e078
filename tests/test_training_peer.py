"""training.peer: the peer fer package's row of the accuracy-latency table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.ensemble import EnsembleRow
from training.peer import measure_fer, peer_row

TIMING = {
    "b1_ms": 0.38,
    "b64_ms_per_face": 0.375,
    "repeats": [300, 20],
    "fer": "25.10.3",
    "model": "emotion_model_quantized.tflite",
    "sha256": "ab" * 32,
}


def test_peer_row_scores_probabilities_like_every_row(tmp_path: Path) -> None:
    labels = np.array([0, 1, 1, 3, 3, 3, 6])
    probs = np.eye(7, dtype=np.float32)[[0, 1, 0, 3, 3, 4, 6]]  # 5 of 7 right, 1 of 2 disgust
    row = peer_row(probs, labels, TIMING, 0.5, "python -m training.peer --venv v")
    assert row.publictest == {
        "accuracy": round(5 / 7, 4),
        "macro_f1": row.publictest["macro_f1"],
        "disgust_recall": 0.5,
        "n": 7,
    }
    assert 0 < row.publictest["macro_f1"] < 1
    assert row.latency["b1_ms"] == 0.38 and row.precision == "int8"
    assert row.name == "peer: `fer` 25.10.3" and row.sha256 == "ab" * 32
    assert EnsembleRow.read(row.write(tmp_path / "r.json")) == row
    assert row.line().startswith("| peer: `fer` 25.10.3 | `fer (TFLite)` | int8 | 0.7143 |")


def test_missing_fer_venv_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no fer virtual environment at"):
        measure_fer(tmp_path / "no-venv")
