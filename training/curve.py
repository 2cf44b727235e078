"""The accuracy-latency curve of the measured models as a picture (docs/accuracy_latency.png).

    python -m training.curve [--records training/ensembles] [--out docs/accuracy_latency.png]

Reads every row recorded by ``python -m training.ensemble evaluate --record`` (the rows of the
table in docs/comparison.md, :func:`training.tables.ensembles_table`), skips rows without a
latency, and plots PublicTest accuracy against latency per face at batch 1 (log scale): INT8
points filled, fp32 hollow, the shipped models as stars, the Pareto front over the INT8 rows as a
step line and the product targets (:data:`ferfast.models.TARGETS`) as shaded goal regions.
Prints the PNG's path. The PNG carries no timestamp or software version, so the same records
give the same bytes.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator  # noqa: E402
from matplotlib.transforms import Bbox  # noqa: E402

from ferfast.models import TARGETS, Target  # noqa: E402

from .ensemble import ENSEMBLES, EnsembleRow  # noqa: E402
from .paths import REPO  # noqa: E402

SHIPPED_PREFIXES = ("fast (shipped", "accurate (shipped")
OUT = REPO / "docs" / "accuracy_latency.png"

_TARGET_COLOURS = ("tab:green", "tab:blue")
_TICKS_MS = (0.1, 0.15, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3, 5, 7, 10, 20, 50, 100)


def pareto_front(points: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (latency, accuracy) points that no faster-or-equal point matches in accuracy, by
    latency: read as a step function, the best accuracy reachable at or below each latency."""
    front: list[tuple[float, float]] = []
    # Equal latencies: the most accurate one first, so the others are dominated.
    for lat, acc in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or acc > front[-1][1]:
            front.append((lat, acc))
    return front


def is_shipped(name: str) -> bool:
    return name.startswith(SHIPPED_PREFIXES)


def _has_latency(row: EnsembleRow) -> bool:
    return bool(row.latency) and row.latency.get("b1_ms") is not None


def _colour(name: str) -> str:
    if is_shipped(name):
        return "tab:red"
    if name.startswith("peer"):
        return "dimgray"
    if name.startswith("teacher"):
        return "tab:purple"
    return "tab:blue"


def _overlap(a: Bbox, b: Bbox) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


# Label offsets from the point in typographic points, nearest first; (dx, dy, ha, va).
_OFFSETS = [
    (5, 3, "left", "bottom"),
    (5, -3, "left", "top"),
    (-5, 3, "right", "bottom"),
    (-5, -3, "right", "top"),
    (0, 7, "center", "bottom"),
    (0, -7, "center", "top"),
    (8, 0, "left", "center"),
    (-8, 0, "right", "center"),
    (6, 12, "left", "bottom"),
    (6, -12, "left", "top"),
    (-6, 12, "right", "bottom"),
    (-6, -12, "right", "top"),
    (0, 18, "center", "bottom"),
    (0, -18, "center", "top"),
    (14, 22, "left", "bottom"),
    (14, -22, "left", "top"),
    (-14, 22, "right", "bottom"),
    (-14, -22, "right", "top"),
]


