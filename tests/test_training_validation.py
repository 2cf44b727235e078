"""The validation split (stratified, deterministic, held out of training, what selects the
checkpoint), the residual teacher arch, and mixup / CutMix."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from _training_helpers import tiny_train_config, write_folder

from training.augment import mix
from training.data import VAL_FRACTION, load, validation_mask
from training.export import export_onnx, parity
from training.model import FerNet, count_macs, fold_bn
from training.train import prepare, train


def _labels(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.choice(7, n, p=[0.14, 0.015, 0.14, 0.25, 0.17, 0.11, 0.175])
    names = np.array([f"train/x/Training_{i:06d}.jpg" for i in range(n)])
    return y, names


def test_split_is_stratified_deterministic_and_order_free():
    y, names = _labels()
    m = validation_mask(y, names)
    for c in range(7):
        n_c = int((y == c).sum())
        assert int(m[y == c].sum()) == max(1, round(VAL_FRACTION * n_c))
    assert np.array_equal(m, validation_mask(y, names))
    perm = np.random.default_rng(1).permutation(len(y))  # another load order, same faces
    assert set(names[perm][validation_mask(y[perm], names[perm])]) == set(names[m])
    assert not validation_mask(y, names, 0.0).any()
    assert not np.array_equal(m, validation_mask(y, names, seed=1))
    with pytest.raises(ValueError):
        validation_mask(y, names, 1.0)


@pytest.fixture(scope="module")
def fer(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("val")
    write_folder(tmp / "fer", n_train=160, n_test=48, corrupt=False)
    return tmp


def test_training_never_sees_the_validation_faces(fer):
    cfg = tiny_train_config(fer, "p")
    data, _ = load(cfg.data, cfg.cache)
    (xtr, _), (xval, yval) = data.holdout()
    assert len(xtr) + len(xval) == 160 and len(xval) == pytest.approx(16, abs=4)
    ts, (xv, yv), (xpt, _) = prepare(cfg)
    assert np.array_equal(xv, xval) and np.array_equal(yv, yval) and len(xpt) == 48
    seen = {x.tobytes() for x in ts.images}
    assert not seen & {x.tobytes() for x in xval}
    ts0, (xv0, _), _ = prepare(replace(cfg, val_fraction=0.0))
    assert len(ts0.images) == 160 and len(xv0) == 0


def test_tiny_run_selects_on_validation_and_records_both(fer):
    cfg = tiny_train_config(fer, "sel", epochs=3, lr=0.2)
    r = train(cfg)
    h = r.history
    assert {"val_acc", "val_macro_f1", "publictest_acc", "publictest_macro_f1"} <= set(h[0])
    val = [0.5 * (e["val_acc"] + e["val_macro_f1"]) for e in h]
    assert r.best_epoch == 1 + int(np.argmax(val))  # the first best on validation
    best = h[r.best_epoch - 1]
    assert r.best_val_metrics["accuracy"] == pytest.approx(best["val_acc"])
    assert r.best_metrics["accuracy"] == pytest.approx(best["publictest_acc"])  # the report
    n_val = len(load(cfg.data, cfg.cache)[0].holdout()[1][1])
    assert r.best_metrics["n"] == 48 and r.best_val_metrics["n"] == n_val


def test_resume_keeps_the_split_setting(fer):
    cfg = tiny_train_config(fer, "res", epochs=2, stop_after=1)
    train(cfg)
    with pytest.raises(ValueError, match="val-fraction"):
        train(replace(cfg, val_fraction=0.0), resume=True)
    # a checkpoint from before the split (no val_fraction in its config) resumes with 0
    ck = torch.load(fer / "res" / "last.pt", weights_only=False)
    del ck["config"]["val_fraction"]
    legacy = fer / "legacy"
    legacy.mkdir()
    torch.save(ck, legacy / "last.pt")
    with pytest.raises(ValueError, match="val-fraction 0.0"):
        train(replace(cfg, out=str(legacy)), resume=True)
    r = train(replace(cfg, out=str(legacy), val_fraction=0.0, stop_after=0), resume=True)
    assert r.epochs_run == 2 and "publictest_acc" in r.history[-1]


def test_mixup_and_cutmix_are_reproducible_and_weighted():
    x = torch.rand(16, 1, 48, 48)
    a = mix(x, 0.2, 0.0, torch.Generator().manual_seed(3))
    b = mix(x, 0.2, 0.0, torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and a[2] == b[2]
    xm, perm, lam = a
    assert torch.allclose(xm, lam * x + (1 - lam) * x[perm])
    xc, perm, lam = mix(x, 0.0, 1.0, torch.Generator().manual_seed(5))
    from_other = (xc != x).float().mean().item()  # pixels pasted from the permuted faces
    changed = (x[perm] != x).float().mean().item()
    assert 0.0 <= 1.0 - lam <= 1.0 and from_other == pytest.approx((1 - lam) * changed, abs=1e-6)


def test_mixup_run_trains(fer):
    r = train(tiny_train_config(fer, "mix", epochs=1, mixup=0.2, cutmix=1.0, erase=0.0))
    assert r.history[0]["train_loss"] > 0 and 0 <= r.history[0]["train_acc"] <= 1


def test_residual_teacher_folds_and_exports(tmp_path):
    net = FerNet("rtiny").eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
    x = torch.rand(8, 1, 48, 48)
    with torch.no_grad():
        assert torch.allclose(net(x), fold_bn(net)(x), atol=1e-5)
    path = export_onnx(net, tmp_path / "r.onnx")
    assert parity(net, path, x.numpy()).ok
    # stem 8@24x24, block 16@12x12 (two 3x3 convolutions, 1x1 projection), classifier
    want = 24 * 24 * 9 * 8 + 144 * 9 * 8 * 16 + 144 * 9 * 16 * 16 + 144 * 8 * 16 + 16 * 7
    assert count_macs("rtiny") == want
    assert 2 * count_macs("r1") / 1e6 == pytest.approx(240.1, abs=0.1)
