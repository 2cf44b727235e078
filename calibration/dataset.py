"""The calibration set: stratified sampling of a split folder and the recorded file list.

The FER2013 image-folder layout is ``<split_root>/<emotion>/<name>.jpg`` (48x48 gray crops). The
calibration set is a per-class quota drawn with a fixed seed; its file list is written to
``calibration/calibration_set.json`` so that the INT8 model can be rebuilt exactly from it.
Reading and normalising faces is ``training.data``'s job (:func:`training.data.read_faces`,
:func:`training.data.normalise`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from training.data import image_files
from training.paths import from_repo, repo_relative

DEFAULT_SEED = 20260
DEFAULT_PER_CLASS = 143  # 7 classes x 143 = 1,001 faces
RECORD_PATH = Path(__file__).with_name("calibration_set.json")
RECORD_VERSION = 1


@dataclass(frozen=True)
class CalibrationSet:
    """A recorded calibration set: files relative to ``root`` as ``<emotion>/<name>``, in order."""

    root: str
    seed: int
    per_class: int
    classes: tuple[str, ...]
    files: tuple[str, ...]
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.files:
            raise ValueError("a calibration set needs at least one file")
        bad = [f for f in self.files if f.split("/", 1)[0] not in self.classes]
        if bad:
            raise ValueError(f"files outside the recorded classes: {bad[:3]}")

    def __len__(self) -> int:
        return len(self.files)

    def labels(self) -> np.ndarray:
        """Class index (into ``classes``) of every file."""
        index = {c: i for i, c in enumerate(self.classes)}
        return np.array([index[f.split("/", 1)[0]] for f in self.files], dtype=np.int64)

    def paths(self, root: str | Path | None = None) -> list[Path]:
        """Paths of the files under ``root`` (default: the recorded root, which is relative to
        the repository root)."""
        base = Path(root) if root is not None else from_repo(self.root)
        return [base / f for f in self.files]

    def save(self, path: str | Path = RECORD_PATH) -> Path:
        """Write the set as JSON (one file per line, stable key order)."""
        path = Path(path)
        data = {"version": RECORD_VERSION, **asdict(self)}
        data["classes"], data["files"] = list(self.classes), list(self.files)
        path.write_text(json.dumps(data, indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path = RECORD_PATH) -> CalibrationSet:
        """Read a set written by :meth:`save`."""
        data = json.loads(Path(path).read_text())
        if data.get("version") != RECORD_VERSION:
            raise ValueError(
                f"{path}: unsupported calibration record version {data.get('version')}"
            )
        return cls(
            root=data["root"],
            seed=int(data["seed"]),
            per_class=int(data["per_class"]),
            classes=tuple(data["classes"]),
            files=tuple(data["files"]),
            counts={k: int(v) for k, v in data.get("counts", {}).items()},
        )


def list_split(root: str | Path, classes: Sequence[str]) -> dict[str, list[str]]:
    """Sorted image names (``<emotion>/<name>``) of each class folder under ``root``."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"split folder not found: {root}")
    out: dict[str, list[str]] = {}
    for c in classes:
        d = root / c
        if not d.is_dir():
            raise FileNotFoundError(f"class folder not found: {d}")
        out[c] = [f"{c}/{p.name}" for p in image_files(d)]
    return out


def stratified_sample(
    root: str | Path,
    classes: Sequence[str],
    per_class: int = DEFAULT_PER_CLASS,
    seed: int = DEFAULT_SEED,
) -> CalibrationSet:
    """Draw ``per_class`` images of each class (all of a smaller class) with a fixed seed.

    The draw depends only on the sorted file names, ``classes`` order, ``per_class`` and ``seed``,
    so it is reproducible; the result is interleaved class by class so that any prefix is balanced.
    """
    if isinstance(per_class, bool) or not isinstance(per_class, (int, np.integer)):
        raise TypeError(f"per_class must be an int, got {type(per_class).__name__}")
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    if not classes:
        raise ValueError("classes must not be empty")
    if len(set(classes)) != len(classes):
        raise ValueError(f"duplicate class names in {list(classes)}")
    names = list_split(root, classes)
    rng = np.random.default_rng(seed)
    picked: dict[str, list[str]] = {}
    for c in classes:
        pool = names[c]
        if not pool:
            raise ValueError(f"class {c!r} has no images under {root}")
        k = min(per_class, len(pool))
        idx = rng.choice(len(pool), size=k, replace=False)
        picked[c] = [pool[i] for i in idx]
    files: list[str] = []
    for i in range(max(len(v) for v in picked.values())):
        files += [picked[c][i] for c in classes if i < len(picked[c])]
    return CalibrationSet(
        root=repo_relative(root),
        seed=int(seed),
        per_class=int(per_class),
        classes=tuple(classes),
        files=tuple(files),
        counts={c: len(picked[c]) for c in classes},
    )
