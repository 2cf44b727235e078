"""Output paths of the command lines: checked before the first frame, opened locked.

Every option that writes files goes through :func:`check_file` or :func:`check_dir` before any
input is read, so a bad path is a one-line usage error instead of a traceback after work was
done, and no output replaces an input, or an existing file, unless the user asks for it
(``--force``, ``--append``). :func:`open_text` opens a checked file under an advisory lock, so
two runs given the same file cannot interleave their lines.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no advisory locks
    fcntl = None  # type: ignore[assignment]

from ferfast._types import PathLike

__all__ = [
    "OutputError",
    "OutputLock",
    "OutputPathError",
    "check_dir",
    "check_file",
    "open_text",
    "same_file",
]


class OutputPathError(ValueError):
    """An output path that cannot or must not be written; the message names option and path."""


class OutputError(OSError):
    """Writing an output failed during a run (disk full, file-size limit, I/O error)."""


def same_file(a: PathLike, b: PathLike) -> bool:
    """Whether ``a`` and ``b`` name the same existing file (through links, relative paths)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _stream_like(path: Path) -> bool:
    """Whether ``path`` exists and is not a regular file (a device, FIFO or socket)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _writable_dir(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK)


def check_file(
    path: PathLike,
    option: str,
    *,
    inputs: Iterable[PathLike] = (),
    force: bool = False,
    append: bool | None = None,
) -> Path:
    """``path`` if ``option`` may write a file there, else :class:`OutputPathError`.

    Refused: a folder, a missing or non-folder parent, a parent or file that cannot be written,
    one of ``inputs``, and an existing file unless ``force`` (replace it) or ``append`` (add to
    it; None: the option has no --append, so the message does not offer it).
    """
    p = Path(path)
    if p.is_dir():
        raise OutputPathError(f"{option} {p} is a folder; give a file name")
    parent = p.parent
    if not parent.exists():
        raise OutputPathError(f"{option} {p}: the folder {parent} does not exist")
    if not parent.is_dir():
        raise OutputPathError(f"{option} {p}: {parent} is not a folder")
    for item in inputs:
        if same_file(p, item):
            raise OutputPathError(f"{option} {p} is an input of this run; it would be overwritten")
    if _stream_like(p):  # /dev/null, a FIFO, a terminal: nothing there to overwrite
        return p
    if p.exists() or p.is_symlink():
        if not (force or append):
            how = "--force to replace it" + ("" if append is None else " or --append to add to it")
            raise OutputPathError(f"{option} {p} exists; use {how}")
        if not os.access(p, os.W_OK):
            raise OutputPathError(f"{option} {p}: no permission to write it")
    elif not _writable_dir(parent):
        raise OutputPathError(f"{option} {p}: no permission to write in {parent}")
    return p


def check_dir(path: PathLike, option: str) -> Path:
    """``path`` as a folder that ``option`` may write into, created (with its parents) if needed.

    Raises :class:`OutputPathError` for a path that is a file, or a folder that cannot be
    created or written.
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise OutputPathError(f"{option} {p} is a file; give a folder")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputPathError(
            f"{option} {p}: cannot create the folder: {exc.strerror or exc}"
        ) from None
    if not _writable_dir(p):
        raise OutputPathError(f"{option} {p}: no permission to write in it")
    return p


def _lock(fd: int, path: Path, option: str) -> None:
    if fcntl is None:  # pragma: no cover
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise OutputPathError(f"{option} {path} is being written by another run") from None


def _open_fd(path: Path, option: str, flags: int) -> int:
    try:
        return os.open(path, flags, 0o666)
    except FileExistsError:
        raise OutputPathError(f"{option} {path} exists; use --force to replace it") from None
    except OSError as exc:
        raise OutputPathError(f"{option} {path}: cannot open: {exc.strerror or exc}") from None


def open_text(path: PathLike, option: str, *, force: bool = False, append: bool = False) -> TextIO:
    """``path`` opened for writing text under an exclusive advisory lock.

    A new file is created exclusively (a file that appeared since :func:`check_file` is
    refused unless ``force``); an existing one is truncated only after the lock is held
    (``force``), or appended to (``append``). Another run holding the lock gives
    :class:`OutputPathError`.
    """
    p = Path(path)
    stream = _stream_like(p)
    flags = os.O_WRONLY | os.O_CREAT
    if append:
        flags |= os.O_APPEND
    elif not (force or stream):
        flags |= os.O_EXCL
    fd = _open_fd(p, option, flags)
    _lock(fd, p, option)
    if not (append or stream):
        os.ftruncate(fd, 0)
    return os.fdopen(fd, "w", encoding="utf-8", newline="")


class OutputLock:
    """An exclusive advisory lock on ``path`` (created if missing) for a writer that opens the
    file itself (OpenCV's video writer): another ferfast run cannot take the same file."""

    def __init__(self, path: PathLike, option: str) -> None:
        self.path = Path(path)
        self._fd: int | None = _open_fd(self.path, option, os.O_WRONLY | os.O_CREAT)
        _lock(self._fd, self.path, option)

    def release(self) -> None:
        """Drop the lock (safe to call more than once)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
