"""The training script runs unchanged under torchrun: 2 CPU processes (gloo), a few steps."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch
from _training_helpers import ROOT, write_folder

from training.data import load


def test_torchrun_two_processes(tmp_path):
    write_folder(tmp_path / "fer", n_train=128, n_test=32, corrupt=False)
    load(tmp_path / "fer", tmp_path / "cache")  # build the cache once (ranks then read it)
    # the ranks import training from the checkout, and ferfast as the tests do (src/ when set)
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=path)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-port",
        "29517",
        "-m",
        "training.train",
        "--out",
        str(tmp_path / "run"),
        "--data",
        str(tmp_path / "fer"),
        "--cache",
        str(tmp_path / "cache"),
        "--arch",
        "tiny",
        "--strategy",
        "none",
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--threads",
        "1",
        "--no-bf16",
        "--no-channels-last",
        "--no-progress",
    ]
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=150)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    assert "world=2" in p.stdout
    # 115 trained faces (13 of the 128 held out for validation) / 2 ranks / batch 16
    assert "steps/epoch=3" in p.stdout and "val=13" in p.stdout
    hist = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(hist) == 1  # only rank 0 writes
    ck = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert ck["epoch"] == 1 and ck["config"]["arch"] == "tiny"
    assert not any("module." in k for k in ck["model"])  # plain (unwrapped) state dict
