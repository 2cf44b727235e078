"""Class-imbalance strategies (the seeds' methods), applied to the Training split only.

Each strategy yields a :class:`TrainSet`: the (possibly resampled) training images/labels, the
class weights for the loss, the loss kind, the number of output classes and how to turn logits
into 7-class probabilities (6-class and two-tier heads are mapped back to EMOTIONS order).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .data import EMOTIONS

STRATEGIES: tuple[str, ...] = (
    "none",
    "weights",
    "sqrt",
    "focal",
    "over",
    "under",
    "smote",
    "augbal",
    "6class",
    "twotier",
)
K = len(EMOTIONS)
DISGUST = EMOTIONS.index("disgust")
# Two-tier grouping: negative (angry, disgust, fear, sad) vs other (happy, surprise, neutral).
NEGATIVE = tuple(EMOTIONS.index(e) for e in ("angry", "disgust", "fear", "sad"))
GROUP_OF = np.array([0 if k in NEGATIVE else 1 for k in range(K)], dtype=np.int64)


@dataclass
class TrainSet:
    """Training data after a strategy, plus how to train and read out the network."""

    strategy: str
    images: np.ndarray  # uint8 (N,48,48)
    labels: np.ndarray  # int64 (N,), in the network's own class indexing
    num_outputs: int  # network output width
    class_weights: np.ndarray | None  # float32 (num_classes,) for the CE loss, or None
    focal_gamma: float = 0.0

    @property
    def emotions(self) -> tuple[str, ...]:
        if self.strategy == "6class":
            return tuple(e for e in EMOTIONS if e != "disgust")
        return EMOTIONS


def class_weights(labels: np.ndarray, k: int, power: float = 1.0) -> np.ndarray:
    """``(n / (k * n_j)) ** power``; power 0.5 is the square-root-balanced variant."""
    n = np.bincount(labels, minlength=k).astype(np.float64)
    if (n == 0).any():
        raise ValueError(f"class(es) {np.flatnonzero(n == 0).tolist()} have no training samples")
    w = (n.sum() / (k * n)) ** power
    if power != 1.0:
        w = w / (w * n).sum() * n.sum()  # keep the mean per-sample weight at 1
    return w.astype(np.float32)


def _random_resample(labels: np.ndarray, target: int, rng: np.random.Generator) -> np.ndarray:
    """Indices with exactly ``target`` samples per class (with replacement only when needed)."""
    idx = []
    for c in range(K):
        ic = np.flatnonzero(labels == c)
        if len(ic) == 0:
            continue
        replace = target > len(ic)
        pick = rng.choice(ic, target, replace=replace) if replace or target < len(ic) else ic
        if replace:  # keep every original once, draw only the extra copies
            pick = np.concatenate([ic, rng.choice(ic, target - len(ic), replace=True)])
        idx.append(pick)
    return rng.permutation(np.concatenate(idx))


def offline_augment(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Stronger fixed augmentation for synthetic minority copies (affine, flip, contrast)."""
    import cv2

    out = np.empty_like(images)
    for i, img in enumerate(images):
        ang = rng.uniform(-15, 15)
        sc = rng.uniform(0.9, 1.1)
        tx, ty = rng.uniform(-4, 4, size=2)
        m = cv2.getRotationMatrix2D((23.5, 23.5), ang, sc)
        m[:, 2] += (tx, ty)
        a = cv2.warpAffine(img, m, (48, 48), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        if rng.random() < 0.5:
            a = a[:, ::-1]
        c, b = rng.uniform(0.8, 1.2), rng.uniform(-20, 20)
        out[i] = np.clip((a.astype(np.float32) - 128) * c + 128 + b, 0, 255).astype(np.uint8)
    return out


def make_trainset(
    strategy: str,
    images: np.ndarray,
    labels: np.ndarray,
    seed: int = 0,
    focal_gamma: float = 2.0,
) -> TrainSet:
    """Apply ``strategy`` to the Training split (never to evaluation data)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; expected one of {STRATEGIES}")
    if images.dtype != np.uint8 or images.ndim != 3 or len(images) != len(labels):
        raise ValueError("images must be uint8 (N,48,48) with one label per image")
    rng = np.random.default_rng(seed)
    counts = np.bincount(labels, minlength=K)
    x, y = images, labels
    weights = None
    outputs = K
    gamma = 0.0
    if strategy == "weights":
        weights = class_weights(y, K, 1.0)
    elif strategy == "sqrt":
        weights = class_weights(y, K, 0.5)
    elif strategy == "focal":
        gamma = focal_gamma
    elif strategy == "over":
        idx = _random_resample(y, int(counts.max()), rng)
        x, y = x[idx], y[idx]
    elif strategy == "under":
        idx = _random_resample(y, int(counts[counts > 0].min()), rng)
        x, y = x[idx], y[idx]
    elif strategy == "smote":
        from imblearn.over_sampling import SMOTE

        sm = SMOTE(random_state=seed, k_neighbors=5)
        xf, yf = sm.fit_resample(x.reshape(len(x), -1).astype(np.float32), y)
        x = np.clip(np.rint(xf), 0, 255).astype(np.uint8).reshape(-1, 48, 48)
        y = yf.astype(np.int64)
    elif strategy == "augbal":
        extra_x, extra_y = [], []
        for c in range(K):
            ic = np.flatnonzero(y == c)
            need = int(counts.max()) - len(ic)
            if need > 0 and len(ic):
                src = rng.choice(ic, need, replace=True)
                extra_x.append(offline_augment(x[src], rng))
                extra_y.append(np.full(need, c, np.int64))
        if extra_x:
            x = np.concatenate([x, *extra_x])
            y = np.concatenate([y, *extra_y])
    elif strategy == "6class":
        keep = y != DISGUST
        x, y = x[keep], y[keep]
        y = np.where(y > DISGUST, y - 1, y)
        outputs = K - 1
    elif strategy == "twotier":
        outputs = K + 2  # 7 fine logits + 2 group logits
    return TrainSet(strategy, x, y.astype(np.int64), outputs, weights, gamma)


def loss_fn(ts: TrainSet, label_smoothing: float = 0.0):
    """The training loss ``f(logits, target) -> scalar`` for a TrainSet."""
    w = torch.from_numpy(ts.class_weights) if ts.class_weights is not None else None
    gamma = ts.focal_gamma
    group_of = torch.from_numpy(GROUP_OF)

    def ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if ts.strategy == "twotier":
            fine, coarse = logits[:, :K], logits[:, K:]
            g = group_of[target]
            in_group = group_of[None, :] == g[:, None]
            fine = fine.masked_fill(~in_group, float("-inf"))
            return F.cross_entropy(coarse, g, label_smoothing=label_smoothing) + F.cross_entropy(
                fine, target
            )
        if gamma > 0:
            logp = F.log_softmax(logits, 1)
            lp = logp.gather(1, target[:, None])[:, 0]
            return (-((1 - lp.exp()) ** gamma) * lp).mean()
        return F.cross_entropy(
            logits,
            target,
            weight=None if w is None else w.to(logits.device),
            label_smoothing=label_smoothing,
        )

    return ce


def probs7(strategy: str, logits: torch.Tensor) -> torch.Tensor:
    """Network logits -> (N,7) probabilities in EMOTIONS order for any strategy."""
    logits = logits.float()
    if strategy == "6class":
        p = torch.softmax(logits, 1)
        return torch.cat([p[:, :DISGUST], torch.zeros_like(p[:, :1]), p[:, DISGUST:]], 1)
    if strategy == "twotier":
        fine, coarse = logits[:, :K], logits[:, K:]
        pg = torch.softmax(coarse, 1)
        out = torch.zeros_like(fine)
        for g in (0, 1):
            m = torch.from_numpy(GROUP_OF == g)
            out[:, m] = torch.softmax(fine[:, m], 1) * pg[:, g : g + 1]
        return out
    return torch.softmax(logits, 1)
