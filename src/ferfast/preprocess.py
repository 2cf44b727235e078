"""Face preprocessing: frame + face boxes -> float32 (N, 1, 48, 48) model input.

A thin wrapper around the C++ kernel ``ferfast._core.preprocess`` that fills in the framing
constants (``ferfast.framing``) and turns Python lists into arrays. All work happens in one native
call with the GIL released; the frame is read in place (any numpy strides, no copy).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ferfast import _core
from ferfast.framing import FRAMING_YUNET, Framing

__all__ = ["preprocess"]


def _as_array(value: Any) -> Any:
    """Lists/tuples -> float64 arrays; arrays and None pass through unchanged (checked in C++)."""
    if isinstance(value, (list, tuple)):
        try:
            return np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            name = type(value).__name__
            raise TypeError(f"could not convert {name} to a float array: {exc}") from exc
    return value


def preprocess(
    frame: np.ndarray,
    boxes: npt.ArrayLike,
    out: np.ndarray | None = None,
    landmarks: npt.ArrayLike | None = None,
    framing: Framing = FRAMING_YUNET,
) -> np.ndarray:
    """Crop, gray-convert and resize faces to the model input.

    Args:
        frame: uint8 image, (H, W) gray, (H, W, 3) BGR or (H, W, 4) BGRA; any strides (slices and
            views are read in place, never copied).
        boxes: (N, 4) face boxes x, y, w, h in frame pixels (float32/float64 array or a list).
            Each box is squared (side ``max(w, h) * framing.margin``), shifted by the framing
            offsets; pixels outside the frame replicate the edge. Every box must overlap the
            frame (``x < W``, ``y < H``, ``x + w > 0``, ``y + h > 0``); partly outside is fine.
        out: optional preallocated C-contiguous, writable float32 (M >= N, 1, 48, 48) buffer,
            e.g. the runtime's input tensor, reused frame after frame. The result is then a view
            of ``out[:N]`` (same memory). Without it a new array is returned.
        landmarks: optional (N, 5, 2) YuNet landmarks; when given, a similarity warp puts the two
            eyes level at ``framing.eye_left`` / ``framing.eye_right`` (the boxes are only
            validated).
        framing: crop geometry and input normalisation (``FRAMING_YUNET`` or ``FRAMING_HAAR``).

    Returns:
        float32 (N, 1, 48, 48): area-averaged (downscale) or bilinear (upscale) gray crops,
        ``gray * framing.input_scale + framing.input_bias``.

    Raises:
        TypeError: a wrong type or dtype (frame not uint8, out not float32, ...).
        ValueError: a wrong shape or value (channels, empty frame, NaN box, w <= 0, a box
            entirely outside the frame, read-only or too small ``out``, absurdly large box, ...).
    """
    if not isinstance(framing, Framing):
        raise TypeError(f"framing must be a ferfast.framing.Framing, got {type(framing).__name__}")
    return _core.preprocess(
        frame,
        _as_array(boxes),
        out,
        _as_array(landmarks),
        framing.margin,
        framing.offset_x,
        framing.offset_y,
        framing.eye_left,
        framing.eye_right,
        framing.input_scale,
        framing.input_bias,
    )
