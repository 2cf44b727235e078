"""The box-mode kernel's code paths and accumulator widths (cpp/preprocess.cpp).

The kernel sums in integers (uint16 up to 257 px crops, wider beyond) and picks AVX2, SSE2 or
plain loops at build / run time; every path must give the same numbers. The C++ harness
tests/cuda_exact.cpp compares the CPU kernel with the GPU kernel's per-pixel code bit for bit;
here it is built with the fallbacks forced on (test_cuda.py builds the default path).
"""

from __future__ import annotations

import platform
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from cxx import include_flags
from test_preprocess import PLAIN, make_frame, reference

from ferfast.preprocess import preprocess

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("side", [255, 257, 258, 321])
def test_crops_around_the_accumulator_width_switch(channels: int, side: int) -> None:
    frame = make_frame(h=340, w=350, c=channels, seed=side)
    box = (7.0, 9.0, float(side), float(side))
    got = preprocess(frame, [box], framing=PLAIN)
    np.testing.assert_allclose(got[0, 0], reference(frame, box, exact=True), rtol=0, atol=2e-5)


@pytest.mark.parametrize("side", [10, 31, 33, 64])
def test_gray_rows_shorter_than_or_just_over_one_vector(side: int) -> None:
    """Gray crops of side < 32 bytes per row, and rows ending just past a 32-byte chunk, at the
    frame's right and bottom edge (no read past the frame's buffer)."""
    frame = make_frame(h=side, w=side, c=1, seed=side)
    box = (0.0, 0.0, float(side), float(side))
    got = preprocess(frame, [box], framing=PLAIN)
    np.testing.assert_allclose(got[0, 0], reference(frame, box, exact=True), rtol=0, atol=2e-5)


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86-64 code paths")
@pytest.mark.parametrize("define", ["FERFAST_NO_AVX2", "FERFAST_PORTABLE"])
def test_fallback_paths_are_bit_exact(tmp_path: Path, define: str) -> None:
    """SSE2 (no AVX2 at run time) and plain-loop builds == the GPU kernel's math, bit for bit."""
    cxx = shutil.which("g++")
    if cxx is None:
        pytest.skip("no g++")
    exe = tmp_path / "exact"
    sources = [REPO / "tests" / "cuda_exact.cpp", REPO / "cpp" / "preprocess.cpp"]
    sources.append(REPO / "cpp" / "cuda" / "plan.cpp")
    cmd = [cxx, "-std=c++17", "-O2", "-fno-math-errno", "-U__linux__", f"-D{define}"]
    cmd += [*include_flags(), *map(str, sources), "-o", str(exe)]
    subprocess.run(cmd, check=True)
    out = subprocess.run([str(exe), "200"], capture_output=True, text=True, check=True).stdout
    worst, exact, total = out.split()
    assert (float(worst), int(exact), int(total)) == (0.0, 200, 200), out
