"""On-screen output: the fullscreen kiosk view (large label, bars, fps) and the display window."""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import cv2
import numpy as np

from .annotate import FONT, color_of, draw_faces

if TYPE_CHECKING:
    from ferfast.faces import FaceResult

log = logging.getLogger("ferfast.stream")

DEFAULT_SIZE = (1280, 720)
BACKGROUND = (32, 24, 20)


def primary_face(faces: Sequence[FaceResult]) -> FaceResult | None:
    """The face the kiosk reports on: the largest box."""
    if not faces:
        return None
    return max(faces, key=lambda f: f.box[2] * f.box[3])


@dataclass(frozen=True)
class _Layout:
    """Geometry of the kiosk screen for one canvas size, and its static background."""

    size: tuple[int, int]
    emotions: tuple[str, ...]
    video_w: int
    px: int
    inner: int
    unit: float
    label_y: int
    bars_top: int
    row: int
    name_w: int
    bar_w: int
    template: np.ndarray  # background, emotion names and empty bar outlines


@functools.lru_cache(maxsize=4)
def _layout(size: tuple[int, int], emotions: tuple[str, ...]) -> _Layout:
    width, height = size
    panel_w = int(width * 0.36)
    video_w = width - panel_w
    margin = int(panel_w * 0.06)
    px, inner = video_w + margin, panel_w - 2 * margin
    unit = height / 720.0
    label_y = int(110 * unit)
    row, bars_top = int(52 * unit), label_y + int(90 * unit)
    name_w = int(inner * 0.38)
    bar_w = inner - name_w
    template = np.empty((height, width, 3), np.uint8)
    template[:] = BACKGROUND
    for i, name in enumerate(emotions):
        ry = bars_top + i * row
        _text(template, name, (px, ry + int(row * 0.6)), 0.9 * unit, (230, 230, 230), 2)
        bx = px + name_w
        cv2.rectangle(template, (bx, ry + 6), (bx + bar_w, ry + row - 10), (90, 90, 90), 2)
    template.setflags(write=False)
    return _Layout(
        size, emotions, video_w, px, inner, unit, label_y, bars_top, row, name_w, bar_w, template
    )


def render_kiosk(
    frame: np.ndarray,
    faces: Sequence[FaceResult],
    emotions: Sequence[str],
    fps: float,
    size: tuple[int, int] = DEFAULT_SIZE,
) -> np.ndarray:
    """Compose the kiosk screen: the annotated video on the left, a large label and bars right."""
    width, height = size
    if width < 320 or height < 240:
        raise ValueError(f"kiosk size must be at least 320x240, got {width}x{height}")
    lay = _layout((int(width), int(height)), tuple(emotions))
    canvas: np.ndarray = lay.template.copy()
    unit = lay.unit

    # Video area: the frame with boxes and short labels, fitted with its aspect ratio kept.
    fh, fw = frame.shape[:2]
    scale = min(lay.video_w / fw, height / fh)
    vw, vh = max(int(fw * scale), 1), max(int(fh * scale), 1)
    x0, y0 = (lay.video_w - vw) // 2, (height - vh) // 2
    view = canvas[y0 : y0 + vh, x0 : x0 + vw]
    cv2.resize(frame, (vw, vh), dst=view, interpolation=cv2.INTER_LINEAR)
    draw_faces(view, [_scaled(f, scale) for f in faces], emotions, bars=False)

    # Panel: large label of the primary face, its bars, then fps.
    face = primary_face(faces)
    if face is None:
        _text(canvas, "no face", (lay.px, lay.label_y), 2.0 * unit, (150, 150, 150), 3)
    else:
        label = face.emotion.upper()
        big = _fit_scale(label, lay.inner, 2.6 * unit, 4)
        thick = max(int(5 * unit), 2)
        _text(canvas, label, (lay.px, lay.label_y), big, color_of(face.emotion), thick)
        _text(
            canvas,
            f"{face.confidence * 100:.0f}%  (face #{face.track_id}, {len(faces)} in view)",
            (lay.px, lay.label_y + int(45 * unit)),
            0.8 * unit,
            (230, 230, 230),
            max(int(2 * unit), 1),
        )
        for i, (name, p) in enumerate(zip(emotions, face.probs, strict=True)):
            ry = lay.bars_top + i * lay.row
            bx = lay.px + lay.name_w
            filled = int(round(float(p) * lay.bar_w))
            if filled > 0:
                cv2.rectangle(
                    canvas, (bx, ry + 6), (bx + filled, ry + lay.row - 10), color_of(name), -1
                )
    fps_org = (lay.px, height - int(30 * unit))
    _text(canvas, f"{fps:.1f} fps", fps_org, 1.0 * unit, (160, 200, 160), 2)
    return canvas


