"""Markdown for the method table (``docs/int8.md``) and the model card's INT8 section."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ferfast.sysinfo import cpu_info

from .pipeline import ModelEval


@dataclass(frozen=True)
class Row:
    """One line of the comparison: a variant's recipe, its evaluation and its accuracy loss."""

    variant: str
    recipe: str
    result: ModelEval
    loss: float | None  # fp32 accuracy - this accuracy, in points (None for fp32 itself)


def _fmt(v: float | None, nd: int = 2) -> str:
    return "-" if v is None else f"{v:.{nd}f}"


def method_table(rows: list[Row]) -> str:
    """Markdown table: accuracy, macro-F1, agreement with fp32, loss, per-face latency."""
    batches = sorted({b for r in rows for b in r.result.latency})
    head = ["variant", "PublicTest acc %", "macro-F1 %", "agree w/ fp32 %", "loss (pts)"]
    head += [f"ms/face b{b}" for b in batches]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        s = r.result.scores
        cells = [r.variant, _fmt(s.accuracy), _fmt(s.macro_f1), _fmt(s.agreement), _fmt(r.loss)]
        for b in batches:
            lat = r.result.latency.get(b)
            cells.append("-" if lat is None else f"{lat.median_ms_per_face:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine() -> str:
    """Short description of the CPU the numbers were measured on."""
    return cpu_info().model


def replace_section(path: Path, tag: str, body: str, heading: str | None = None) -> None:
    """Put ``body`` between ``<!-- tag:begin/end -->`` markers in ``path`` (appended if new)."""
    begin, end = f"<!-- {tag}:begin -->", f"<!-- {tag}:end -->"
    block = f"{begin}\n{body.strip()}\n{end}"
    text = path.read_text() if path.is_file() else ""
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    lines = text.splitlines(keepends=True)
    at = next((i for i, ln in enumerate(lines) if heading and ln.rstrip() == heading), None)
    if pattern.search(text):
        text = pattern.sub(lambda _m: block, text)
    elif at is not None:  # an existing heading: its placeholder text up to the next heading goes
        end_at = next(
            (j for j in range(at + 1, len(lines)) if lines[j].startswith("#")), len(lines)
        )
        tail = "".join(lines[end_at:])
        text = "".join(lines[: at + 1]) + "\n" + block + "\n" + ("\n" + tail if tail else "")
    else:
        if text and not text.endswith("\n"):
            text += "\n"
        text += ("\n" if text else "") + (f"{heading}\n\n" if heading else "") + block + "\n"
    path.write_text(text)
