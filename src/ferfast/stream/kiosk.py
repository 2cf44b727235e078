"""On-screen output: the fullscreen kiosk view (large label, bars, fps) and the display window."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

import cv2
import numpy as np

from .annotate import FONT, color_of, draw_faces, draw_fps
from .tracking import TrackedFace

log = logging.getLogger("ferfast.stream")

DEFAULT_SIZE = (1280, 720)
BACKGROUND = (32, 24, 20)


def primary_face(faces: Sequence[TrackedFace]) -> TrackedFace | None:
    """The face the kiosk reports on: the largest box."""
    if not faces:
        return None
    return max(faces, key=lambda f: f.box[2] * f.box[3])


def render_kiosk(
    frame: np.ndarray,
    faces: Sequence[TrackedFace],
    emotions: Sequence[str],
    fps: float,
    size: tuple[int, int] = DEFAULT_SIZE,
) -> np.ndarray:
    """Compose the kiosk screen: the annotated video on the left, a large label and bars right."""
    width, height = size
    if width < 320 or height < 240:
        raise ValueError(f"kiosk size must be at least 320x240, got {width}x{height}")
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[:] = BACKGROUND
    panel_w = int(width * 0.36)
    video_w = width - panel_w

    # Video area: the frame with boxes and short labels, fitted with its aspect ratio kept.
    fh, fw = frame.shape[:2]
    scale = min(video_w / fw, height / fh)
    vw, vh = max(int(fw * scale), 1), max(int(fh * scale), 1)
    view = cv2.resize(frame, (vw, vh), interpolation=cv2.INTER_LINEAR)
    scaled = [_scaled(f, scale) for f in faces]
    draw_faces(view, scaled, emotions, bars=False)
    x0, y0 = (video_w - vw) // 2, (height - vh) // 2
    canvas[y0 : y0 + vh, x0 : x0 + vw] = view

    # Panel: large label of the primary face, its bars, then fps.
    px = video_w + int(panel_w * 0.06)
    inner = panel_w - 2 * int(panel_w * 0.06)
    unit = height / 720.0
    face = primary_face(faces)
    y = int(110 * unit)
    if face is None:
        _text(canvas, "no face", (px, y), 2.0 * unit, (150, 150, 150), 3)
        probs = np.zeros(len(emotions), np.float32)
    else:
        label = face.emotion.upper()
        big = _fit_scale(label, inner, 2.6 * unit, 4)
        _text(canvas, label, (px, y), big, color_of(face.emotion), max(int(5 * unit), 2))
        _text(
            canvas,
            f"{face.confidence * 100:.0f}%  (face #{face.id}, {len(faces)} in view)",
            (px, y + int(45 * unit)),
            0.8 * unit,
            (230, 230, 230),
            max(int(2 * unit), 1),
        )
        probs = face.probs
    row = int(52 * unit)
    top = y + int(90 * unit)
    name_w = int(inner * 0.38)
    bar_w = inner - name_w
    for i, (name, p) in enumerate(zip(emotions, probs)):
        ry = top + i * row
        _text(canvas, name, (px, ry + int(row * 0.6)), 0.9 * unit, (230, 230, 230), 2)
        bx = px + name_w
        cv2.rectangle(canvas, (bx, ry + 6), (bx + bar_w, ry + row - 10), (90, 90, 90), 2)
        filled = int(round(float(p) * bar_w))
        if filled > 0:
            cv2.rectangle(canvas, (bx, ry + 6), (bx + filled, ry + row - 10), color_of(name), -1)
    _text(canvas, f"{fps:.1f} fps", (px, height - int(30 * unit)), 1.0 * unit, (160, 200, 160), 2)
    return canvas


def _scaled(face: TrackedFace, scale: float) -> TrackedFace:
    x, y, w, h = face.box
    return TrackedFace(
        face.id,
        (x * scale, y * scale, w * scale, h * scale),
        face.score,
        face.probs,
        face.emotion,
        face.age,
    )


def _fit_scale(text: str, width: int, scale: float, thickness: int) -> float:
    (tw, _), _ = cv2.getTextSize(text, FONT, scale, thickness)
    return scale if tw <= width else scale * width / tw


def _text(
    img: np.ndarray,
    text: str,
    org: tuple[int, int],
    scale: float,
    color: tuple[int, int, int],
    thickness: int,
) -> None:
    cv2.putText(img, text, org, FONT, scale, color, thickness, cv2.LINE_AA)


def display_available() -> bool:
    """Whether a window can be opened (an X11/Wayland session on Linux)."""
    if not sys.platform.startswith("linux"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def screen_size() -> tuple[int, int] | None:
    """The size of the screen, when it can be found (through Tk), else None."""
    try:
        import tkinter

        root = tkinter.Tk()
        try:
            root.withdraw()
            return int(root.winfo_screenwidth()), int(root.winfo_screenheight())
        finally:
            root.destroy()
    except Exception:  # no Tk or no display: the caller uses a default size
        return None


class Window:
    """An OpenCV window: a plain resizable one, or fullscreen for the kiosk.

    Without a window manager (a bare X server, as in many kiosks) fullscreen requests are not
    honoured, so the fullscreen window is also moved to (0, 0) and sized to the screen.
    """

    def __init__(
        self,
        title: str = "ferfast",
        *,
        fullscreen: bool = False,
        size: tuple[int, int] | None = None,
    ) -> None:
        if not display_available():
            raise RuntimeError("--display needs a graphical session, but DISPLAY is not set")
        self.title = title
        self.fullscreen = fullscreen
        self.size = size or (screen_size() if fullscreen else None) or DEFAULT_SIZE
        self.closed = False
        flags = cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL
        cv2.namedWindow(title, flags)
        if fullscreen:
            cv2.moveWindow(title, 0, 0)
            cv2.resizeWindow(title, *self.size)
            cv2.setWindowProperty(title, cv2.WND_PROP_FULLSCREEN, cv2.WINDOW_FULLSCREEN)
        self._shown = False

    def show(self, image: np.ndarray) -> bool:
        """Show ``image``; False once the user pressed q / Esc or closed the window."""
        if self.closed:
            return False
        cv2.imshow(self.title, image)
        if not self._shown and not self.fullscreen:
            cv2.resizeWindow(self.title, image.shape[1], image.shape[0])
        self._shown = True
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), 27):
            self.closed = True
        elif cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
            self.closed = True
        if self.closed:
            log.info("window closed by the user")
        return not self.closed

    def close(self) -> None:
        """Destroy the window."""
        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
        except cv2.error:
            pass


__all__ = ["Window", "draw_fps", "primary_face", "render_kiosk", "screen_size"]
