"""Sinks: where frame records go (``ferfast predict`` and ``ferfast-stream`` alike).

Each format is one class in its own module. A sink takes :class:`~ferfast.records.FrameRecord`s
in order, writes each at once (flushed, so a killed run leaves every finished frame readable)
and raises :class:`~ferfast.outpaths.OutputError` naming its target when a write fails.
:func:`open_sink` makes the sink of a format for a file or standard output (``"-"``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from ferfast.records import FrameRecord
from ferfast.sinks.csv import CsvSink
from ferfast.sinks.jsonl import JsonlSink
from ferfast.sinks.table import TableSink
from ferfast.sinks.text import TextSink

__all__ = ["FORMATS", "CsvSink", "JsonlSink", "Sink", "TableSink", "TextSink", "open_sink"]


class Sink(Protocol):
    """Writes frame records somewhere."""

    name: str  # what it writes to, for messages

    def write(self, record: FrameRecord) -> None: ...

    def close(self) -> None: ...


#: Text formats by name (``--format``), each a TextSink subclass.
FORMATS: dict[str, Callable[..., TextSink]] = {
    "jsonl": JsonlSink,
    "csv": CsvSink,
    "table": TableSink,
}


def open_sink(
    fmt: str,
    target: str | Path,
    emotions: tuple[str, ...],
    *,
    option: str = "-o",
    force: bool = False,
    append: bool = False,
) -> TextSink:
    """The ``fmt`` sink writing to ``target`` (a file, opened under a lock; ``"-"``: stdout).

    ``option`` names the command-line option in messages; ``force`` replaces an existing file,
    ``append`` adds to it.
    """
    try:
        make = FORMATS[fmt]
    except KeyError:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}") from None
    return make(target, emotions, option=option, force=force, append=append)
