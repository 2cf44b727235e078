"""The balancing-strategy comparison under one fixed budget, classical baselines, the size table.

    python -m training.compare strategies --epochs 5     # every strategy: same net/steps/seed
    python -m training.compare sizes --epochs 5          # accuracy vs INT8 latency over model sizes
    python -m training.compare classical                 # HOG+linear SVM, PCA+random forest
    python -m training.compare table                     # -> docs/comparison.md
    python -m training.compare teachers   # only its teachers table, from the manifests

Runs are resumable (each writes runs/compare/<name>/result.json; finished ones are skipped).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from .config import TrainConfig
from .data import VAL_FRACTION
from .paths import CACHE, DOCS, FER2013, REPO, RUNS, run_name
from .strategies import STRATEGIES
from .train import train

ROOT = RUNS / "compare"
SIZE_ARCHS = ("a", "a3", "f")


def _base(a: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        arch=a.arch,
        epochs=a.epochs,
        threads=a.threads,
        data=a.data,
        cache=a.cache,
        progress=a.progress,
        seed=a.seed,
        steps_per_epoch=a.steps_per_epoch,
        val_fraction=a.val_fraction,
    )


def _run(cfg: TrainConfig, name: str, root: Path = ROOT) -> dict:
    out = root / name
    res_file = out / "result.json"
    if res_file.is_file():
        r = json.loads(res_file.read_text())
        if r.get("epochs_run") == cfg.epochs:
            return r
    res = train(replace(cfg, out=str(out)), resume=True)
    print(
        f"[{name}] best@{res.best_epoch}: acc={res.best_metrics['accuracy']:.4f} "
        f"macroF1={res.best_metrics['macro_f1']:.4f} "
        f"disgustR={res.best_metrics['disgust_recall']:.3f}",
        flush=True,
    )
    return json.loads(res_file.read_text())


def run_strategies(a: argparse.Namespace) -> None:
    base = _base(a)
    for s in a.only or STRATEGIES:
        # Strategies carry their own balancing; keep the loss otherwise identical.
        _run(replace(base, strategy=s), run_name(s, a.seed), Path(a.root))


def run_sizes(a: argparse.Namespace) -> None:
    base = _base(a)
    for arch in a.only or SIZE_ARCHS:
        # the a3 + sqrt run of the strategy comparison is the same configuration
        name = "strategy_sqrt" if arch == base.arch else f"size_{arch}"
        _run(replace(base, arch=arch, strategy="sqrt"), name)


def run_classical(a: argparse.Namespace) -> None:
    import numpy as np

    from .classical import hog_svm, pca_rf
    from .data import load

    data, _ = load(a.data, a.cache)
    xtr, ytr = data.subset("Training")
    xte, yte = data.subset("PublicTest")
    for name, fn in (("hog_svm", hog_svm), ("pca_rf", pca_rf)):
        out = ROOT / f"classical_{name}"
        if (out / "result.json").is_file():
            continue
        m, sec = fn(xtr, ytr, xte, yte)
        out.mkdir(parents=True, exist_ok=True)
        (out / "result.json").write_text(
            json.dumps(
                {"best_metrics": m.as_dict(), "seconds": sec, "train_size": int(len(ytr))}, indent=1
            )
        )
        print(f"[{name}] {m.line()} ({sec:.0f}s)", flush=True)
    del np


def write_table(a: argparse.Namespace) -> None:
    from .tables import comparison_markdown

    notes = Path(a.notes).read_text() if a.notes else ""
    md = comparison_markdown(ROOT, Path(a.latency) if a.latency else None, notes)
    Path(a.doc).write_text(md)
    print(f"wrote {a.doc}")


def write_teachers(a: argparse.Namespace) -> None:
    from .tables import refresh_teachers

    print(
        f"{'rewrote' if refresh_teachers(Path(a.doc)) else 'unchanged:'} teachers table in {a.doc}"
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("what", choices=("strategies", "sizes", "classical", "table", "teachers"))
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument(
        "--steps-per-epoch",
        type=int,
        default=224,
        help="fixed optimizer steps per epoch for every run (224 = one pass over the 28,709 "
        "Training faces at batch 128), so every strategy gets the same compute",
    )
    ap.add_argument("--arch", default="a3")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--seed", type=int, default=0, help="initialisation, batch order, augmentation")
    ap.add_argument(
        "--val-fraction",
        type=float,
        default=VAL_FRACTION,
        help="validation share of Training that selects each run's epoch; 0: select on "
        "PublicTest, the rule of the committed tables",
    )
    ap.add_argument("--root", default=str(ROOT), help="where the strategy runs go")
    ap.add_argument("--data", default=str(FER2013))
    ap.add_argument("--cache", default=str(CACHE))
    ap.add_argument("--progress", action=argparse.BooleanOptionalAction, default=False)
    ap.add_argument("--doc", default=str(DOCS / "comparison.md"))
    ap.add_argument("--latency", default=str(RUNS / "latency_candidates2.json"))
    ap.add_argument(
        "--notes",
        default=str(REPO / "training" / "comparison_notes.md"),
        help="markdown file with the (hand-written) findings to include",
    )
    a = ap.parse_args(argv)
    {
        "strategies": run_strategies,
        "sizes": run_sizes,
        "classical": run_classical,
        "table": write_table,
        "teachers": write_teachers,
    }[a.what](a)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