def _place_labels(
    ax: Any,
    fig: Any,
    labels: Sequence[tuple[float, float, str, float]],
    avoid: Sequence[Any],
    segments: Sequence[tuple[tuple[float, float], tuple[float, float]]] = (),
) -> None:
    """Annotate each (x, y, text, marker radius in points) at the first offset whose text box
    stays inside the axes and clear of every marker, of the ``avoid`` artists (legend, goal
    captions), of the axis-aligned line ``segments`` (data coordinates) and of the labels
    already placed; the least overlap if none is clear.
    Deterministic: the same labels in the same order give the same places."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    px = fig.dpi / 72  # pixels per point
    obstacles = [a.get_window_extent(renderer).padded(2.0) for a in avoid]
    for a, b in segments:
        (x0, y0), (x1, y1) = ax.transData.transform(a), ax.transData.transform(b)
        obstacles.append(Bbox.from_extents(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
        obstacles[-1] = obstacles[-1].padded(1.5)
    for x, y, _, radius in labels:
        cx, cy = ax.transData.transform((x, y))
        r = radius * px
        obstacles.append(Bbox.from_extents(cx - r, cy - r, cx + r, cy + r))
    for x, y, text, radius in labels:
        best: tuple[float, Any] | None = None
        for dx, dy, ha, va in _OFFSETS:
            # Offsets grow with the marker, so a star's label starts clear of it.
            grow = max(radius - 3.5, 0)
            dx2 = dx + (grow if dx > 0 else -grow if dx < 0 else 0)
            dy2 = dy + (grow if dy > 0 else -grow if dy < 0 else 0)
            far = abs(dx) + abs(dy) > 15
            ann = ax.annotate(
                text,
                (x, y),
                xytext=(dx2, dy2),
                textcoords="offset points",
                ha=ha,
                va=va,
                fontsize=6.5,
                color="0.15",
                zorder=6,
                # A lighter ground, so that a line crossing a label leaves it readable.
                bbox=dict(boxstyle="square,pad=0.1", fc="white", ec="none", alpha=0.7),
                arrowprops=(
                    dict(arrowstyle="-", color="0.55", lw=0.5, shrinkA=0, shrinkB=radius)
                    if far
                    else None
                ),
            )
            box = ann.get_window_extent(renderer).padded(1.0)
            cost = sum(_overlap(box, o) for o in obstacles)
            cost += 10 * (box.width * box.height - _overlap(box, frame))
            if best is None or cost < best[0]:
                if best is not None:
                    best[1].remove()
                best = (cost, ann)
            else:
                ann.remove()
            if cost == 0:
                break
        assert best is not None
        obstacles.append(best[1].get_window_extent(renderer).padded(1.0))


def plot_curve(
    rows: Sequence[EnsembleRow],
    out_png: str | Path,
    targets: Sequence[Target] = TARGETS,
) -> Path:
    """Write the accuracy-latency plot of ``rows`` (those with a latency) to ``out_png``."""
    rows = [r for r in rows if _has_latency(r)]
    if not rows:
        raise ValueError("no rows with a latency to plot (training/ensembles/*.json records)")
    out = Path(out_png)
    xs = [float(r.latency["b1_ms"]) for r in rows]
    ys = [100 * float(r.publictest["accuracy"]) for r in rows]

    x_lo = min([*xs, *(t.b1_ms for t in targets)]) / 1.5
    x_hi = max([*xs, *(t.b1_ms for t in targets)]) * 1.6
    y_lo = min([*ys, *(100 * t.accuracy for t in targets)]) - 0.8
    y_hi = max([*ys, *(100 * t.accuracy for t in targets)]) + 0.9

    fig, ax = plt.subplots(figsize=(9, 5.8), dpi=100)
    ax.set_xscale("log")
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(y_lo, y_hi)

    captions = []
    for t, colour in zip(targets, _TARGET_COLOURS * len(targets), strict=False):
        ax.fill_between(
            [x_lo, t.b1_ms], 100 * t.accuracy, y_hi, color=colour, alpha=0.09, lw=0, zorder=0
        )
        ax.plot(
            [x_lo, t.b1_ms, t.b1_ms],
            [100 * t.accuracy, 100 * t.accuracy, y_hi],
            color=colour,
            lw=1,
            ls="--",
            alpha=0.7,
            zorder=1,
        )
        # x in data, y in axes fraction: the caption sits under the top edge at any scale.
        caption = ax.text(
            t.b1_ms / 1.03,
            0.985,
            f"{t.family} goal\n≥ {100 * t.accuracy:g} %, ≤ {t.b1_ms:g} ms",
            ha="right",
            va="top",
            fontsize=7.5,
            color=colour,
            fontweight="bold",
            zorder=2,
            transform=ax.get_xaxis_transform(),
        )
        captions.append(caption)

    # The two precisions of one model: a faint link shows what INT8 buys.
    by_name: dict[str, dict[str, tuple[float, float]]] = {}
    for r, x, y in zip(rows, xs, ys, strict=True):
        by_name.setdefault(r.name, {})[r.precision] = (x, y)
    for pair in by_name.values():
        if "fp32" in pair and "int8" in pair:
            (x0, y0), (x1, y1) = pair["fp32"], pair["int8"]
            ax.plot([x0, x1], [y0, y1], color="0.7", lw=0.7, ls=":", zorder=2)

    front = pareto_front(
        (x, y) for r, x, y in zip(rows, xs, ys, strict=True) if r.precision == "int8"
    )
    # The step runs on to the right edge: a slower budget still reaches the last accuracy.
    fx = [p[0] for p in front] + ([x_hi] if front else [])
    fy = [p[1] for p in front] + ([front[-1][1]] if front else [])
    if front:
        ax.step(fx, fy, where="post", color="tab:orange", lw=1.6, alpha=0.9, zorder=3)
    steps = [((fx[i], fy[i]), (fx[i + 1], fy[i])) for i in range(len(front))]
    steps += [((fx[i], fy[i - 1]), (fx[i], fy[i])) for i in range(1, len(front))]

    for r, x, y in zip(rows, xs, ys, strict=True):
        colour = _colour(r.name)
        star = is_shipped(r.name)
        ax.scatter(
            [x],
            [y],
            marker="*" if star else "o",
            s=150 if star else 36,
            facecolors=colour if r.precision == "int8" else "white",
            edgecolors=colour,
            linewidths=1.3,
            zorder=5 if star else 4,
        )

    ticks = [t for t in _TICKS_MS if x_lo <= t <= x_hi]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticklabels([f"{t:g}" for t in ticks])
    ax.set_xlabel("latency per face at batch 1 (ms, log scale)")
    ax.set_ylabel("PublicTest accuracy (%)")
    ax.grid(alpha=0.25, which="major")

    threads = sorted({r.latency.get("threads") for r in rows}, key=str)
    runtime = "ONNX Runtime CPU" + (
        f", {threads[0]} threads" if len(threads) == 1 and threads[0] else ""
    )
    n = sorted({r.publictest.get("n") for r in rows}, key=str)
    faces = f" ({n[0]:,} faces)" if len(n) == 1 and n[0] else ""
    # The machine most rows were measured on heads the plot; a row timed elsewhere (a peer on
    # its own runtime) says so in its label.
    machine = min(Counter(r.machine for r in rows).most_common(), key=lambda m: (-m[1], m[0]))[0]
    ax.set_title(
        f"PublicTest accuracy{faces} vs latency: INT8 and fp32, {runtime}"
        + (f"\n{machine}; a label names any other machine or runtime" if machine else ""),
        fontsize=10,
    )

    legend = [
        Line2D([], [], marker="o", ls="", color="tab:blue", label="INT8 (filled)"),
        Line2D([], [], marker="o", ls="", mfc="white", color="tab:blue", label="fp32 (hollow)"),
        Line2D([], [], marker="*", ls="", ms=11, color="tab:red", label="shipped"),
        Line2D([], [], marker="o", ls="", color="tab:purple", label="teacher"),
        Line2D([], [], marker="o", ls="", color="dimgray", label="peer"),
        Line2D([], [], color="tab:orange", lw=1.6, label="Pareto front (INT8)"),
        Line2D([], [], color="0.7", lw=0.7, ls=":", label="same model, fp32 ↔ INT8"),
    ]
    key = ax.legend(handles=legend, loc="lower right", fontsize=7, framealpha=0.9)
    fig.tight_layout()

    labels = sorted(
        (
            (
                x,
                y,
                r.name + (f"\n({r.machine})" if r.machine != machine else ""),
                6.5 if is_shipped(r.name) else 3.5,
            )
            for r, x, y in zip(rows, xs, ys, strict=True)
        ),
        key=lambda p: (not is_shipped(p[2]), p[0], p[1]),
    )
    _place_labels(ax, fig, labels, [key, *captions], steps)

    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return out


def read_rows(records: str | Path) -> list[EnsembleRow]:
    """Every record under ``records`` (``*.json``, by file name)."""
    return [EnsembleRow.read(p) for p in sorted(Path(records).glob("*.json"))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m training.curve",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--records", default=str(ENSEMBLES), help="folder of *.json rows")
    ap.add_argument("--out", default=str(OUT), help="PNG to write")
    a = ap.parse_args(argv)
    rows = read_rows(a.records)
    for r in rows:
        if not _has_latency(r):
            print(f"skipped {r.name!r} ({r.precision}): no latency", file=sys.stderr)
    out = plot_curve([r for r in rows if _has_latency(r)], a.out)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
