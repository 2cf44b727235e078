"""CSV: one row per face (the frame record's rows), with a header."""

from __future__ import annotations

import csv
import io

from ferfast.records import FrameRecord, Row, row_fields
from ferfast.sinks.text import TextSink


class CsvSink(TextSink):
    """One row per face: source, frame, face, id, box, score, emotion, confidence and each
    emotion's probability (:meth:`FrameRecord.rows`)."""

    def _writer(self, buf: io.StringIO) -> csv.DictWriter[str]:
        return csv.DictWriter(buf, row_fields(self.emotions), lineterminator="\r\n")

    def start(self) -> str:
        buf = io.StringIO()
        self._writer(buf).writeheader()
        return buf.getvalue()

    def format(self, record: FrameRecord) -> str:
        rows: list[dict[str, Row]] = record.rows()
        buf = io.StringIO()
        self._writer(buf).writerows(rows)
        return buf.getvalue()
