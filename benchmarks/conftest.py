"""Benchmark suite setup (``pytest benchmarks/``).

Skips the suite cleanly when
pytest-benchmark is not installed, and prints a speed-ratio summary
for groups that record a baseline through the ``speedup`` fixture (e.g. ferfast.preprocess vs the
OpenCV path), measured in the same session.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

try:
    import pytest_benchmark  # noqa: F401
except ImportError:  # pragma: no cover - only without the bench extra
    collect_ignore_glob = ["test_*.py"]


@dataclass
class SpeedupRegistry:
    """Median times per benchmark group; one entry per group is the baseline."""

    medians: dict[str, dict[str, float]] = field(default_factory=dict)
    baselines: dict[str, str] = field(default_factory=dict)

    def record(self, benchmark, label: str, baseline: bool = False) -> None:
        """Record the median of a finished ``benchmark(...)`` run under its group."""
        stats = getattr(getattr(benchmark, "stats", None), "stats", None)
        if stats is None:  # --benchmark-disable
            return
        group = benchmark.group or "default"
        self.medians.setdefault(group, {})[label] = float(stats.median)
        if baseline:
            self.baselines[group] = label


_REGISTRY = SpeedupRegistry()


@pytest.fixture
def speedup() -> SpeedupRegistry:
    """Registry for speed ratios printed at the end of the session."""
    return _REGISTRY


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ARG001
    lines = []
    for group, base_label in _REGISTRY.baselines.items():
        medians = _REGISTRY.medians.get(group, {})
        base = medians.get(base_label)
        if not base:
            continue
        for label, median in medians.items():
            if label == base_label:
                continue
            lines.append(
                f"{group}: {label} {median * 1e6:.1f} us vs {base_label} {base * 1e6:.1f} us "
                f"(median) -> {base / median:.1f}x faster"
            )
    if lines:
        terminalreporter.section("speedup (same session)")
        for line in lines:
            terminalreporter.write_line(line)
