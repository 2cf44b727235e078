"""Default locations, anchored at the repository root so that commands work from any directory.

Paths a user passes on the command line stay relative to the working directory; only these
defaults are fixed. ``training`` and ``calibration`` are not installed packages: run them from
the repository root, or with the root on ``PYTHONPATH`` (``PYTHONPATH=/path/to/repo``).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FER2013 = REPO.parent / "shared" / "data" / "fer2013"  # train/<emotion>/*.jpg, test/<emotion>/*
CACHE = REPO / "cache"  # decoded-data cache (git-ignored)
RUNS = REPO / "runs"  # training outputs (git-ignored)
MODELS = REPO / "src" / "ferfast" / "models"
DOCS = REPO / "docs"


def repo_relative(path: str | Path) -> str:
    """``path`` relative to the repository root when it lies beside it (``../shared/...``), else
    absolute: how recorded paths (the calibration-set root) are written, so that a record holds on
    every checkout with ``../shared`` next to it. Symlinks are kept as they are: a ``../shared``
    that links elsewhere still records as ``../shared/...``."""
    p = Path(os.path.abspath(path))
    return Path(os.path.relpath(p, REPO)).as_posix() if p.is_relative_to(REPO.parent) else str(p)


def from_repo(path: str | Path) -> Path:
    """A recorded path: relative ones are relative to the repository root."""
    p = Path(path)
    return p if p.is_absolute() else REPO / p


def run_name(strategy: str, seed: int = 0) -> str:
    """Folder of a strategy comparison run under its root (``training.compare``):
    ``strategy_<s>``, ``strategy_<s>_seed<n>``."""
    return f"strategy_{strategy}" + (f"_seed{seed}" if seed else "")
