"""Checkpointing: an interrupted + resumed run ends exactly where an uninterrupted one does."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from _training_helpers import tiny_train_config, write_folder

from training.config import TrainConfig
from training.train import parse_args, train


def _cfg(tmp_path, out: str) -> TrainConfig:
    return tiny_train_config(tmp_path, out)


def test_resume_matches_uninterrupted(tmp_path):
    write_folder(tmp_path / "fer", n_train=96, n_test=32, corrupt=False)
    full = train(_cfg(tmp_path, "full"))
    assert full.epochs_run == 2 and len(full.history) == 2
    part = train(replace(_cfg(tmp_path, "part"), stop_after=1))
    assert part.epochs_run == 1
    resumed = train(_cfg(tmp_path, "part"), resume=True)
    assert resumed.epochs_run == 2
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "part" / "last.pt", weights_only=False)
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    assert a["history"][-1]["train_loss"] == b["history"][-1]["train_loss"]
    assert a["best_epoch"] == b["best_epoch"]
    assert (tmp_path / "part" / "best.pt").is_file()
    assert (tmp_path / "part" / "history.json").is_file()


def test_cli_parsing():
    cfg, resume = parse_args(
        ["--arch", "a", "--no-bf16", "--epochs", "3", "--resume", "--strategy", "focal"]
    )
    assert cfg.arch == "a" and cfg.bf16 is False and cfg.epochs == 3 and resume
    assert cfg.strategy == "focal"


def test_fixed_step_budget_cycles_small_sets(tmp_path):
    """Undersampling leaves fewer faces than one epoch's step budget: the order cycles."""
    write_folder(tmp_path / "fer", n_train=96, n_test=32, corrupt=False)
    cfg = replace(
        _cfg(tmp_path, "under"), strategy="under", epochs=1, batch_size=8, steps_per_epoch=6
    )
    r = train(cfg)
    assert r.train_size < 6 * 8 and r.steps == 6
    assert r.history[0]["train_loss"] > 0


def test_init_from_an_exported_onnx(tmp_path):
    """A run can start from a ferfast ONNX file (the shipped form of a model): it trains the
    file's weights, and an arch that does not fit is refused."""
    import onnx
    from onnx import numpy_helper

    from training.export import export_onnx, load_checkpoint_net

    write_folder(tmp_path / "fer")
    first = train(tiny_train_config(tmp_path, "first", epochs=1))
    net, _ = load_checkpoint_net(first.out + "/last.pt")
    path = export_onnx(net, tmp_path / "first.onnx")
    # lr 0: the weights stay as loaded (only BatchNorm statistics move with the data)
    cont = train(tiny_train_config(tmp_path, "cont", epochs=1, lr=0.0, init_from=str(path)))
    got, _ = load_checkpoint_net(cont.out + "/last.pt")
    folded = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}
    convs = [m for m in got.features if isinstance(m, torch.nn.Conv2d)]
    for k, conv in enumerate(convs):
        want = folded[f"net.features.{2 * k}.weight"]
        assert torch.equal(conv.weight.detach(), torch.from_numpy(want))
    assert torch.equal(got.fc.weight.detach(), torch.from_numpy(folded["net.fc.weight"]))
    with pytest.raises(ValueError, match="arch tiny, not a3"):
        train(tiny_train_config(tmp_path, "bad", arch="a3", init_from=str(path)))
