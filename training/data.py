"""FER2013 loaders: image-folder layout and the original CSV, with a compact array cache.

Both loaders return a :class:`FerData` (uint8 faces, int64 labels in ``EMOTIONS`` order,
split names) and a :class:`LoadReport` that counts every skipped (corrupt) image or row with its
reason. The folder is the whole set (``<split>/<emotion>/*.jpg``) or one split
(``<emotion>/*.jpg``). :func:`validation_mask` / :meth:`FerData.holdout` define the one validation
split of Training. :func:`write_pack` packs the faces small enough to travel to a GPU machine
(``load`` reads the pack like a folder). :func:`read_faces` reads given files (the calibration
set), :func:`normalise` turns faces into model input. No torch import: ``calibration`` uses this.
"""

from __future__ import annotations

import csv
import hashlib
import os
import sys
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ferfast.contract import DEFAULT_BIAS, DEFAULT_SCALE
from ferfast.labels import EMOTIONS

from .paths import CACHE, FER2013

SPLITS: tuple[str, ...] = ("Training", "PublicTest", "PrivateTest")
IMG_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".pgm")
SIZE = 48
CACHE_VERSION = 1
# The validation split: this fraction of Training, stratified by emotion, drawn with this seed.
# Recipes and epochs are chosen on it, so PublicTest stays untouched until the report.
VAL_FRACTION = 0.1
VAL_SEED = 20240601


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

    def holdout(
        self, fraction: float = VAL_FRACTION, seed: int = VAL_SEED
    ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """``((train_x, train_y), (val_x, val_y))``: Training minus the validation split, and the
        split itself (:func:`validation_mask`); ``fraction`` 0 gives all of Training and nothing."""
        m = self.splits == "Training"
        x, y = self.images[m], self.labels[m]
        val = validation_mask(y, self.names[m], fraction, seed)
        return (x[~val], y[~val]), (x[val], y[val])

    def counts(self) -> dict[str, list[int]]:
        """Per-split class counts."""
        return {
            s: np.bincount(self.labels[self.splits == s], minlength=len(EMOTIONS)).tolist()
            for s in SPLITS
            if (self.splits == s).any()
        }


def validation_mask(
    labels: np.ndarray,
    names: np.ndarray,
    fraction: float = VAL_FRACTION,
    seed: int = VAL_SEED,
) -> np.ndarray:
    """Boolean mask of the validation faces among Training ``labels`` / ``names``.

    Stratified: round(fraction * n_c) faces of each class c (at least one when the class has two
    or more). Deterministic: within a class the faces are ordered by name, then a permutation
    seeded by (seed, c) picks them, so the split does not depend on load order or on the other
    classes. The training run never sees these faces.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation fraction must be in [0, 1), got {fraction}")
    mask = np.zeros(len(labels), bool)
    if fraction == 0.0:
        return mask
    for c in range(len(EMOTIONS)):
        idx = np.flatnonzero(labels == c)
        if len(idx) < 2:
            continue
        idx = idx[np.argsort(names[idx], kind="stable")]
        k = max(1, round(fraction * len(idx)))
        pick = np.random.default_rng([seed, c]).permutation(len(idx))[:k]
        mask[idx[pick]] = True
    return mask


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


def normalise(
    faces: np.ndarray, scale: float = DEFAULT_SCALE, bias: float = DEFAULT_BIAS
) -> np.ndarray:
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


PACK_TILE = 32  # faces per tile side: 32x32 faces = a 1536x1536 image
# Packed Training faces are lossy WebP (16x16 macroblocks align with the 48x48 faces): at quality
# 65 the mean absolute error is 3.6 gray levels, well inside the brightness augmentation (+-38);
# PublicTest stays lossless so figures measured on a pack are the real ones. 18.3 MB in all: with
# the ~47 MB tracked tree it fits the 64 MiB a GPU machine takes (quality 75: 19.7 MB, 3.2 levels).
PACK_QUALITY = {"Training": 65, "PublicTest": 101, "PrivateTest": 101}  # 101: lossless WebP


def _tiles(faces: np.ndarray, quality: int) -> list[bytes]:
    t, out = PACK_TILE, []
    for i in range(0, len(faces), t * t):
        chunk = faces[i : i + t * t]
        pad = np.zeros((t * t - len(chunk), SIZE, SIZE), np.uint8)
        mosaic = np.concatenate([chunk, pad]).reshape(t, t, SIZE, SIZE).transpose(0, 2, 1, 3)
        ok, buf = cv2.imencode(
            ".webp", mosaic.reshape(t * SIZE, t * SIZE), [cv2.IMWRITE_WEBP_QUALITY, quality]
        )
        if not ok:
            raise RuntimeError("WebP encoding failed")
        out.append(buf.tobytes())
    return out


def write_pack(
    data: FerData, path: str | os.PathLike, quality: dict[str, int] | None = None
) -> Path:
    """Write ``data`` as one small ``.npz``: per split, WebP mosaics of its faces (``quality``
    per split, 101 = lossless; default :data:`PACK_QUALITY`), labels and file names (the
    validation split is drawn by name, so a pack gives the same split as the folder)."""
    quality = {**PACK_QUALITY, **(quality or {})}
    arrays: dict[str, np.ndarray] = {}
    for split in SPLITS:
        m = data.splits == split
        if not m.any():
            continue
        tiles = _tiles(data.images[m], quality[split])
        arrays[f"{split}_webp"] = np.frombuffer(b"".join(tiles), np.uint8)
        arrays[f"{split}_offsets"] = np.cumsum([0] + [len(b) for b in tiles]).astype(np.int64)
        arrays[f"{split}_labels"] = data.labels[m].astype(np.uint8)
        names = zlib.compress("\n".join(data.names[m].tolist()).encode(), 9)
        arrays[f"{split}_names"] = np.frombuffer(names, np.uint8)
        arrays[f"{split}_quality"] = np.array(quality[split])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        np.savez(f, pack_version=np.array(1), **arrays)
    return path


def load_pack(path: str | os.PathLike) -> tuple[FerData, LoadReport]:
    """Read a :func:`write_pack` file back into a :class:`FerData`."""
    z = np.load(path, allow_pickle=False)
    if "pack_version" not in z:
        raise ValueError(f"{path}: not a FER2013 pack written by write_pack")
    imgs, labels, splits, names = [], [], [], []
    t = PACK_TILE
    for split in SPLITS:
        if f"{split}_webp" not in z:
            continue
        blob, offs = z[f"{split}_webp"], z[f"{split}_offsets"]
        n = len(z[f"{split}_labels"])
        for a, b in zip(offs[:-1], offs[1:], strict=True):
            mosaic = cv2.imdecode(blob[a:b], cv2.IMREAD_GRAYSCALE)
            imgs.append(
                mosaic.reshape(t, SIZE, t, SIZE).transpose(0, 2, 1, 3).reshape(-1, SIZE, SIZE)
            )
        imgs[-1] = imgs[-1][: n - t * t * (len(offs) - 2)]
        labels.append(z[f"{split}_labels"].astype(np.int64))
        splits += [split] * n
        names += zlib.decompress(z[f"{split}_names"].tobytes()).decode().split("\n")
    report = LoadReport(source=str(path))
    data = FerData(
        images=np.concatenate(imgs),
        labels=np.concatenate(labels),
        splits=np.asarray(splits, dtype="<U11"),
        names=np.asarray(names),
    )
    report.n_loaded = len(data)
    return data, report


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
    """Load a folder or CSV, caching the decoded arrays in ``cache_dir`` (one ``.npz``), or a
    :func:`write_pack` file (``.npz``; not cached)."""
    src = Path(source)
    if not src.exists():
        raise FileNotFoundError(f"data source {src} does not exist")
    if src.is_file() and src.suffix == ".npz":
        return load_pack(src)
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
    """``python -m training.data SOURCE [--cache DIR] [--pack OUT.npz]``: load, cache and print
    the report; ``--pack`` also writes the small pack (Training and PublicTest) for a GPU run."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("source", nargs="?", default=str(FER2013))
    ap.add_argument("--cache", default=str(CACHE))
    ap.add_argument("--pack", default="", help="write Training + PublicTest to this .npz")
    ap.add_argument("--train-quality", type=int, default=PACK_QUALITY["Training"])
    a = ap.parse_args()
    data, report = load(a.source, a.cache, progress=True)
    print(report.summary())
    if a.pack:
        keep = np.isin(data.splits, ("Training", "PublicTest"))
        part = FerData(data.images[keep], data.labels[keep], data.splits[keep], data.names[keep])
        path = write_pack(part, a.pack, {"Training": a.train_quality})
        back, _ = load_pack(path)
        err = {
            s: np.abs(back.subset(s)[0].astype(np.int16) - part.subset(s)[0]).mean()
            for s in ("Training", "PublicTest")
        }
        print(
            f"wrote {path}: {path.stat().st_size / 1e6:.1f} MB, {len(back)} faces; mean abs "
            f"error Training {err['Training']:.2f}, PublicTest {err['PublicTest']:.2f} gray levels"
        )
    counts = data.counts()
    (_, ytr), (_, yval) = data.holdout()
    if len(yval):
        counts["  train part"] = np.bincount(ytr, minlength=len(EMOTIONS)).tolist()
        counts["  validation"] = np.bincount(yval, minlength=len(EMOTIONS)).tolist()
    for s, c in counts.items():
        print(
            f"{s:12s} {sum(c):6d} " + " ".join(f"{e}={n}" for e, n in zip(EMOTIONS, c, strict=True))
        )


if __name__ == "__main__":
    main()
