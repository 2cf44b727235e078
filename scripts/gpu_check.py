"""GPU checks behind scripts/gpu-check.sh; each part prints PASS, FAIL or SKIP with a reason.

1. CUDA preprocess (``_core.preprocess_cuda``) against the CPU kernel on real photos.
2. Each GPU backend (ONNX Runtime CUDA provider; the native TensorRT runtime on an INT8 engine
   built here) against the CPU INT8 model on 1,000 FER2013 test faces: argmax agreement >= 99%.
3. Latency per face at batch 1 and 64 on each backend (CPU included for scale).

Exit status: 1 when a check that ran failed, else 0 (skips included).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

import ferfast
from ferfast import _core
from ferfast.detect import YuNetDetector
from ferfast.framing import FRAMING
from ferfast.ort import OrtRunner
from ferfast.runner import Runner
from ferfast.runtime import make_runner
from ferfast.tensorrt.gpu import cuda_device_count

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PREPROCESS_ATOL = 1e-5  # the kernels agree to float rounding (tests/test_cuda.py)
MIN_AGREEMENT = 0.99

Float32 = npt.NDArray[np.float32]
failures: list[str] = []


def report(part: str, status: str, detail: str) -> None:
    print(f"[{status}] {part}: {detail}", flush=True)
    if status == "FAIL":
        failures.append(part)


def check_preprocess(photos: Path, yunet: Path) -> None:
    part = "CUDA preprocess vs CPU"
    if not getattr(_core, "WITH_CUDA", False):
        return report(part, "SKIP", "ferfast._core was built without CUDA (no nvcc at build time)")
    if _core.cuda_device_count() == 0:
        return report(part, "SKIP", "no CUDA GPU visible to ferfast._core")
    if not yunet.is_file() or not photos.is_dir():
        return report(part, "SKIP", f"missing {yunet} or {photos}")
    detector = YuNetDetector(yunet)
    worst, faces = 0.0, 0
    for path in sorted(photos.iterdir()):
        frame = cv2.imread(str(path))
        if frame is None:
            continue
        dets = detector.detect(frame)
        if not dets:
            continue
        boxes = np.array([d.box for d in dets], np.float64)
        lms = np.array([d.landmarks for d in dets], np.float32)
        for landmarks in (None, lms):
            cpu = ferfast.preprocess(frame, boxes, landmarks=landmarks, framing=FRAMING)
            gpu = _core.preprocess_cuda(
                frame,
                boxes,
                None,
                landmarks,
                FRAMING.margin,
                FRAMING.offset_x,
                FRAMING.offset_y,
                FRAMING.eye_left,
                FRAMING.eye_right,
                FRAMING.input_scale,
                FRAMING.input_bias,
            )
            worst = max(worst, float(np.abs(cpu - gpu).max()))
        faces += len(dets)
    status = "PASS" if faces and worst <= PREPROCESS_ATOL else "FAIL"
    report(part, status, f"{faces} faces, max |gpu - cpu| = {worst:.2e} (limit {PREPROCESS_ATOL})")


def load_faces(root: Path, n: int) -> npt.NDArray[np.uint8]:
    """n test faces (48x48 gray), a fixed sample over all classes."""
    files = sorted(root.glob("*/*.jpg")) + sorted(root.glob("*/*.png"))
    pick = np.random.default_rng(0).permutation(len(files))[:n]
    return np.stack([cv2.imread(str(files[i]), cv2.IMREAD_GRAYSCALE) for i in sorted(pick)])


def as_batch(faces: npt.NDArray[np.uint8], runner: Runner) -> Float32:
    buf = runner.new_input_buffer(len(faces))
    np.multiply(faces[:, None], np.float32(runner.input_scale), out=buf, casting="unsafe")
    buf += np.float32(runner.input_bias)
    return buf


def gpu_runners(tmp: Path) -> dict[str, Callable[[], Runner]]:
    """The GPU backends to try, by name; each factory raises with a reason when unavailable."""

    def engine_runner() -> Runner:
        from ferfast.tensorrt import build_engine, tensorrt_available

        if not tensorrt_available():
            raise RuntimeError("the tensorrt Python package is not installed")
        out = tmp / "int8.engine"
        build_engine(ferfast.model_path("fast"), out, precision="int8", max_batch=64)
        return make_runner(out, "tensorrt")

    return {
        "onnxruntime cuda (int8)": lambda: make_runner("fast", "cuda"),
        "tensorrt engine (int8)": engine_runner,
    }


def latency_ms(runner: Runner, faces: npt.NDArray[np.uint8], batch: int) -> float:
    """Median milliseconds per face for batches of ``batch`` faces."""
    x = as_batch(faces[:batch], runner)
    for _ in range(5):
        runner.run(x)
    times = []
    for _ in range(30):
        t0 = time.perf_counter()
        runner.run(x)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3 / batch


def check_backends(test_dir: Path, n: int) -> None:
    if not test_dir.is_dir():
        return report("GPU backends", "SKIP", f"no FER2013 test images at {test_dir}")
    faces = load_faces(test_dir, n)
    cpu = OrtRunner(ferfast.model_path("fast"))
    ref = cpu.run(as_batch(faces, cpu))
    print(
        f"[INFO] cpu int8: {latency_ms(cpu, faces, 1):.3f} ms/face at batch 1, "
        f"{latency_ms(cpu, faces, 64):.3f} ms/face at batch 64",
        flush=True,
    )
    gpus = cuda_device_count()
    with tempfile.TemporaryDirectory(prefix="ferfast-gpu-check-") as tmp:
        for name, factory in gpu_runners(Path(tmp)).items():
            part = f"{name} vs cpu int8"
            if gpus == 0:
                report(part, "SKIP", "no NVIDIA GPU/driver (libcuda reports no device)")
                continue
            try:
                runner = factory()
            except (RuntimeError, ImportError) as exc:
                report(part, "SKIP", str(exc))
                continue
            probs = runner.run(as_batch(faces, runner))
            agree = float((probs.argmax(1) == ref.argmax(1)).mean())
            diff = float(np.abs(probs - ref).max())
            status = "PASS" if agree >= MIN_AGREEMENT else "FAIL"
            report(
                part,
                status,
                f"{len(faces)} faces, argmax agreement {agree:.2%} (min {MIN_AGREEMENT:.0%}), "
                f"max |dp| {diff:.4f}; {latency_ms(runner, faces, 1):.3f} ms/face at batch 1, "
                f"{latency_ms(runner, faces, 64):.3f} ms/face at batch 64",
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=SHARED, help="the shared data folder")
    parser.add_argument("--faces", type=int, default=1000, help="test faces (default 1000)")
    args = parser.parse_args(argv)
    check_preprocess(
        args.shared / "data" / "photos",
        args.shared / "models" / "face_detection_yunet_2026may.onnx",
    )
    check_backends(args.shared / "data" / "fer2013" / "test", args.faces)
    print(f"gpu-check: {len(failures)} failed" + (f" ({', '.join(failures)})" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
