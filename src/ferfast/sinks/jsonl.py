"""JSON Lines: one frame record per line, as it is (docs/record.schema.json)."""

from __future__ import annotations

from ferfast.records import FrameRecord
from ferfast.sinks.text import TextSink


class JsonlSink(TextSink):
    """One compact JSON object per frame; each line is one write, so an interrupted run leaves
    only complete lines behind."""

    def format(self, record: FrameRecord) -> str:
        return record.json + "\n"
