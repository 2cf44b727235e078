"""Markdown tables for docs/comparison.md from the run results under runs/compare/."""

from __future__ import annotations

import json
from pathlib import Path

from .strategies import STRATEGIES

STRATEGY_NAMES = {
    "none": "none (plain cross-entropy)",
    "weights": "class weights n/(k·n_j)",
    "sqrt": "sqrt class weights (n/(k·n_j))^0.5",
    "focal": "focal loss, γ = 2",
    "over": "random oversampling",
    "under": "random undersampling",
    "smote": "SMOTE (imbalanced-learn, Training only)",
    "augbal": "augmentation-balanced (minority copies augmented up)",
    "6class": "6-class (disgust dropped)",
    "twotier": "two-tier (negative/other, then fine)",
}


def _read(p: Path) -> dict | None:
    f = p / "result.json"
    return json.loads(f.read_text()) if f.is_file() else None


def _row(name: str, r: dict, extra: list[str]) -> str:
    m = r["best_metrics"]
    cells = [
        name,
        *extra,
        f"{m['accuracy']:.4f}",
        f"{m['macro_f1']:.4f}",
        f"{m['disgust_recall']:.3f}",
    ]
    return "| " + " | ".join(cells) + " |"


def strategy_table(root: Path) -> str:
    """One row per strategy (fixed budget) plus the classical baselines."""
    lines = [
        "| Method | Train set | Steps (batch 128) | Best epoch | Accuracy | Macro-F1 | "
        "Disgust recall |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in STRATEGIES:
        r = _read(root / f"strategy_{s}")
        if r is None:
            lines.append(f"| {STRATEGY_NAMES[s]} | – | – | – | not run | | |")
            continue
        lines.append(
            _row(
                STRATEGY_NAMES[s],
                r,
                [f"{r['train_size']:,}", f"{r['steps']:,}", str(r["best_epoch"])],
            )
        )
    for key, name in (
        ("hog_svm", "HOG + linear SVM (balanced)"),
        ("pca_rf", "PCA(100) + random forest (balanced)"),
    ):
        r = _read(root / f"classical_{key}")
        if r is None:
            lines.append(f"| {name} | – | – | – | not run | | |")
        else:
            lines.append(_row(name, r, [f"{r['train_size']:,}", "–", "–"]))
    return "\n".join(lines)


def size_table(
    root: Path, latency: dict[str, dict], archs: list[str], main: tuple[str, Path] | None = None
) -> str:
    """Accuracy (same short budget) vs measured INT8 latency over architectures."""
    lines = [
        "| Arch | Params | MFLOPs | INT8 b1 ms | INT8 b64 ms/face | Training | Accuracy | "
        "Macro-F1 | Disgust recall |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    rows = [
        (a, root / ("strategy_sqrt" if a == "a3" else f"size_{a}"), "5 epochs, sqrt") for a in archs
    ]
    if main is not None:
        rows.append((main[0], main[1], "shipped run"))
    for arch, run, label in rows:
        r = _read(run)
        lat = latency.get(arch, {})
        lat_cells = [
            f"{lat['params']:,}" if lat else "–",
            f"{lat['mflops']:.1f}" if lat else "–",
            f"{lat['int8_b1_ms']:.3f}" if lat else "–",
            f"{lat['int8_b64_ms_per_face']:.3f}" if lat else "–",
        ]
        if r is None:
            lines.append(f"| {arch} | " + " | ".join(lat_cells) + f" | {label} | not run | | |")
        else:
            label = f"{r['epochs_run']} epochs" + (
                ", shipped" if "shipped" in label else ", sqrt weights"
            )
            lines.append(_row(arch, r, [*lat_cells, label]))
    return "\n".join(lines)


def load_latency(*paths: Path) -> dict[str, dict]:
    """Merge latency JSON files written by ``python -m training.latency --out``."""
    out: dict[str, dict] = {}
    for p in paths:
        if p and p.is_file():
            for row in json.loads(p.read_text()):
                out[row["arch"]] = row
    return out


def comparison_markdown(root: Path, latency_file: Path | None) -> str:
    """The strategy and size tables (the prose of docs/comparison.md wraps them)."""
    lat = load_latency(*(p for p in [latency_file] if p))
    return (
        "## Balancing strategies (fixed budget) and classical baselines\n\n"
        + strategy_table(root)
        + "\n\n## Accuracy vs INT8 latency over model sizes\n\n"
        + size_table(root, lat, ["a", "a3", "f"], ("a3", Path("runs/main")))
        + "\n"
    )
