"""FER2013 loaders: image-folder layout and the original CSV, with a compact array cache.

Both loaders return a :class:`FerData` (uint8 faces, int64 labels in ``EMOTIONS`` order,
split names) and a :class:`LoadReport` that counts every skipped (corrupt) image or row with its
reason. The folder is the whole set (``<split>/<emotion>/*.jpg``) or one split
(``<emotion>/*.jpg``). :func:`read_faces` reads given files (the calibration set),
:func:`normalise` turns faces into model input. No torch import: ``calibration`` uses this too.
"""

from __future__ import annotations

import csv
import hashlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ferfast.labels import EMOTIONS

from .paths import CACHE, FER2013

SPLITS: tuple[str, ...] = ("Training", "PublicTest", "PrivateTest")
IMG_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".pgm")
SIZE = 48
CACHE_VERSION = 1


@dataclass
class LoadReport:
    """What a loader read and what it skipped (never silently)."""

    source: str
    n_loaded: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (item, reason)
    from_cache: bool = False

    @property
    def n_skipped(self) -> int:
        return len(self.skipped)

    def summary(self) -> str:
        s = f"{self.source}: loaded {self.n_loaded}, skipped {self.n_skipped}"
        if self.from_cache:
            s += " (from cache)"
        for item, reason in self.skipped[:10]:
            s += f"\n  skipped {item}: {reason}"
        if self.n_skipped > 10:
            s += f"\n  ... and {self.n_skipped - 10} more"
        return s


@dataclass
class FerData:
    """Decoded faces: ``images`` uint8 (N,48,48), ``labels`` int64 (N,), ``splits`` str (N,)."""

    images: np.ndarray
    labels: np.ndarray
    splits: np.ndarray
    names: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.dtype != np.uint8 or self.images.shape[1:] != (SIZE, SIZE):
            raise ValueError(f"images must be uint8 (N,48,48), got {self.images.dtype}")
        if not (len(self.labels) == len(self.splits) == len(self.names) == n):
            raise ValueError("images, labels, splits and names must have the same length")

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """``(images, labels)`` of one split (``Training``/``PublicTest``/``PrivateTest``)."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        m = self.splits == split
        return self.images[m], self.labels[m]

    def counts(self) -> dict[str, list[int]]:
        """Per-split class counts."""
        return {
            s: np.bincount(self.labels[self.splits == s], minlength=len(EMOTIONS)).tolist()
            for s in SPLITS
            if (self.splits == s).any()
        }


def _split_of(path: Path) -> str | None:
    stem = path.name
    for s in SPLITS:
        if stem.startswith(s + "_"):
            return s
    top = path.parent.parent.name.lower()
    return {"train": "Training", "test": "PublicTest", "val": "PublicTest"}.get(top)


def _decode(path: Path) -> tuple[np.ndarray | None, str]:
    data = np.fromfile(str(path), dtype=np.uint8)
    if data.size == 0:
        return None, "empty file"
    img = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)
    if img is None:
        return None, "undecodable image"
    if img.shape != (SIZE, SIZE):
        return None, f"size {img.shape[1]}x{img.shape[0]} != 48x48"
    return img, ""


def image_files(folder: Path) -> list[Path]:
    """The image files directly in ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMG_EXTS)


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir())


def _listing(root: Path) -> list[Path]:
    """Image files of ``root/<split>/<emotion>/``, or of ``root/<emotion>/`` for one split."""
    dirs = _subdirs(root)
    if not any(d.name.lower() in EMOTIONS for d in dirs):
        dirs = [e for d in dirs for e in _subdirs(d)]
    return [f for d in dirs for f in image_files(d)]


def read_faces(paths: Sequence[str | os.PathLike]) -> np.ndarray:
    """uint8 (N, 48, 48) faces read from ``paths`` in order; ValueError names a bad file."""
    out = np.empty((len(paths), SIZE, SIZE), np.uint8)
    for i, p in enumerate(paths):
        img, why = _decode(Path(p))
        if img is None:
            raise ValueError(f"cannot read face {p}: {why}")
        out[i] = img
    return out


def normalise(faces: np.ndarray, scale: float = 1.0 / 255.0, bias: float = 0.0) -> np.ndarray:
    """uint8 (N,48,48) faces -> float32 (N,1,48,48) = gray * scale + bias (model input contract).

    For 48x48 crops this is what ``Engine.classify`` / ``ferfast.preprocess`` feed the model;
    ``scale`` and ``bias`` come from the model's metadata (default: gray/255).
    """
    if not isinstance(faces, np.ndarray) or faces.dtype != np.uint8:
        raise TypeError("faces must be a uint8 numpy array")
    if faces.ndim == 2:
        faces = faces[None]
    if faces.ndim != 3 or faces.shape[1:] != (SIZE, SIZE):
        raise ValueError(f"faces must be (N,48,48) or (48,48), got {faces.shape}")
    out = faces.astype(np.float32)[:, None] * np.float32(scale) + np.float32(bias)
    return np.ascontiguousarray(out, dtype=np.float32)


