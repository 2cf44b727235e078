"""training.curve: the accuracy-latency picture of the recorded rows (PNG written, deterministic,
rows without latency skipped), the Pareto front, and refusal of an empty input."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

from training.curve import main, pareto_front, plot_curve, read_rows  # noqa: E402
from training.ensemble import EnsembleRow  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _row(name: str, precision: str, accuracy: float, b1_ms: float | None) -> EnsembleRow:
    latency = (
        {"b1_ms": b1_ms, "b64_ms_per_face": b1_ms / 2, "threads": 2, "repeats": [5, 2]}
        if b1_ms is not None
        else {}
    )
    return EnsembleRow(
        name=name,
        file=f"runs/{name}.onnx",
        arch="f",
        precision=precision,
        sha256="0" * 64,
        publictest={"accuracy": accuracy, "macro_f1": 0.6, "disgust_recall": 0.5, "n": 3589},
        latency=latency,
        commands=[],
        date="2026-01-01 00:00 UTC",
        machine="test CPU, ORT 1.0",
    )


ROWS = [
    _row("fast (shipped f v2)", "int8", 0.691, 0.15),
    _row("fast (shipped f v2)", "fp32", 0.6913, 0.29),
    _row("accurate (shipped: fast + t1_90)", "int8", 0.6996, 0.9),
    _row("f v1", "int8", 0.6826, 0.152),
    _row("big ensemble +flip", "int8", 0.7072, 1.3),
    _row("teacher t1", "fp32", 0.6656, 1.77),
]


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE
    assert head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def test_pareto_front_keeps_the_best_accuracy_at_each_latency():
    points = [
        (1.0, 70.0),
        (0.2, 68.0),
        (0.5, 67.0),  # slower and less accurate than (0.2, 68): dominated
        (0.5, 69.0),
        (0.5, 68.5),  # same latency, less accurate: dominated
        (2.0, 69.5),  # slower than (1.0, 70): dominated
        (3.0, 71.0),
        (0.1, 68.0),  # as accurate as (0.2, 68) and faster: displaces it
    ]
    assert pareto_front(points) == [(0.1, 68.0), (0.5, 69.0), (1.0, 70.0), (3.0, 71.0)]
    assert pareto_front([]) == []
    assert pareto_front(iter([(1.0, 50.0)])) == [(1.0, 50.0)]


def test_plot_curve_writes_a_deterministic_png(tmp_path):
    out = plot_curve(ROWS, tmp_path / "sub" / "curve.png")
    assert out == tmp_path / "sub" / "curve.png"
    width, height = _png_size(out)
    assert 800 <= width <= 1000 and 450 <= height <= 800
    assert out.stat().st_size > 20_000
    data = out.read_bytes()
    assert b"Software" not in data and b"matplotlib" not in data.lower()
    # Same rows, same bytes: no timestamp or version in the file, label placement is fixed.
    again = plot_curve(ROWS, tmp_path / "again.png")
    assert again.read_bytes() == data


def test_empty_input_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no rows"):
        plot_curve([], tmp_path / "empty.png")
    with pytest.raises(ValueError, match="no rows"):
        plot_curve([_row("untimed", "int8", 0.7, None)], tmp_path / "empty.png")
    assert not (tmp_path / "empty.png").exists()


def test_main_reads_the_records_and_skips_rows_without_latency(tmp_path, capsys):
    records = tmp_path / "records"
    for i, row in enumerate([*ROWS, _row("untimed", "fp32", 0.75, None)]):
        row.write(records / f"{i}.json")
    assert len(read_rows(records)) == len(ROWS) + 1

    out = tmp_path / "docs" / "curve.png"
    assert main(["--records", str(records), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out)
    assert "untimed" in captured.err
    assert _png_size(out)[0] >= 800
