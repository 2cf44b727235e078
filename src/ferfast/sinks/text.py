"""The base of the text sinks: a file opened under a lock, or standard output."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from ferfast.outpaths import OutputError, check_file, open_text
from ferfast.records import FrameRecord


class TextSink:
    """Writes each record as text to a file or to standard output (``"-"``), flushed per record.

    A file is checked and opened under an advisory lock (:mod:`ferfast.outpaths`): new unless
    ``force`` (replace) or ``append``. Subclasses format a record in :meth:`format` and may
    write a header in :meth:`start`.
    """

    def __init__(
        self,
        target: str | Path,
        emotions: tuple[str, ...],
        *,
        option: str = "-o",
        force: bool = False,
        append: bool = False,
    ) -> None:
        if not isinstance(target, (str, Path)):
            raise TypeError(f"{option} must be a path or '-', got {type(target).__name__}")
        self.emotions = tuple(emotions)
        self.records = 0
        self._own = str(target) != "-"
        self.name = str(target) if self._own else "standard output"
        if self._own:
            check_file(target, option, force=force, append=append)
            self._fh: TextIO = open_text(target, option, force=force, append=append)
        else:
            self._fh = sys.stdout
        # An appended file already has its header.
        self._started = append and self._own and Path(target).stat().st_size > 0

    def start(self) -> str:
        """Text written once before the first record (a header); empty by default."""
        return ""

    def format(self, record: FrameRecord) -> str:
        """The text of one record (complete lines)."""
        raise NotImplementedError

    def _emit(self, text: str) -> None:
        self._fh.write(text)

    def write(self, record: FrameRecord) -> None:
        """Write one record and flush."""
        try:
            if not self._started:
                self._emit(self.start())
                self._started = True
            text = self.format(record)
            if text:
                self._emit(text)
            self._fh.flush()
        except (OSError, ValueError) as exc:  # disk full, closed pipe, closed stream
            raise self._failed(exc) from exc
        self.records += 1

    def _failed(self, exc: BaseException) -> OutputError:
        why = getattr(exc, "strerror", None) or exc
        return OutputError(f"cannot write {self.name}: {why}")

    def close(self) -> None:
        """Close the file (standard output is only flushed)."""
        try:
            if self._own:
                self._fh.close()
            else:
                self._fh.flush()
        except (OSError, ValueError) as exc:
            raise self._failed(exc) from exc

    def __enter__(self) -> TextSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
