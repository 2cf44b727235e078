"""Optional face-crop output (only with --save-crops DIR; nothing is written otherwise)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from ferfast.engine import FaceResult


class CropWriter:
    """Saves each tracked face as ``f<frame>_id<id>_<emotion>.jpg`` in ``directory``."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.written = 0

    def write(self, frame_index: int, image: np.ndarray, faces: Sequence[FaceResult]) -> None:
        """Write the crops of ``faces`` cut from ``image`` (clipped to the frame)."""
        h, w = image.shape[:2]
        for face in faces:
            x, y, bw, bh = face.box
            x0, y0 = max(int(round(x)), 0), max(int(round(y)), 0)
            x1, y1 = min(int(round(x + bw)), w), min(int(round(y + bh)), h)
            if x1 <= x0 or y1 <= y0:
                continue
            name = f"f{frame_index:07d}_id{face.track_id}_{face.emotion}.jpg"
            if not cv2.imwrite(str(self.directory / name), image[y0:y1, x0:x1]):
                raise OSError(f"cannot write crop {self.directory / name}")
            self.written += 1
