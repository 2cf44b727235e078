"""Shared helpers for the training tests: tiny synthetic FER datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

SHARED = ROOT.parent / "shared" / "data" / "fer2013"
EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def synthetic_faces(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Class-dependent 48x48 uint8 patterns (learnable) with an imbalanced label mix."""
    rng = np.random.default_rng(seed)
    p = np.array([10, 2, 10, 20, 12, 8, 12], dtype=float)
    y = rng.choice(7, n, p=p / p.sum())
    y[:7] = np.arange(7)  # every class present
    yy, xx = np.mgrid[:48, :48]
    imgs = np.empty((n, 48, 48), np.uint8)
    for i, c in enumerate(y):
        base = 128 + 80 * np.sin((xx + 3 * c) / (2 + c)) * np.cos(yy / (3 + c))
        imgs[i] = np.clip(base + rng.normal(0, 20, (48, 48)), 0, 255).astype(np.uint8)
    return imgs, y.astype(np.int64)


def write_folder(root: Path, n_train: int = 160, n_test: int = 64, corrupt: bool = True) -> Path:
    """FER2013 image-folder layout; with ``corrupt`` adds 4 bad files the loader must skip."""
    import cv2

    for split, prefix, n, seed in (
        ("train", "Training", n_train, 0),
        ("test", "PublicTest", n_test, 1),
    ):
        x, y = synthetic_faces(n, seed)
        for i, (img, c) in enumerate(zip(x, y, strict=True)):
            d = root / split / EMOTIONS[c]
            d.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(d / f"{prefix}_{i:05d}.png"), img)
    if corrupt:
        (root / "train" / "happy" / "Training_empty.jpg").write_bytes(b"")
        (root / "train" / "sad" / "Training_garbage.jpg").write_bytes(b"not an image at all")
        cv2.imwrite(str(root / "train" / "fear" / "Training_big.png"), np.zeros((64, 64), np.uint8))
        (root / "train" / "contempt").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(
            str(root / "train" / "contempt" / "Training_x.png"), np.zeros((48, 48), np.uint8)
        )
    return root


def set_single_thread() -> None:
    """Tests share 2 busy cores with other jobs: one torch thread is far faster there."""
    import torch

    torch.set_num_threads(1)


set_single_thread()


def tiny_train_config(tmp_path: Path, out: str, **overrides):
    """A TrainConfig for seconds-long runs on ``write_folder(tmp_path / "fer")`` (arch tiny)."""
    from dataclasses import replace

    from training.config import TrainConfig

    base = TrainConfig(
        out=str(tmp_path / out),
        data=str(tmp_path / "fer"),
        cache=str(tmp_path / "cache"),
        arch="tiny",
        strategy="weights",
        epochs=2,
        batch_size=32,
        lr=0.05,
        threads=1,
        bf16=False,
        channels_last=False,
        progress=False,
    )
    return replace(base, **overrides)
