"""Measure the tracker's appearance similarity: same face in consecutive frames vs different people.

The tracker (``ferfast.stream.tracking``) keeps a face's id only when the normalised correlation
of its 48x48 crop averaged to 6x6 with the track's appearance (``appearance``) reaches
``appearance_threshold``. This script measures that similarity on real data:

* **same face, consecutive frames**: each real photo's face slides and bobs across a 640x480
  frame (``tools/moving_face.py``, as in the stream tests), each frame with a random brightness
  change and a JPEG round-trip (quality 75); the engine detects (YuNet with landmarks, and Haar)
  and the crops are the exact model input. Frame pairs ``stride`` apart (1 and 3, i.e. every
  third frame processed).
* **same face, jitter** (FER2013, many identities): each test image against a copy moved by up
  to ±3% of its side, scaled ±4%, rotated ±3°, with ±8% gain, ±0.05 offset and a little noise.
* **different people**: the two real photos' crops at the same place (all pairs), and
  consecutive FER2013 test images (different people, similar framing).

Usage::

    python tools/measure_appearance.py --shared ../shared --n 1500 --json appearance.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
from moving_face import face_frames  # tools/, next to this script

import ferfast
from ferfast.contract import DEFAULT_BIAS, DEFAULT_SCALE, SIDE
from ferfast.preprocess import preprocess
from ferfast.stream.tracking import DEFAULT_APPEARANCE_THRESHOLD, appearance

PHOTOS = {"images_1.jpg": None, "demo_2.png": 420}  # file -> width of the face panel (demo sheets)


def relit_jpeg(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``frame`` with a random brightness change (±5%), then a JPEG round-trip at quality 75."""
    frame = cv2.convertScaleAbs(frame, alpha=float(rng.uniform(0.95, 1.05)))
    ok, enc = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 75])
    return cv2.imdecode(enc, cv2.IMREAD_COLOR)


def crops_of(engine: ferfast.Engine, frames: list[np.ndarray]) -> list[np.ndarray | None]:
    """The model-input crop of the single detected face per frame (None: not exactly one face)."""
    out: list[np.ndarray | None] = []
    for frame in frames:
        res = engine.predict(frame)
        if len(res) != 1:
            out.append(None)
            continue
        lm = None if res[0].landmarks is None else res[0].landmarks[None]
        out.append(preprocess(frame, [res[0].box], landmarks=lm, framing=engine.framing)[0, 0])
    return out


def jitter(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 48x48 float image moved, scaled, rotated, re-lit and noised a little (see above)."""
    big = cv2.resize(img, (192, 192), interpolation=cv2.INTER_LINEAR)
    m = cv2.getRotationMatrix2D(
        (96.0, 96.0), float(rng.uniform(-3, 3)), float(rng.uniform(0.96, 1.04))
    )
    m[:, 2] += rng.uniform(-0.03, 0.03, 2) * 192
    warped = cv2.warpAffine(big, m, (192, 192), borderMode=cv2.BORDER_REPLICATE)
    warped = warped * rng.uniform(0.92, 1.08) + rng.uniform(-0.05, 0.05)
    warped = (warped + rng.normal(0, 0.01, warped.shape)).astype(np.float32)
    return cv2.resize(warped, (SIDE, SIDE), interpolation=cv2.INTER_AREA)


def sims(a: list[np.ndarray], b: list[np.ndarray]) -> np.ndarray:
    """Similarities of two equal-length crop lists, pair by pair, leaving out flat crops.

    The tracker lets IoU alone decide for a flat crop (zero descriptor), so those pairs (a few
    blank FER2013 images) are not measured.
    """
    da, db = appearance(np.stack(a)), appearance(np.stack(b))
    keep = da.any(axis=1) & db.any(axis=1)
    return np.einsum("ij,ij->i", da[keep], db[keep])


def summary(values: np.ndarray) -> dict[str, float]:
    """Count, percentiles and the share that keeps an id at the default threshold."""
    pct = [0, 1, 5, 50, 95, 99, 100]
    row: dict[str, float] = {"n": int(len(values))}
    row.update(
        {f"p{p}": round(float(v), 3) for p, v in zip(pct, np.percentile(values, pct), strict=True)}
    )
    row["kept"] = round(float((values >= DEFAULT_APPEARANCE_THRESHOLD).mean()), 4)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", type=Path, default=Path("../shared"))
    ap.add_argument("--n", type=int, default=1500, help="FER2013 test images (default 1500)")
    ap.add_argument("--frames", type=int, default=60, help="frames per photo sequence")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    yunet = args.shared / "models" / "face_detection_yunet_2026may.onnx"
    results: dict[str, dict[str, float]] = {}

    photos = {}
    for name, panel in PHOTOS.items():
        img = cv2.imread(str(args.shared / "data" / "photos" / name), cv2.IMREAD_COLOR)
        photos[name] = img if panel is None else img[:, :panel]
    for det in ("yunet", "haar"):
        engine = ferfast.Engine(detector=det, detector_model=yunet if det == "yunet" else None)
        per_photo = {}
        for name, img in photos.items():
            crops = crops_of(
                engine, face_frames(img, args.frames, finish=lambda f: relit_jpeg(f, rng))
            )
            found = sum(c is not None for c in crops)
            print(f"{det} {name}: one face in {found}/{len(crops)} frames")
            per_photo[name] = crops
            for stride in (1, 3):
                pairs = [
                    (a, b)
                    for a, b in zip(crops, crops[stride:], strict=False)
                    if a is not None and b is not None
                ]
                if pairs:
                    key = f"same_{det}_{Path(name).stem}_stride{stride}"
                    results[key] = summary(sims([p[0] for p in pairs], [p[1] for p in pairs]))
        a, b = ([c for c in per_photo[n] if c is not None] for n in PHOTOS)
        if a and b:
            cross = [(x, y) for x in a for y in b]
            results[f"different_{det}_photos"] = summary(
                sims([p[0] for p in cross], [p[1] for p in cross])
            )

    files = sorted((args.shared / "data" / "fer2013" / "test").glob("*/*.jpg"))
    rng.shuffle(files)
    fer = [
        cv2.imread(str(f), cv2.IMREAD_GRAYSCALE).astype(np.float32) * DEFAULT_SCALE + DEFAULT_BIAS
        for f in files[: args.n]
    ]
    results["same_fer2013_jitter"] = summary(sims(fer, [jitter(f, rng) for f in fer]))
    results["different_fer2013"] = summary(sims(fer[:-1], fer[1:]))

    width = max(len(k) for k in results)
    print(f"{'':{width}}  " + "  ".join(f"{k:>6}" for k in next(iter(results.values()))))
    for key, row in results.items():
        print(f"{key:{width}}  " + "  ".join(f"{v:>6}" for v in row.values()))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
