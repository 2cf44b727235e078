"""Distillation from an ONNX teacher and the weight EMA: loss, teacher contract, train + resume."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from _training_helpers import tiny_train_config, write_folder
from tiny_model import build_tiny_model, reference_probs

from training.config import TrainConfig
from training.distill import Teacher, kd_loss, make_ema
from training.train import train


def test_teacher_gives_the_models_log_probs(tmp_path):
    teacher = Teacher(build_tiny_model(tmp_path / "t.onnx"), threads=1)
    x = torch.rand(5, 1, 48, 48, generator=torch.Generator().manual_seed(0))
    logp = teacher(x)
    assert logp.shape == (5, 7) and logp.dtype == torch.float32
    np.testing.assert_allclose(logp.exp().numpy(), reference_probs(x.numpy()), atol=1e-5)


def test_ensemble_teacher_averages_probabilities(tmp_path):
    a = build_tiny_model(tmp_path / "a.onnx", seed=0)
    b = build_tiny_model(tmp_path / "b.onnx", seed=1)
    x = torch.rand(4, 1, 48, 48, generator=torch.Generator().manual_seed(2))
    want = (reference_probs(x.numpy(), seed=0) + reference_probs(x.numpy(), seed=1)) / 2
    for spec in (f"{a},{b}", [a, b]):
        got = Teacher(spec, threads=1)(x).exp().numpy()
        np.testing.assert_allclose(got, want, atol=1e-5)
    with pytest.raises(ValueError, match="no teacher"):
        Teacher(" , ")


def test_teacher_refuses_models_outside_the_contract(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        Teacher(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(ValueError, match="bad.onnx"):
        Teacher(bad)
    six = build_tiny_model(tmp_path / "six.onnx", k=6)
    with pytest.raises(ValueError, match="teacher classes"):
        Teacher(six)
    scaled = build_tiny_model(tmp_path / "s.onnx", metadata={"ferfast.input_scale": "1.0"})
    with pytest.raises(ValueError, match="gray/255"):
        Teacher(scaled)


def test_kd_loss_is_zero_only_when_student_matches_teacher():
    g = torch.Generator().manual_seed(1)
    t = torch.log_softmax(torch.randn(8, 7, generator=g), 1)
    assert kd_loss(t + 3.0, t, 3.0).item() == pytest.approx(0.0, abs=1e-6)  # logits up to a shift
    other = torch.randn(8, 7, generator=g)
    assert kd_loss(other, t, 3.0).item() > 1e-3
    # T² scaling keeps the gradient magnitude comparable across temperatures (Hinton et al.).
    assert kd_loss(other, t, 1.0).item() != pytest.approx(kd_loss(other, t, 4.0).item())


def test_ema_follows_the_weights():
    net = torch.nn.Linear(2, 1)
    ema = make_ema(net, 0.5)
    with torch.no_grad():
        net.weight.add_(2.0)
    before = ema.module.weight.clone()
    ema.update_parameters(net)  # first update copies
    ema.update_parameters(net)
    assert torch.allclose(ema.module.weight, net.weight)
    assert not torch.allclose(before, net.weight)
    with pytest.raises(ValueError, match="decay"):
        make_ema(net, 1.0)


def _cfg(tmp_path, out: str, teacher) -> TrainConfig:
    return tiny_train_config(
        tmp_path, out, strategy="sqrt", teacher=str(teacher), distill_alpha=0.7, ema=0.9
    )


def test_distilled_ema_run_resumes_exactly_and_keeps_the_ema(tmp_path):
    write_folder(tmp_path / "fer", n_train=96, n_test=32, corrupt=False)
    teacher = build_tiny_model(tmp_path / "t.onnx")
    full = train(_cfg(tmp_path, "full", teacher))
    assert full.epochs_run == 2
    train(replace(_cfg(tmp_path, "part", teacher), stop_after=1))
    train(_cfg(tmp_path, "part", teacher), resume=True)
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "part" / "last.pt", weights_only=False)
    for k, v in a["ema"].items():
        assert torch.equal(v, b["ema"][k]), k
    assert a["history"][-1]["train_loss"] == b["history"][-1]["train_loss"]
    with pytest.raises(ValueError, match="--ema must match"):
        train(replace(_cfg(tmp_path, "part", teacher), ema=0.0), resume=True)
    # What is evaluated and kept as best is the EMA, not the raw weights (one epoch: it is best).
    train(replace(_cfg(tmp_path, "one", teacher), epochs=1))
    one = torch.load(tmp_path / "one" / "last.pt", weights_only=False)
    ema_weights = {k.removeprefix("module."): v for k, v in one["ema"].items()}
    for k, v in one["best_state"].items():
        assert torch.equal(v, ema_weights[k]), k
    assert not all(torch.equal(v, one["model"][k]) for k, v in one["best_state"].items())
    # The KD term changes training: a run without the teacher ends elsewhere.
    plain = train(replace(_cfg(tmp_path, "plain", teacher), teacher=""))
    assert plain.history[-1]["train_loss"] != full.history[-1]["train_loss"]


def test_teacher_needs_a_seven_class_head(tmp_path):
    teacher = build_tiny_model(tmp_path / "t.onnx")
    with pytest.raises(ValueError, match="7-class head"):
        train(replace(_cfg(tmp_path, "x", teacher), strategy="6class"))