def load_image_folder(
    root: str | os.PathLike, progress: bool = False
) -> tuple[FerData, LoadReport]:
    """Load ``root/<split>/<emotion>/*.jpg`` (or one split, ``root/<emotion>/*.jpg``).

    The split comes from the file-name prefix, else from the split folder's name.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist")
    report = LoadReport(source=str(root))
    imgs, labels, splits, names = [], [], [], []
    files = _listing(root)
    it = files
    if progress:
        from tqdm import tqdm

        it = tqdm(files, desc="decode", unit="img", file=sys.stderr)
    for p in it:
        rel = str(p.relative_to(root))
        emo = p.parent.name.lower()
        if emo not in EMOTIONS:
            report.skipped.append((rel, f"unknown emotion folder {p.parent.name!r}"))
            continue
        split = _split_of(p)
        if split is None:
            report.skipped.append((rel, "cannot infer split"))
            continue
        img, why = _decode(p)
        if img is None:
            report.skipped.append((rel, why))
            continue
        imgs.append(img)
        labels.append(EMOTIONS.index(emo))
        splits.append(split)
        names.append(rel)
    return _collect(imgs, labels, splits, names, report)


def _collect(
    imgs: list[np.ndarray],
    labels: list[int],
    splits: list[str],
    names: list[str],
    report: LoadReport,
) -> tuple[FerData, LoadReport]:
    """Stack what a loader decoded into a FerData; the report counts the loaded faces."""
    report.n_loaded = len(imgs)
    data = FerData(
        images=np.stack(imgs) if imgs else np.zeros((0, SIZE, SIZE), np.uint8),
        labels=np.asarray(labels, np.int64),
        splits=np.asarray(splits, dtype="<U11"),
        names=np.asarray(names),
    )
    return data, report


def load_csv(path: str | os.PathLike) -> tuple[FerData, LoadReport]:
    """Load the original ``fer2013.csv`` (columns ``emotion,pixels,Usage``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CSV file {path} does not exist")
    report = LoadReport(source=str(path))
    imgs, labels, splits, names = [], [], [], []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = {"emotion", "pixels", "Usage"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: missing CSV columns {sorted(missing)}")
        for i, row in enumerate(reader):
            item = f"row {i + 2}"  # 1-based, after the header line
            try:
                label = int(row["emotion"])
            except (TypeError, ValueError):
                report.skipped.append((item, f"bad emotion {row.get('emotion')!r}"))
                continue
            if not 0 <= label < len(EMOTIONS):
                report.skipped.append((item, f"emotion {label} out of range 0..6"))
                continue
            usage = (row.get("Usage") or "").strip()
            if usage not in SPLITS:
                report.skipped.append((item, f"bad Usage {usage!r}"))
                continue
            try:
                px = np.array((row["pixels"] or "").split(), dtype=np.int64)
            except ValueError:
                report.skipped.append((item, "non-integer pixel values"))
                continue
            if px.size != SIZE * SIZE:
                report.skipped.append((item, f"{px.size} pixels != 2304"))
                continue
            if px.min() < 0 or px.max() > 255:
                report.skipped.append((item, "pixel values outside 0..255"))
                continue
            imgs.append(px.astype(np.uint8).reshape(SIZE, SIZE))
            labels.append(label)
            splits.append(usage)
            names.append(item)
    return _collect(imgs, labels, splits, names, report)


def _fingerprint(src: Path) -> str:
    h = hashlib.sha1(f"v{CACHE_VERSION}:{src.resolve()}".encode())
    if src.is_file():
        st = src.stat()
        h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
    else:
        for p in _listing(src):
            st = p.stat()
            h.update(f"{p.relative_to(src)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def load(
    source: str | os.PathLike,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = False,
) -> tuple[FerData, LoadReport]:
    """Load a folder or CSV, caching the decoded arrays in ``cache_dir`` (one ``.npz``)."""
    src = Path(source)
    if not src.exists():
        raise FileNotFoundError(f"data source {src} does not exist")
    cache_file = None
    if cache_dir is not None:
        cache_file = Path(cache_dir) / f"fer2013_{_fingerprint(src)}.npz"
        if cache_file.is_file():
            z = np.load(cache_file, allow_pickle=False)
            data = FerData(z["images"], z["labels"], z["splits"], z["names"])
            report = LoadReport(source=str(src), n_loaded=len(data), from_cache=True)
            report.skipped = [tuple(x) for x in z["skipped"].tolist()]
            return data, report
    if src.is_dir():
        data, report = load_image_folder(src, progress=progress)
    else:
        data, report = load_csv(src)
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_name(f"{cache_file.stem}.{os.getpid()}.tmp.npz")
        skipped = np.asarray(report.skipped, dtype=str).reshape(-1, 2)
        np.savez_compressed(
            tmp,
            images=data.images,
            labels=data.labels,
            splits=data.splits,
            names=data.names,
            skipped=skipped,
        )
        os.replace(tmp, cache_file)
    return data, report


def main() -> None:
    """``python -m training.data SOURCE [--cache DIR]``: load, cache and print the report."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("source", nargs="?", default=str(FER2013))
    ap.add_argument("--cache", default=str(CACHE))
    a = ap.parse_args()
    data, report = load(a.source, a.cache, progress=True)
    print(report.summary())
    for s, c in data.counts().items():
        print(
            f"{s:12s} {sum(c):6d} " + " ".join(f"{e}={n}" for e, n in zip(EMOTIONS, c, strict=True))
        )


if __name__ == "__main__":
    main()
