"""Evaluation report of a checkpoint (or an exported ONNX model) on PublicTest.

    python -m training.evaluate runs/main/best.pt --out runs/main/report [--onnx model.onnx]

Writes ``metrics.json`` (accuracy, per-class P/R/F1, macro-F1, one-vs-rest AUC, confusion),
``confusion.png``, ``curves.png`` (training history) and ``samples.png`` (prediction grid).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .data import EMOTIONS, load, normalise  # noqa: E402
from .metrics import Metrics, compute_metrics  # noqa: E402
from .paths import CACHE, FER2013  # noqa: E402


def plot_confusion(m: Metrics, path: Path, title: str = "PublicTest confusion") -> None:
    """Row-normalised confusion matrix with counts."""
    cm = np.array(m.confusion, dtype=float)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(EMOTIONS)):
        for j in range(len(EMOTIONS)):
            ax.text(
                j,
                i,
                f"{norm[i, j]:.2f}\n{int(cm[i, j])}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if norm[i, j] > 0.5 else "black",
            )
    ax.set_xticks(range(7), EMOTIONS, rotation=45, ha="right")
    ax.set_yticks(range(7), EMOTIONS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title}\nacc {m.accuracy:.4f}, macro-F1 {m.macro_f1:.4f}")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_curves(history: list[dict], path: Path) -> None:
    """Training loss / accuracy, validation accuracy and macro-F1 (when the run has the split),
    PublicTest accuracy, macro-F1, disgust recall per epoch."""
    ep = [h["epoch"] for h in history]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    a1.plot(ep, [h["train_loss"] for h in history], label="train loss")
    a1.set_xlabel("epoch")
    a1.set_ylabel("loss")
    a1.legend()
    a1.grid(alpha=0.3)
    a2.plot(ep, [h["train_acc"] for h in history], label="train acc (augmented)")
    # runs from before the validation split stored PublicTest under the val_* keys
    pt = "publictest" if "publictest_acc" in history[0] else "val"
    if pt == "publictest" and "val_acc" in history[0]:
        a2.plot(ep, [h["val_acc"] for h in history], label="validation acc", ls="--")
        a2.plot(ep, [h["val_macro_f1"] for h in history], label="validation macro-F1", ls="--")
    a2.plot(ep, [h[f"{pt}_acc"] for h in history], label="PublicTest acc")
    a2.plot(ep, [h[f"{pt}_macro_f1"] for h in history], label="PublicTest macro-F1")
    a2.plot(
        ep,
        [h[f"{pt}_disgust_recall"] for h in history],
        label="PublicTest disgust recall",
        alpha=0.6,
    )
    a2.set_xlabel("epoch")
    a2.set_ylim(0, 1)
    a2.legend(loc="lower right", fontsize=8)
    a2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_samples(
    x: np.ndarray, y: np.ndarray, probs: np.ndarray, path: Path, n: int = 48, seed: int = 0
) -> None:
    """Grid of random PublicTest faces: predicted (confidence) / true; red when wrong."""
    idx = np.random.default_rng(seed).choice(len(x), min(n, len(x)), replace=False)
    cols = 8
    rows = int(np.ceil(len(idx) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.45, rows * 1.7))
    for ax, i in zip(np.ravel(axes), idx, strict=False):
        p = int(probs[i].argmax())
        ax.imshow(x[i], cmap="gray", vmin=0, vmax=255)
        ax.set_title(
            f"{EMOTIONS[p]} {probs[i, p]:.2f}\n({EMOTIONS[y[i]]})",
            fontsize=7,
            color="green" if p == y[i] else "red",
        )
    for ax in np.ravel(axes):
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def onnx_probs(path: str, images: np.ndarray) -> np.ndarray:
    """Probabilities of an exported model on uint8 faces (expanded to 7 classes by its metadata)."""
    from ferfast.measure import run_batches
    from ferfast.ort import OrtRunner

    runner = OrtRunner(path)
    out = np.zeros((len(images), len(EMOTIONS)), np.float32)
    cols = [EMOTIONS.index(e) for e in runner.emotions]
    out[:, cols] = run_batches(runner, normalise(images, runner.input_scale, runner.input_bias))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "checkpoint", nargs="?", default=None, help="best.pt / last.pt of a training run"
    )
    ap.add_argument("--out", required=True)
    ap.add_argument(
        "--onnx",
        default=None,
        help="evaluate this exported model instead (or alone, e.g. a fused one)",
    )
    ap.add_argument("--data", default=str(FER2013))
    ap.add_argument("--cache", default=str(CACHE))
    a = ap.parse_args()
    if not a.checkpoint and not a.onnx:
        ap.error("give a checkpoint, an --onnx model, or both")

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    data, report = load(a.data, a.cache)
    x, y = data.subset("PublicTest")
    ck: dict = {}
    if a.checkpoint:
        import torch

        from .export import load_checkpoint_net
        from .model import count_macs, count_params
        from .predict import predict_probs

        net, ck = load_checkpoint_net(a.checkpoint)
        torch.set_num_threads(1)
        strategy = ck["config"]["strategy"]
        probs = onnx_probs(a.onnx, x) if a.onnx else predict_probs(net, x, strategy)
        about = {
            "arch": ck["config"]["arch"],
            "strategy": strategy,
            "params": count_params(net),
            "mflops": 2 * count_macs(ck["config"]["arch"], net.num_classes) / 1e6,
            "best_epoch": ck.get("best_epoch"),
            "config": ck["config"],
        }
    else:
        import onnx

        probs = onnx_probs(a.onnx, x)
        meta = {e.key: e.value for e in onnx.load(a.onnx, load_external_data=False).metadata_props}
        about = {"arch": meta.get("ferfast.arch", "?")}
    m = compute_metrics(y, probs)
    doc = {
        "model": a.onnx or a.checkpoint,
        "split": "PublicTest",
        "data": report.summary(),
        **about,
        **m.as_dict(),
    }
    (out / "metrics.json").write_text(json.dumps(doc, indent=1))
    plot_confusion(m, out / "confusion.png")
    if ck.get("history"):
        plot_curves(ck["history"], out / "curves.png")
    plot_samples(x, y, probs, out / "samples.png")
    print(f"PublicTest {m.line()} macroAUC={m.macro_auc_ovr:.4f} -> {out}")
    for e in EMOTIONS:
        print(
            f"  {e:9s} P={m.precision[e]:.3f} R={m.recall[e]:.3f} F1={m.f1[e]:.3f} "
            f"AUC={m.auc_ovr[e]:.3f}"
        )


if __name__ == "__main__":
    main()
