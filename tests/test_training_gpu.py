"""The GPU path run on CPU: the small FER2013 pack that travels to a GPU machine, and
scripts/gpu-train.sh training tiny recipes from it into verified teacher artifacts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
from _training_helpers import ROOT, write_folder

from training.data import FerData, load, load_pack, write_pack
from training.teacher import MODEL_FILE, verify


def test_pack_keeps_publictest_exact_and_the_validation_split(tmp_path):
    data, _ = load(write_folder(tmp_path / "fer", n_train=200, n_test=40, corrupt=False))
    back, report = load(write_pack(data, tmp_path / "p.npz"))  # load() reads a pack too
    assert report.n_loaded == len(back) == 240
    for split in ("Training", "PublicTest"):
        (x, y), (xb, yb) = data.subset(split), back.subset(split)
        assert np.array_equal(y, yb) and xb.shape == x.shape
        err = np.abs(xb.astype(int) - x).mean()
        assert err == 0 if split == "PublicTest" else 0 < err < 8  # lossy WebP Training faces
    (_, ytr), (_, yval) = data.holdout()
    (_, ytr2), (_, yval2) = back.holdout()  # drawn by name: the same split from the pack
    assert np.array_equal(yval, yval2) and np.array_equal(ytr, ytr2) and len(yval) > 0


def test_pack_of_more_than_one_tile(tmp_path):
    rng = np.random.default_rng(0)
    n = 32 * 32 + 5  # a full tile and a padded one
    faces = rng.integers(0, 256, (n, 48, 48), dtype=np.uint8)
    data = FerData(faces, rng.integers(0, 7, n), np.full(n, "PublicTest"), np.arange(n).astype(str))
    back, _ = load_pack(write_pack(data, tmp_path / "p.npz"))
    assert np.array_equal(back.images, faces) and list(back.names) == list(data.names)


def test_gpu_train_script_cpu_path(tmp_path):
    data, _ = load(write_folder(tmp_path / "fer", n_train=160, n_test=48, corrupt=False))
    pack = write_pack(data, tmp_path / "pack.npz")
    out, runs, faces = tmp_path / "out", tmp_path / "runs", tmp_path / "shared"
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "PACK": str(pack),
        "OUT": str(out),
        "GPU_TRAIN_ARGS": f"--device cpu --tiny --threads 1 --runs {runs} --faces-to {faces}",
    }
    r = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu-train.sh"), "--no-check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    summary = json.loads((out / "gpu-train.json").read_text())
    assert sorted(summary["recipes"]) == ["rtiny", "tiny"]
    for name in ("tiny", "rtiny"):
        m = verify(out / name)  # size and sha256 match the manifest
        assert (out / name / MODEL_FILE).is_file() and (out / name / "train.log").is_file()
        assert m.epochs_trained == m.epochs_planned == 1 and m.finished
        assert m.validation["n"] > 0 and m.publictest["n"] == 48
        assert "training.gpu" in m.provenance and "pack.npz" in m.command
    assert m.arch == "rtiny" and m.config["mixup"] == 0.2
    assert len(list(faces.glob("data/fer2013/test/*/*.png"))) == 48


def test_time_limit_ends_after_whole_epochs_and_resumes(tmp_path):
    from _training_helpers import tiny_train_config

    from training.train import train

    write_folder(tmp_path / "fer", n_train=96, n_test=32, corrupt=False)
    cfg = tiny_train_config(tmp_path, "tl", epochs=3, time_limit=1e-6)
    assert train(cfg).epochs_run == 1  # the budget is spent: stop after the first whole epoch
    assert train(cfg, resume=True).epochs_run == 2
    assert train(replace(cfg, time_limit=0.0), resume=True).epochs_run == 3
