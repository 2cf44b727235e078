"""GPU preprocessing (cpp/cuda): the kernel's math against the CPU kernel, and its Python entry.

Without a GPU the kernel's per-pixel code still runs here: ``_core._preprocess_cuda_emulated`` is
the same source compiled for the host, and a small C++ harness checks it bit for bit against
``preprocess.cpp``. The tests that launch the real kernel skip without a GPU.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from cxx import include_flags

from ferfast import _core

REPO = Path(__file__).resolve().parents[1]
WITH_CUDA = bool(getattr(_core, "WITH_CUDA", False))
GPUS = _core.cuda_device_count() if WITH_CUDA else 0
needs_cuda_build = pytest.mark.skipif(
    not WITH_CUDA,
    reason="ferfast._core was built without CUDA (no nvcc at build time, or FERFAST_WITH_CUDA=OFF)",
)
needs_gpu = pytest.mark.skipif(GPUS == 0, reason="no CUDA GPU on this machine")
# Values are gray/255; the CPU kernel's AVX2+FMA clone may differ from the FMA-free GPU math in
# the last float bit (measured at most 4.2e-7 here), the SSE2 build not at all (test below).
ATOL = 1e-6


def random_case(rng: np.random.Generator, trial: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """A random frame (gray / BGR / BGRA, some flipped or strided views) with faces."""
    h, w = (int(v) for v in rng.integers(20, 300, 2))
    ch = (1, 3, 4)[trial % 3]
    frame = rng.integers(0, 256, (h, w, ch) if ch > 1 else (h, w)).astype(np.uint8)
    if trial % 5 == 0:
        frame = frame[::-1]
    if trial % 7 == 0 and ch > 1:
        frame = frame[:, :, ::-1]
    if trial % 11 == 0:
        frame = frame[:, ::2]
    h, w = frame.shape[:2]
    n = int(rng.integers(1, 4))
    boxes = np.column_stack(
        [
            rng.uniform(-40, w, n),
            rng.uniform(-40, h, n),
            rng.uniform(3, 400, n),
            rng.uniform(3, 400, n),
        ]
    )
    # Every box overlaps the frame (the boundary rejects the others); many stay partly outside.
    boxes[:, 2] = np.maximum(boxes[:, 2], 1.0 - boxes[:, 0])
    boxes[:, 3] = np.maximum(boxes[:, 3], 1.0 - boxes[:, 1])
    kw: dict = {
        "margin": float(rng.uniform(0.8, 1.6)),
        "offset_x": float(rng.uniform(-0.2, 0.2)),
        "offset_y": float(rng.uniform(-0.2, 0.2)),
    }
    if trial % 4 == 3:
        cx, cy = rng.uniform(0, w, n), rng.uniform(0, h, n)
        d, ang = rng.uniform(5, 80, n), rng.uniform(-0.5, 0.5, n)
        lms = np.zeros((n, 5, 2))
        lms[:, 0, 0], lms[:, 0, 1] = cx, cy
        lms[:, 1, 0], lms[:, 1, 1] = cx + d * np.cos(ang), cy + d * np.sin(ang)
        kw["landmarks"] = lms
    return frame, boxes, kw


def test_kernel_math_is_bit_exact_against_baseline_cpu_kernel(tmp_path: Path) -> None:
    """cpp/cuda/pixel.hpp (compiled for the host) == preprocess.cpp's SSE2 path, bit for bit.

    preprocess.cpp clones its loops for AVX2+FMA on x86-64 Linux (target_clones); -U__linux__
    builds the portable baseline only, which is what the FMA-free GPU kernel reproduces.
    """
    cxx = shutil.which("g++")
    if cxx is None:
        pytest.skip("no g++")
    exe = tmp_path / "exact"
    subprocess.run(
        [
            cxx,
            "-std=c++17",
            "-O2",
            "-fno-math-errno",
            "-U__linux__",
            *include_flags(),
            str(REPO / "tests" / "cuda_exact.cpp"),
            str(REPO / "cpp" / "preprocess.cpp"),
            str(REPO / "cpp" / "cuda" / "plan.cpp"),
            "-o",
            str(exe),
        ],
        check=True,
    )
    out = subprocess.run([str(exe), "300"], capture_output=True, text=True, check=True).stdout
    worst, exact, total = out.split()
    assert (float(worst), int(exact), int(total)) == (0.0, 300, 300), out


@needs_cuda_build
def test_emulated_kernel_matches_cpu_preprocess() -> None:
    rng = np.random.default_rng(0)
    worst = 0.0
    for trial in range(120):
        frame, boxes, kw = random_case(rng, trial)
        cpu = _core.preprocess(frame, boxes, **kw)
        emu = _core._preprocess_cuda_emulated(frame, boxes, **kw)
        assert emu.shape == cpu.shape == (len(boxes), 1, 48, 48)
        worst = max(worst, float(np.abs(cpu - emu).max()))
    assert worst <= ATOL


@needs_cuda_build
def test_emulated_kernel_writes_into_out() -> None:
    frame = np.random.default_rng(1).integers(0, 256, (90, 120, 3), dtype=np.uint8)
    boxes = np.array([[10.0, 10.0, 50.0, 60.0], [60.0, 30.0, 20.0, 20.0]])
    out = np.full((5, 1, 48, 48), -1.0, np.float32)
    res = _core._preprocess_cuda_emulated(frame, boxes, out, scale=1 / 128, bias=-1.0)
    assert np.shares_memory(res, out) and res.shape == (2, 1, 48, 48)
    np.testing.assert_allclose(
        out[:2], _core.preprocess(frame, boxes, scale=1 / 128, bias=-1.0), atol=4 * ATOL
    )
    assert (out[2:] == -1.0).all()


@needs_cuda_build
def test_preprocess_cuda_validates_before_touching_the_gpu() -> None:
    frame = np.zeros((40, 40, 3), np.uint8)
    box = np.array([[5.0, 5.0, 20.0, 20.0]])
    with pytest.raises(TypeError, match="uint8"):
        _core.preprocess_cuda(frame.astype(np.float32), box)
    with pytest.raises(TypeError, match="numpy array"):
        _core.preprocess_cuda([[0, 1]], box)
    with pytest.raises(ValueError, match="channels"):
        _core.preprocess_cuda(np.zeros((40, 40, 2), np.uint8), box)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        _core.preprocess_cuda(frame, np.zeros((1, 3)))
    with pytest.raises(ValueError, match="NaN"):
        _core.preprocess_cuda(frame, np.array([[np.nan, 0, 10, 10]]))
    with pytest.raises(ValueError, match="non-positive"):
        _core.preprocess_cuda(frame, np.array([[0.0, 0, 0, 10]]))
    outside = np.array([[40.0, 5, 20, 20]])  # x == W
    with pytest.raises(ValueError, match=r"boxes\[0\] .* entirely outside"):
        _core.preprocess_cuda(frame, outside)
    with pytest.raises(ValueError, match=r"boxes\[0\] .* entirely outside"):
        _core._preprocess_cuda_emulated(frame, outside)
    with pytest.raises(ValueError, match="room"):
        _core.preprocess_cuda(frame, box, np.zeros((0, 1, 48, 48), np.float32))
    with pytest.raises(TypeError, match="float32"):
        _core.preprocess_cuda(frame, box, np.zeros((1, 1, 48, 48)))
    with pytest.raises(ValueError, match="landmarks"):
        _core.preprocess_cuda(frame, box, landmarks=np.zeros((2, 5, 2)))
    with pytest.raises(ValueError, match="margin"):
        _core.preprocess_cuda(frame, box, margin=0.0)


@needs_cuda_build
@pytest.mark.skipif(GPUS > 0, reason="a CUDA GPU is present")
def test_preprocess_cuda_without_gpu_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        _core.preprocess_cuda(np.zeros((40, 40, 3), np.uint8), np.array([[5.0, 5, 20, 20]]))
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        _core.cuda_uses_mapped_frames()
    # no faces: nothing to do, no GPU needed
    assert _core.preprocess_cuda(np.zeros((4, 4), np.uint8), np.zeros((0, 4))).shape == (
        0,
        1,
        48,
        48,
    )


@needs_gpu
def test_gpu_kernel_matches_cpu_preprocess() -> None:
    rng = np.random.default_rng(2)
    for trial in range(60):
        frame, boxes, kw = random_case(rng, trial)
        gpu = _core.preprocess_cuda(frame, boxes, **kw)
        emu = _core._preprocess_cuda_emulated(frame, boxes, **kw)
        np.testing.assert_array_equal(gpu, emu)  # same code, FMA-free on both sides
        np.testing.assert_allclose(gpu, _core.preprocess(frame, boxes, **kw), atol=ATOL)


@needs_gpu
def test_gpu_kernel_out_buffer_and_many_faces() -> None:
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    boxes = np.column_stack(
        [rng.uniform(0, 600, 200), rng.uniform(0, 440, 200), np.full(200, 40.0), np.full(200, 40.0)]
    )
    out = np.empty((256, 1, 48, 48), np.float32)
    res = _core.preprocess_cuda(frame, boxes, out)
    assert np.shares_memory(res, out) and res.shape == (200, 1, 48, 48)
    np.testing.assert_allclose(res, _core.preprocess(frame, boxes), atol=ATOL)
