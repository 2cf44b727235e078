"""How a detector's face box (or its eye landmarks) maps onto the 48×48 model input.

FER2013 images are 48×48 gray crops framed by the dataset's own face finder. To feed the model
faces framed the same way, the detector box is squared, widened by ``margin`` and shifted by
``offset_x/offset_y``; with landmarks, a similarity warp puts the eyes at ``eye_left`` /
``eye_right``. The constants below were measured on FER2013 training images with
``tools/measure_framing.py``; method and numbers are in ``docs/framing.md``. ``FRAMING`` is also
the default of the C++ entry points, compiled from a header generated from this module
(cpp/contract_header.py).

Coordinates: ``eye_left`` / ``eye_right`` are 48×48 output pixel coordinates in OpenCV's
convention (pixel (i, j) is centred at (i, j)). ``eye_left`` is where ``landmarks[:, 0]`` goes
(the eye with the smaller x in the image, YuNet's "right eye"), ``eye_right`` takes
``landmarks[:, 1]``.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, replace

from ferfast.contract import DEFAULT_BIAS, DEFAULT_SCALE

__all__ = ["FRAMING", "FRAMING_HAAR", "FRAMING_YUNET", "Framing"]


@dataclass(frozen=True)
class Framing:
    """Crop geometry and input normalisation for one detector.

    Attributes:
        margin: square crop side = ``max(w, h) * margin``.
        offset_x: crop centre shift right, as a fraction of the crop side.
        offset_y: crop centre shift down, as a fraction of the crop side.
        eye_left: (x, y) 48×48 output position of ``landmarks[:, 0]``.
        eye_right: (x, y) 48×48 output position of ``landmarks[:, 1]``.
        input_scale: model input = gray * input_scale + input_bias (gray in 0..255).
        input_bias: see ``input_scale``.
    """

    margin: float
    offset_x: float = 0.0
    offset_y: float = 0.0
    eye_left: tuple[float, float] = (14.55, 17.7)
    eye_right: tuple[float, float] = (32.1, 17.7)
    input_scale: float = DEFAULT_SCALE
    input_bias: float = DEFAULT_BIAS

    def __post_init__(self) -> None:
        values = {
            "margin": self.margin,
            "offset_x": self.offset_x,
            "offset_y": self.offset_y,
            "input_scale": self.input_scale,
            "input_bias": self.input_bias,
        }
        for name, value in values.items():
            if not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise ValueError(f"Framing.{name} must be a finite number, got {value!r}")
            object.__setattr__(self, name, float(value))
        if self.margin <= 0:
            raise ValueError(f"Framing.margin must be > 0, got {self.margin}")
        for name in ("eye_left", "eye_right"):
            point = tuple(getattr(self, name))
            if len(point) != 2 or not all(
                isinstance(v, numbers.Real) and math.isfinite(v) for v in point
            ):
                raise ValueError(f"Framing.{name} must be two finite numbers, got {point!r}")
            object.__setattr__(self, name, (float(point[0]), float(point[1])))
        if self.eye_left == self.eye_right:
            raise ValueError("Framing.eye_left and eye_right must differ")

    def with_input(self, scale: float, bias: float) -> Framing:
        """The same geometry with another input normalisation (e.g. from model metadata)."""
        return replace(self, input_scale=float(scale), input_bias=float(bias))


# Medians over 991 YuNet / 803 Haar detections on 1050 FER2013 training images
# (tools/measure_framing.py, docs/framing.md). YuNet boxes are taller than wide (w/h ~ 0.75) and
# about as tall as a FER2013 image; Haar boxes are square and slightly smaller than the image.
FRAMING_YUNET = Framing(margin=0.966, offset_x=0.0, offset_y=0.016)
FRAMING_HAAR = Framing(margin=1.016, offset_x=0.0, offset_y=0.0)
FRAMING = FRAMING_YUNET
