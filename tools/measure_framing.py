"""Measure how FER2013 frames faces relative to a YuNet / Haar detector box.

Each FER2013 48×48 training image is upscaled (default 4×, to 192 px), padded with a replicated
border so the detector sees some context, and run through ``cv2.FaceDetectorYN`` (YuNet) and the
opencv-python Haar cascade. The detected box (and YuNet's eye landmarks) are mapped back to the
48×48 image. Since the FER2013 image *is* the framing the model was trained on, the crop that
reproduces it is:

* ``margin = 48 / max(w, h)`` (square side over detector box side),
* ``offset = (24 - box_centre) / 48`` per axis (image centre minus box centre, as a fraction of
  the square side),
* eye targets = landmark positions in 48×48 pixel coordinates (OpenCV convention, pixel (i, j)
  centred at (i, j)).

Medians over all detections are printed (with quartiles) and optionally written as JSON; they are
the constants in ``src/ferfast/framing.py`` (see ``docs/framing.md``).

Usage::

    python tools/measure_framing.py --data ../shared/data/fer2013/train \\
        --model ../shared/models/face_detection_yunet_2026may.onnx --n 600 --json framing.json
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ferfast.detectors import DETECTORS, make_detector

SIDE = 48.0


@dataclass(frozen=True)
class Stat:
    """Median and quartiles of one measured quantity."""

    median: float
    q25: float
    q75: float

    @classmethod
    def of(cls, values: list[float]) -> Stat:
        q25, med, q75 = np.percentile(np.asarray(values, dtype=np.float64), [25, 50, 75])
        return cls(round(float(med), 4), round(float(q25), 4), round(float(q75), 4))


@dataclass(frozen=True)
class DetectorFraming:
    """Measured framing of one detector on FER2013."""

    detector: str
    images: int
    detected: int
    margin: Stat
    offset_x: Stat
    offset_y: Stat
    box_w: Stat  # box size in 48×48 pixels
    box_h: Stat
    eye_left_x: Stat | None = None  # landmarks[0] (smaller x), 48×48 pixel coordinates
    eye_left_y: Stat | None = None
    eye_right_x: Stat | None = None
    eye_right_y: Stat | None = None


def sample_images(data: Path, n: int, seed: int) -> list[Path]:
    """``n`` images drawn evenly over the emotion folders (deterministic)."""
    folders = sorted(p for p in data.iterdir() if p.is_dir())
    if not folders:
        raise SystemExit(f"no class folders in {data}")
    rng = random.Random(seed)
    per = max(1, n // len(folders))
    picked: list[Path] = []
    for folder in folders:
        files = sorted(folder.glob("*.jpg")) + sorted(folder.glob("*.png"))
        picked += rng.sample(files, min(per, len(files)))
    return picked


def prepare(path: Path, up: int, pad: int) -> np.ndarray:
    """48×48 gray -> upscaled BGR with a replicated border of ``pad`` (48-px units) pixels."""
    gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if gray is None or gray.shape != (48, 48):
        raise ValueError(f"not a 48x48 image: {path}")
    big = cv2.resize(gray, (48 * up, 48 * up), interpolation=cv2.INTER_CUBIC)
    big = cv2.copyMakeBorder(big, pad * up, pad * up, pad * up, pad * up, cv2.BORDER_REPLICATE)
    return cv2.cvtColor(big, cv2.COLOR_GRAY2BGR)


def to48_box(box: np.ndarray, up: int, pad: int) -> np.ndarray:
    """x, y, w, h (edge convention) in the upscaled padded image -> 48×48 image."""
    x, y, w, h = (float(v) for v in box[:4])
    return np.array([x / up - pad, y / up - pad, w / up, h / up])


def to48_point(p: np.ndarray, up: int, pad: int) -> np.ndarray:
    """A point in OpenCV pixel-centre convention -> 48×48 image (same convention)."""
    return (np.asarray(p, dtype=np.float64) + 0.5) / up - 0.5 - pad


def central(boxes48: list[np.ndarray]) -> int | None:
    """Index of the box whose centre is nearest the image centre (must lie inside the image)."""
    best, best_d = None, None
    for i, b in enumerate(boxes48):
        cx, cy = b[0] + b[2] / 2, b[1] + b[3] / 2
        if not (0 <= cx <= SIDE and 0 <= cy <= SIDE):
            continue
        d = (cx - SIDE / 2) ** 2 + (cy - SIDE / 2) ** 2
        if best_d is None or d < best_d:
            best, best_d = i, d
    return best


def summarise(
    name: str, images: int, boxes: list[np.ndarray], eyes: list[np.ndarray]
) -> DetectorFraming:
    """Framing statistics from the boxes (and eyes) found on ``images`` images."""
    if not boxes:
        raise SystemExit(f"{name}: no detections")
    b = np.stack(boxes)
    side = np.maximum(b[:, 2], b[:, 3])
    cx, cy = b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2
    extra = {}
    if eyes:
        e = np.stack(eyes)  # (n, 2, 2)
        extra = {
            "eye_left_x": Stat.of(list(e[:, 0, 0])),
            "eye_left_y": Stat.of(list(e[:, 0, 1])),
            "eye_right_x": Stat.of(list(e[:, 1, 0])),
            "eye_right_y": Stat.of(list(e[:, 1, 1])),
        }
    return DetectorFraming(
        detector=name,
        images=images,
        detected=len(boxes),
        margin=Stat.of(list(SIDE / side)),
        offset_x=Stat.of(list((SIDE / 2 - cx) / SIDE)),
        offset_y=Stat.of(list((SIDE / 2 - cy) / SIDE)),
        box_w=Stat.of(list(b[:, 2])),
        box_h=Stat.of(list(b[:, 3])),
        **extra,
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/fer2013/train"))
    ap.add_argument(
        "--model", type=Path, default=Path("../shared/models/face_detection_yunet_2026may.onnx")
    )
    ap.add_argument("--n", type=int, default=700, help="images to sample (spread over classes)")
    ap.add_argument("--up", type=int, default=4, help="upscale factor (4 -> 192 px)")
    ap.add_argument("--pad", type=int, default=16, help="replicated border, in 48-px units")
    ap.add_argument("--score", type=float, default=0.6, help="YuNet score threshold")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    args = ap.parse_args(argv)

    paths = sample_images(args.data, args.n, args.seed)
    size = (48 + 2 * args.pad) * args.up
    # Every registered detector, run as the Engine runs it, at the prepared image's own size.
    detectors = {
        name: make_detector(name, args.model, input_size=size, score_threshold=args.score)
        for name in DETECTORS
    }
    boxes: dict[str, list[np.ndarray]] = {name: [] for name in detectors}
    eyes: dict[str, list[np.ndarray]] = {name: [] for name in detectors}
    for path in tqdm(paths, desc="measuring", unit="img"):
        img = prepare(path, args.up, args.pad)
        for name, detector in detectors.items():
            assert detector is not None
            faces = detector.detect(img)
            boxes48 = [to48_box(b, args.up, args.pad) for b in faces.boxes]
            i = central(boxes48)
            if i is None:
                continue
            boxes[name].append(boxes48[i])
            if faces.landmarks is not None:
                pts = faces.landmarks[i]
                eyes[name].append(np.stack([to48_point(pts[k], args.up, args.pad) for k in (0, 1)]))

    results = [summarise(name, len(paths), boxes[name], eyes[name]) for name in detectors]
    for name, kind in DETECTORS.items():
        print(f"{name}: framing in use (ferfast.detectors.DETECTORS): {kind.framing}")
    for r in results:
        print(f"\n{r.detector}: detected {r.detected}/{r.images}")
        for key, val in asdict(r).items():
            if isinstance(val, dict):
                iqr = f"[{val['q25']:.4f}, {val['q75']:.4f}]"
                print(f"  {key:12s} median {val['median']:8.4f}   IQR {iqr}")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
