"""Soak: resident memory over 100,000 ``Engine.predict`` calls ("fast" model, caller boxes).

Each call preprocesses two faces from a 640x480 frame and runs the model, as a tracker-driven
stream does. RSS is sampled every 10,000 calls after a warm-up; the run fails if it grows by more
than 16 MiB between the first and the last sample (a leak of even 200 bytes a call would show).
``FERFAST_SOAK_CALLS`` changes the number of calls.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from ferfast import Engine

CALLS = int(os.environ.get("FERFAST_SOAK_CALLS", "100000"))
SAMPLE_EVERY = max(1, CALLS // 10)
MAX_GROWTH = 16 << 20


def rss_bytes() -> int:
    """Resident set size of this process (Linux /proc)."""
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
def test_predict_soak_rss(benchmark) -> None:
    engine = Engine("fast", detector=None)
    frame = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    boxes = np.array([[100.0, 80.0, 120.0, 150.0], [380.0, 120.0, 110.0, 140.0]])
    for _ in range(2000):  # warm-up: thread-local buffers, ORT arenas
        engine.predict(frame, boxes=boxes)
    samples: list[tuple[int, int]] = []

    def soak() -> None:
        samples.append((0, rss_bytes()))
        for i in range(1, CALLS + 1):
            results = engine.predict(frame, boxes=boxes)
            if i % SAMPLE_EVERY == 0:
                samples.append((i, rss_bytes()))
        assert len(results) == 2

    t0 = time.perf_counter()
    benchmark.pedantic(soak, rounds=1, iterations=1)
    seconds = time.perf_counter() - t0
    growth = samples[-1][1] - samples[0][1]
    benchmark.group = "soak"
    benchmark.extra_info.update(
        calls=CALLS,
        us_per_call=round(seconds / CALLS * 1e6, 1),
        rss_mib=[round(r / 2**20, 1) for _, r in samples],
        growth_mib=round(growth / 2**20, 2),
    )
    print(
        f"\nsoak: {CALLS} predict calls in {seconds:.1f} s ({seconds / CALLS * 1e6:.1f} µs/call), "
        f"RSS MiB {' '.join(f'{r / 2**20:.1f}' for _, r in samples)}, growth {growth / 2**20:+.2f}"
    )
    assert growth <= MAX_GROWTH, f"RSS grew by {growth / 2**20:.1f} MiB over {CALLS} calls"
