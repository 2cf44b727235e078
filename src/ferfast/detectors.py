"""The detector registry: every face detector ferfast makes by name, and ``make_detector``.

One table (:data:`DETECTORS`) gives each name its crop geometry (the ``framing`` preprocess
uses for its boxes) and its factory; ``make_detector``, the Engine's messages, the command
lines' ``--detector`` choices and tools/measure_framing.py read it. This module imports only
the light ones (framing, assets); a factory imports its detector class when it runs, so the
command lines can list the names without loading OpenCV.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ferfast import assets
from ferfast._types import PathLike
from ferfast.framing import FRAMING_HAAR, FRAMING_YUNET, Framing

if TYPE_CHECKING:
    from ferfast.detect import Detector, HaarDetector

YUNET_ENV = "FERFAST_YUNET"


@dataclass(frozen=True)
class DetectorKind:
    """A detector ferfast can make by name: its crop geometry and how to make it."""

    name: str
    framing: Framing  # how preprocess frames this detector's boxes (docs/framing.md)
    make: Callable[[DetectorOptions], Detector]
    about: str  # one line for help texts


@dataclass(frozen=True)
class DetectorOptions:
    """What :func:`make_detector` hands a detector's ``make``."""

    model_path: Path | None = None  # YuNet's ONNX file (None: $FERFAST_YUNET, else the cache)
    input_size: int = 320
    score_threshold: float = 0.6
    nms_threshold: float = 0.3
    provider: str = "cpu"  # ONNX Runtime provider for a network detector


def _make_yunet(opts: DetectorOptions) -> Detector:
    from ferfast.detect import YuNetDetector

    path = opts.model_path or os.environ.get(YUNET_ENV) or assets.fetch(assets.YUNET)
    return YuNetDetector(
        path,
        input_size=opts.input_size,
        score_threshold=opts.score_threshold,
        nms_threshold=opts.nms_threshold,
        provider=opts.provider,
    )


def _make_haar(opts: DetectorOptions) -> Detector:
    from ferfast.detect import HaarDetector

    return HaarDetector(input_size=opts.input_size)


#: Every detector by name: ``make_detector``, the Engine's messages and the CLI choices read it.
#: "auto" is not one of them: it means YuNet, else (one warning) Haar.
DETECTORS: dict[str, DetectorKind] = {
    "yunet": DetectorKind(
        "yunet", FRAMING_YUNET, _make_yunet, "YuNet (OpenCV Zoo, fetched once, verified)"
    ),
    "haar": DetectorKind(
        "haar", FRAMING_HAAR, _make_haar, "OpenCV's Haar cascade (ships with opencv-python)"
    ),
}
#: The names ``detector=`` / ``--detector`` take.
DETECTOR_NAMES = ("auto", *DETECTORS)


def make_detector(
    kind: str | None = "auto",
    model_path: PathLike | None = None,
    input_size: int = 320,
    score_threshold: float = 0.6,
    nms_threshold: float = 0.3,
    provider: str = "cpu",
) -> Detector | None:
    """Build a detector by name (:data:`DETECTORS`).

    ``kind``: "auto", a name of :data:`DETECTORS` ("yunet", "haar"), or None (no detector: the
    caller always gives boxes). YuNet's model is ``model_path``, else $FERFAST_YUNET, else the
    pinned YuNet release from the cache (``ferfast.assets``: fetched once, verified, used
    offline afterwards). A given model file that is missing or corrupt is an error, never a
    silent fallback. When the cached model cannot be fetched, "yunet" raises RuntimeError
    (AssetError) and "auto" warns once, naming the cause and the fix, and uses the Haar cascade.
    """
    if kind is None or kind == "none":
        return None
    if kind not in DETECTOR_NAMES:
        names = ", ".join(repr(n) for n in DETECTOR_NAMES)
        raise ValueError(f"detector must be one of {names} or None, got {kind!r}")
    opts = DetectorOptions(
        None if model_path is None else Path(model_path),
        input_size,
        score_threshold,
        nms_threshold,
        provider,
    )
    if kind != "auto":
        try:
            return DETECTORS[kind].make(opts)
        except assets.AssetError as exc:
            raise assets.AssetError(f"detector {kind!r}: {exc}; or {_yunet_hint()}") from exc
    try:
        return DETECTORS["yunet"].make(opts)
    except assets.AssetError as exc:
        return _haar_fallback(exc, input_size)


def _haar_fallback(cause: assets.AssetError, input_size: int) -> HaarDetector:
    """The Haar cascade for detector "auto" when YuNet cannot be fetched (one warning)."""
    from ferfast.detect import HaarDetector

    try:
        detector = HaarDetector(input_size=input_size)
    except (RuntimeError, FileNotFoundError, ValueError) as exc:
        raise RuntimeError(
            f"no face detector available: YuNet cannot be fetched ({cause}; or {_yunet_hint()}) "
            f"and this OpenCV build has no usable Haar cascade ({exc})"
        ) from exc
    warnings.warn(
        f"using the Haar cascade instead of YuNet (less accurate): {cause}; or {_yunet_hint()}",
        UserWarning,
        stacklevel=3,
    )
    return detector


def _yunet_hint() -> str:
    return f"pass detector_model= (--detector-model on the command line) or set {YUNET_ENV}=path"
