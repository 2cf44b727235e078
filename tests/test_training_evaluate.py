"""training.evaluate's report on an exported model alone (a fused ensemble has no checkpoint)."""

from __future__ import annotations

import json
import sys

import pytest
from _training_helpers import write_folder
from tiny_model import build_tiny_model

from training.data import load
from training.ensemble import write_fused
from training.evaluate import main, onnx_probs
from training.metrics import compute_metrics


def _run(monkeypatch, *args: str) -> None:
    monkeypatch.setattr(sys, "argv", ["python -m training.evaluate", *args])
    main()


def test_a_fused_model_is_reported_without_a_checkpoint(tmp_path, monkeypatch):
    fer = write_folder(tmp_path / "fer", n_train=40, n_test=24, corrupt=False)
    member = build_tiny_model(tmp_path / "m.onnx", seed=0)
    fused = write_fused([member], tmp_path / "fused.onnx", flip=True)
    out = tmp_path / "report"
    _run(
        monkeypatch,
        "--onnx",
        str(fused),
        "--out",
        str(out),
        "--data",
        str(fer),
        "--cache",
        str(tmp_path / "cache"),
    )
    doc = json.loads((out / "metrics.json").read_text())
    x, y = load(fer, tmp_path / "cache")[0].subset("PublicTest")
    expected = compute_metrics(y, onnx_probs(str(fused), x))
    assert doc["model"] == str(fused) and doc["arch"].endswith("+flip")
    assert doc["accuracy"] == pytest.approx(expected.accuracy)
    assert doc["macro_f1"] == pytest.approx(expected.macro_f1)
    assert (out / "confusion.png").stat().st_size > 0 and "config" not in doc


def test_nothing_to_evaluate_is_a_usage_error(tmp_path, monkeypatch, capsys):
    with pytest.raises(SystemExit) as e:
        _run(monkeypatch, "--out", str(tmp_path / "report"))
    assert e.value.code == 2 and "checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "report").exists()
