"""Optional face-crop output (only with --save-crops DIR; nothing is written otherwise)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from ferfast.outpaths import OutputError, OutputPathError, check_dir

if TYPE_CHECKING:
    from ferfast.faces import FaceResult


class CropWriter:
    """Saves each tracked face as ``f<frame>_id<id>_<emotion>.jpg`` in ``directory``.

    ``directory`` is created if needed; one that holds crops of an earlier run is refused unless
    ``force`` (the new run would replace them by name).
    """

    def __init__(self, directory: str | Path, *, force: bool = False) -> None:
        self.directory = check_dir(directory, "--save-crops")
        if not force:
            earlier = next(self.directory.glob("f*_id*_*.jpg"), None)
            if earlier is not None:
                raise OutputPathError(
                    f"--save-crops {self.directory} holds crops of an earlier run ({earlier.name}"
                    "); use --force to replace them, or another folder"
                )
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
            path = self.directory / name
            try:
                ok = cv2.imwrite(str(path), image[y0:y1, x0:x1])
            except cv2.error as exc:
                raise OutputError(f"cannot write the crop {path}: {exc}") from exc
            if not ok:
                raise OutputError(f"cannot write the crop {path} (disk full or no permission?)")
            self.written += 1