def status_screen(message: str, size: tuple[int, int] = DEFAULT_SIZE) -> np.ndarray:
    """A plain screen with ``message`` centred (shown while a live source reconnects)."""
    width, height = size
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[:] = BACKGROUND
    scale = _fit_scale(message, int(width * 0.8), 1.2 * height / 720.0, 2)
    (tw, th), _ = cv2.getTextSize(message, FONT, scale, 2)
    _text(canvas, message, ((width - tw) // 2, (height + th) // 2), scale, (200, 200, 200), 2)
    return canvas


def _scaled(face: FaceResult, scale: float) -> FaceResult:
    x, y, w, h = face.box
    return replace(face, box=(x * scale, y * scale, w * scale, h * scale))


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


def gui_backend(build_info: str) -> str:
    """The GUI backend line of cv2.getBuildInformation() ('NO' for a headless build)."""
    in_gui = False
    for line in build_info.splitlines():
        if line.strip().startswith("GUI:"):
            in_gui = True
            value = line.split(":", 1)[1].strip()
            if value:
                return value
        elif in_gui and ":" in line:
            name, value = (v.strip() for v in line.split(":", 1))
            if value.upper().startswith("YES") or value.upper().startswith("NO"):
                return f"{name} {value}"
    return "unknown"


def opencv_gui() -> str | None:
    """The GUI backend of the cv2 in use (e.g. 'QT5', 'GTK3'), None for a headless build."""
    value = gui_backend(cv2.getBuildInformation())
    return None if value.upper() in ("NONE", "NO") else value


def gui_fix() -> str:
    """The command that puts a GUI OpenCV of the same version in place of the headless one."""
    version = cv2.__version__.split("-")[0]
    return f'pip install --force-reinstall --no-deps "opencv-python=={version}.*"'


def require_gui() -> None:
    """Raise RuntimeError naming the fix when cv2 cannot open windows (a headless build)."""
    if opencv_gui() is None:
        raise RuntimeError(
            f"--display needs OpenCV with GUI support, but cv2 {cv2.__version__} is a headless "
            "build (opencv-python-headless, ferfast's default). Install the GUI wheel over it: "
            f"{gui_fix()}, or use a system OpenCV with GUI (e.g. JetPack's)"
        )


def display_available() -> bool:
    """Whether a window can be opened (an X11/Wayland session on Linux)."""
    if not sys.platform.startswith("linux"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def x_display_reachable() -> bool:
    """Whether $DISPLAY accepts an X connection (True where that cannot be checked).

    OpenCV's Qt aborts the whole process when it cannot connect, so the CLI checks first.
    """
    if not sys.platform.startswith("linux") or not os.environ.get("DISPLAY"):
        return True
    try:
        import ctypes
        import ctypes.util

        name = ctypes.util.find_library("X11")
        if name is None:
            return True
        xlib = ctypes.CDLL(name)
        xlib.XOpenDisplay.restype = ctypes.c_void_p
        xlib.XOpenDisplay.argtypes = [ctypes.c_char_p]
        xlib.XCloseDisplay.argtypes = [ctypes.c_void_p]
        handle = xlib.XOpenDisplay(None)
        if not handle:
            return False
        xlib.XCloseDisplay(handle)
    except (OSError, AttributeError):
        return True
    return True


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
        require_gui()
        if not display_available():
            raise RuntimeError("--display needs a graphical session, but DISPLAY is not set")
        if not x_display_reachable():
            raise RuntimeError(f"cannot connect to X display {os.environ.get('DISPLAY')}")
        self.title = title
        self.fullscreen = fullscreen
        self.size = size or (screen_size() if fullscreen else None) or DEFAULT_SIZE
        self.closed = False
        flags = cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL
        try:
            cv2.namedWindow(title, flags)
        except cv2.error as exc:  # a build without GUI that the build information did not reveal
            detail = str(exc).strip()
            raise RuntimeError(f"OpenCV cannot open a window ({detail}); try {gui_fix()}") from exc
        if fullscreen:
            cv2.moveWindow(title, 0, 0)
            cv2.resizeWindow(title, *self.size)
            cv2.setWindowProperty(title, cv2.WND_PROP_FULLSCREEN, cv2.WINDOW_FULLSCREEN)
        self._shown = False
        self._shape: tuple[int, ...] = ()

    def show(self, image: np.ndarray) -> bool:
        """Show ``image``; False once the user pressed q / Esc or closed the window."""
        if self.closed:
            return False
        if not self.fullscreen and self._shown and image.shape[:2] != self._shape:
            image = cv2.resize(image, (self._shape[1], self._shape[0]))
        cv2.imshow(self.title, image)
        if not self._shown and not self.fullscreen:
            cv2.resizeWindow(self.title, image.shape[1], image.shape[0])
            self.size = (image.shape[1], image.shape[0])
            self._shape = image.shape[:2]
        self._shown = True
        return self.poll()

    def poll(self) -> bool:
        """Handle window events (keys, close button); False once the window should close."""
        if self.closed:
            return False
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
