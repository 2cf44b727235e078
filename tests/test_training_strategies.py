"""Every balancing strategy yields a valid training set, a finite differentiable loss and
7-class probabilities; plus metrics and augmentation sanity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _training_helpers import synthetic_faces

from training.augment import AugConfig, augment
from training.metrics import compute_metrics
from training.model import FerNet
from training.strategies import (
    DISGUST,
    STRATEGIES,
    class_weights,
    loss_fn,
    make_trainset,
    probs7,
)

X, Y = synthetic_faces(300, 5)
COUNTS = np.bincount(Y, minlength=7)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_strategy_trainset_and_loss(strategy):
    ts = make_trainset(strategy, X, Y, seed=0)
    assert ts.images.dtype == np.uint8 and ts.images.shape[1:] == (48, 48)
    assert len(ts.images) == len(ts.labels)
    k = 6 if strategy == "6class" else 7
    assert ts.labels.min() >= 0 and ts.labels.max() < k
    counts = np.bincount(ts.labels, minlength=k)
    if strategy in ("over", "smote", "augbal"):
        assert (counts == COUNTS.max()).all()
    elif strategy == "under":
        assert (counts == COUNTS.min()).all()
    elif strategy == "6class":
        assert len(ts.emotions) == 6 and "disgust" not in ts.emotions
        assert len(ts.labels) == len(Y) - COUNTS[DISGUST]
    else:
        np.testing.assert_array_equal(counts, COUNTS)  # data untouched
    if strategy in ("over", "under"):  # resampled rows are real training images
        originals = {im.tobytes() for im in X}
        assert all(im.tobytes() in originals for im in ts.images)
    torch.manual_seed(0)
    net = FerNet("tiny", num_classes=ts.num_outputs)
    xb = torch.from_numpy(ts.images[:32]).float().div(255).unsqueeze(1)
    yb = torch.from_numpy(ts.labels[:32])
    logits = net(xb)
    loss = loss_fn(ts, label_smoothing=0.1)(logits, yb)
    assert torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    assert all(p.grad is not None for p in net.parameters())
    p = probs7(strategy, logits.detach())
    assert p.shape == (32, 7)
    torch.testing.assert_close(p.sum(1), torch.ones(32))
    if strategy == "6class":
        assert (p[:, DISGUST] == 0).all()


def test_class_weights_formula():
    w = class_weights(Y, 7)
    np.testing.assert_allclose(w, len(Y) / (7 * COUNTS), rtol=1e-6)
    ws = class_weights(Y, 7, 0.5)
    assert abs((ws * COUNTS).sum() / len(Y) - 1) < 1e-5  # mean per-sample weight 1
    assert ws[COUNTS.argmin()] > ws[COUNTS.argmax()]
    with pytest.raises(ValueError, match="no training samples"):
        class_weights(np.zeros(5, np.int64), 7)


def test_focal_reduces_to_ce_at_gamma_zero():
    ts = make_trainset("focal", X, Y, focal_gamma=0.0)
    logits = torch.randn(16, 7)
    y = torch.randint(0, 7, (16,))
    torch.testing.assert_close(loss_fn(ts)(logits, y), torch.nn.functional.cross_entropy(logits, y))


def test_bad_strategy():
    with pytest.raises(ValueError, match="unknown strategy"):
        make_trainset("magic", X, Y)


def test_metrics_perfect_and_shape_check():
    y = np.arange(7).repeat(3)
    probs = np.eye(7, dtype=np.float32)[y]
    m = compute_metrics(y, probs)
    assert m.accuracy == 1.0 and m.macro_f1 == 1.0 and m.disgust_recall == 1.0
    assert m.macro_auc_ovr == 1.0 and np.trace(np.array(m.confusion)) == 21
    with pytest.raises(ValueError):
        compute_metrics(y, probs[:, :6])


def test_augment_deterministic_and_in_range():
    x = torch.rand(8, 1, 48, 48)
    a = augment(x, AugConfig(), torch.Generator().manual_seed(1))
    b = augment(x, AugConfig(), torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == x.shape
    assert a.min() >= 0 and a.max() <= 1 and not torch.equal(a, x)
    ident = AugConfig(shift=0, rotate=0, scale=0, flip=0, brightness=0, contrast=0, erase=0)
    torch.testing.assert_close(augment(x, ident, torch.Generator()), x, atol=1e-5, rtol=0)


def test_seeds_table_ranks_strategies_by_their_mean_over_seeds(tmp_path):
    """The longer-budget strategy table: one row per strategy with a finished run, each seed's
    figures, the means, and the rank of the mean (accuracy + macro-F1)/2."""
    import json

    from training.paths import run_name
    from training.tables import seeds_table

    def put(strategy: str, seed: int, acc: float, f1: float, disgust: float) -> None:
        out = tmp_path / run_name(strategy, seed)
        out.mkdir()
        metrics = {"accuracy": acc, "macro_f1": f1, "disgust_recall": disgust}
        (out / "result.json").write_text(json.dumps({"best_metrics": metrics, "epochs_run": 30}))

    assert run_name("sqrt") == "strategy_sqrt" and run_name("sqrt", 1) == "strategy_sqrt_seed1"
    put("none", 0, 0.66, 0.60, 0.0)
    put("none", 1, 0.64, 0.58, 0.1)
    put("sqrt", 0, 0.65, 0.64, 0.5)
    put("sqrt", 1, 0.65, 0.62, 0.4)
    put("focal", 0, 0.60, 0.55, 0.2)  # its second seed has not finished
    rows = seeds_table(tmp_path).splitlines()
    assert len(rows) == 5 and "Seed 0: acc / F1 / disgust" in rows[0]
    assert [r.split(" | ")[0] for r in rows[2:]] == ["| 1", "| 2", "| 3"]  # in rank order
    body = {r.split(" | ")[1]: r for r in rows[2:]}
    assert body["sqrt class weights (n/(k·n_j))^0.5"].startswith("| 1 |")
    assert "| 0.6500 | 0.6300 | 0.450 |" in body["sqrt class weights (n/(k·n_j))^0.5"]
    assert body["none (plain cross-entropy)"].startswith("| 2 |")
    assert "0.6600 / 0.6000 / 0.000 | 0.6400 / 0.5800 / 0.100" in body["none (plain cross-entropy)"]
    assert body["focal loss, γ = 2"].startswith("| 3 |") and "not run" in body["focal loss, γ = 2"]
