"""An aligned table for the terminal: one line per face, a header above the first."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from ferfast.records import FrameRecord
from ferfast.sinks.text import TextSink

COLUMNS = ("source", "frame", "face", "box", "score", "emotion", "conf")
SOURCE_WIDTH = 40


def cell_width(text: str) -> int:
    """Terminal columns of ``text``: East Asian wide and fullwidth characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def fit_left(text: str, width: int) -> str:
    """``text`` padded to ``width`` columns; a longer one keeps its end behind an ellipsis."""
    if cell_width(text) > width:
        kept: list[str] = []
        room = width - 1  # the ellipsis takes one column
        for c in reversed(text):
            room -= cell_width(c)
            if room < 0:
                break
            kept.append(c)
        text = "\u2026" + "".join(reversed(kept))
    return text + " " * (width - cell_width(text))


def table_line(values: Sequence[str], emotions: Sequence[str]) -> str:
    """One aligned line: the fixed columns, then one 5-wide column per emotion."""
    source, frame, face, box, score, emotion, conf = values[:7]
    head = (
        f"{fit_left(source, SOURCE_WIDTH)} {frame:>6} {face:>4} {box:<19} {score:>5} "
        f"{emotion:<8} {conf:>5}"
    )
    return head + "".join(f" {v:>5}" for v in values[7 : 7 + len(emotions)])


class TableSink(TextSink):
    """Aligned columns (2 decimals) for reading on a terminal; the header comes with the first
    face. Lines go through ``tqdm.write``, which keeps a running progress bar below them."""

    def _emit(self, text: str) -> None:
        from tqdm import tqdm

        for line in text.splitlines():
            tqdm.write(line, file=self._fh)

    _header_pending = True  # the header waits for the first face

    def format(self, record: FrameRecord) -> str:
        lines = []
        if record.faces and self._header_pending:
            lines.append(table_line(COLUMNS + tuple(e[:5] for e in self.emotions), self.emotions))
            self._header_pending = False
        for i, face in enumerate(record.faces):
            values = [
                record.source,
                str(record.frame),
                str(i),
                ",".join(f"{v:.0f}" for v in face.box),
                f"{face.score:.2f}",
                face.emotion,
                f"{face.confidence:.2f}",
                *(f"{p:.2f}" for p in face.probs),
            ]
            lines.append(table_line(values, self.emotions))
        return "".join(line + "\n" for line in lines)
