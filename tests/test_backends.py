"""Backend selection (auto / cpu / cuda / tensorrt) and the messages of unavailable backends.

This machine has the CPU onnxruntime wheel and no GPU: GPU providers and devices are simulated by
monkeypatching ``onnxruntime.get_available_providers`` and ``cuda_device_count``. A GPU session
really created here falls back to the CPU, which is exactly what the fallback check must catch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime
import pytest

import ferfast.engine
import ferfast.ort
from ferfast import Engine
from ferfast.framing import Framing
from ferfast.labels import EMOTIONS
from ferfast.ort import OrtRunner
from ferfast.preprocess import preprocess
from ferfast.runner import BackendUnavailableError, frame_runner
from ferfast.runtime import make_runner, select_backend
from ferfast.tensorrt import gpu

CPU_ONLY = ["CPUExecutionProvider"]
GPU_BUILD = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


@pytest.fixture()
def simulate(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """simulate(providers, gpus): what ONNX Runtime offers and how many GPUs the driver sees."""

    def set_up(providers: list[str], gpus: int) -> None:
        monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: list(providers))
        monkeypatch.setattr(gpu, "cuda_device_count", lambda: gpus)
        monkeypatch.setattr(onnxruntime, "preload_dlls", lambda: None, raising=False)

    return set_up


@pytest.mark.parametrize(
    ("providers", "gpus", "expected"),
    [
        (CPU_ONLY, 0, "cpu"),
        (CPU_ONLY, 1, "cpu"),  # a GPU, but the CPU wheel
        (GPU_BUILD, 0, "cpu"),  # onnxruntime-gpu lists CUDA even without a GPU
        (GPU_BUILD, 1, "cuda"),
    ],
)
def test_auto_picks_cuda_only_with_provider_and_gpu(
    simulate, tiny_model: Path, providers: list[str], gpus: int, expected: str
) -> None:
    simulate(providers, gpus)
    assert select_backend("auto", tiny_model) == expected


def test_explicit_backends_and_alias(tiny_model: Path, tmp_path: Path) -> None:
    engine_file = tmp_path / "m.engine"
    assert select_backend("auto", engine_file) == "tensorrt"
    assert select_backend("tensorrt", engine_file) == "tensorrt"
    assert select_backend("onnxruntime", tiny_model) == "cpu"
    for backend in ("cpu", "cuda", "tensorrt"):
        assert select_backend(backend, tiny_model) == backend
    with pytest.raises(ValueError, match="one of auto, cpu, cuda, tensorrt, onnxruntime"):
        select_backend("CUDA", tiny_model)


def test_auto_on_this_machine_is_the_cpu_runner(tiny_model: Path) -> None:
    runner = make_runner(tiny_model)
    assert isinstance(runner, OrtRunner)
    assert runner.provider == "cpu"
    assert runner.session.get_providers() == ["CPUExecutionProvider"]


def test_cuda_without_gpu_wheel_names_the_extra(simulate, tiny_model: Path) -> None:
    simulate(CPU_ONLY, 1)
    with pytest.raises(BackendUnavailableError) as info:
        make_runner(tiny_model, "cuda")
    msg = str(info.value)
    assert "'cuda' (--backend / backend=)" in msg
    assert "CUDAExecutionProvider" in msg and "providers: CPUExecutionProvider" in msg
    assert "pip install 'ferfast[gpu]'" in msg and "onnxruntime-gpu" in msg
    assert "pip uninstall -y onnxruntime" in msg


def test_both_wheels_installed_says_how_to_repair(
    simulate, monkeypatch: pytest.MonkeyPatch, tiny_model: Path
) -> None:
    simulate(CPU_ONLY, 1)
    monkeypatch.setattr(
        ferfast.ort, "_ort_distributions", lambda: ["onnxruntime", "onnxruntime-gpu"]
    )
    with pytest.raises(BackendUnavailableError, match="both onnxruntime and onnxruntime-gpu"):
        make_runner(tiny_model, "cuda")


def test_tensorrt_provider_missing(simulate, tiny_model: Path) -> None:
    simulate(["CUDAExecutionProvider", "CPUExecutionProvider"], 1)
    with pytest.raises(
        BackendUnavailableError, match="TensorrtExecutionProvider.*ferfast\\[gpu\\]"
    ):
        make_runner(tiny_model, "tensorrt")


@pytest.mark.parametrize("backend", ["cuda", "tensorrt"])
def test_gpu_backend_without_gpu(simulate, tiny_model: Path, backend: str) -> None:
    simulate(GPU_BUILD, 0)
    with pytest.raises(BackendUnavailableError, match="needs an NVIDIA GPU with its driver"):
        make_runner(tiny_model, backend)


@pytest.mark.filterwarnings("ignore:Specified provider")
@pytest.mark.parametrize(
    ("backend", "libraries"),
    [("cuda", "CUDA 12 and cuDNN 9"), ("tensorrt", "TensorRT libraries")],
)
def test_gpu_session_falling_back_to_cpu_is_an_error(
    simulate, tiny_model: Path, backend: str, libraries: str
) -> None:
    """ONNX Runtime quietly runs on the CPU when a GPU provider cannot start; ferfast refuses."""
    simulate(GPU_BUILD, 1)
    with pytest.raises(BackendUnavailableError) as info:
        make_runner(tiny_model, backend)
    msg = str(info.value)
    assert "fell back to CPUExecutionProvider" in msg and libraries in msg
    assert "use backend 'cpu'" in msg


@pytest.mark.filterwarnings("ignore:Specified provider")
def test_auto_falls_back_to_cpu_with_one_warning(simulate, tiny_model: Path) -> None:
    simulate(GPU_BUILD, 1)
    with pytest.warns(RuntimeWarning, match="could not start CUDAExecutionProvider.*on the CPU"):
        runner = make_runner(tiny_model, "auto")
    assert isinstance(runner, OrtRunner) and runner.provider == "cpu"


def test_tensorrt_engine_without_tensorrt(tmp_path: Path) -> None:
    from ferfast.tensorrt import tensorrt_available
    from ferfast.tensorrt.header import EngineHeader, write_engine

    if tensorrt_available():
        pytest.skip("tensorrt is installed here")
    header = EngineHeader("10.0.0", "Some GPU", "8.7", "int8", EMOTIONS)
    path = write_engine(tmp_path / "m.engine", header, b"plan")
    with pytest.raises(BackendUnavailableError, match="TensorRT backend is unavailable"):
        make_runner(path, "tensorrt")


@pytest.mark.skipif(
    "CUDAExecutionProvider" not in onnxruntime.get_available_providers()
    or gpu.cuda_device_count() == 0,
    reason="needs onnxruntime-gpu and an NVIDIA GPU (scripts/gpu-check.sh runs it on one)",
)
def test_cuda_session_matches_cpu(tiny_model: Path) -> None:
    cuda, cpu = make_runner(tiny_model, "cuda"), make_runner(tiny_model, "cpu")
    x = np.random.default_rng(0).random((5, 1, 48, 48), dtype=np.float32)
    np.testing.assert_allclose(cuda.run(x), cpu.run(x), atol=1e-4)


# ---- Engine hands frames to a runner that preprocesses them itself ---------------------------


class FakeFrameRunner:
    """An OrtRunner that takes frames (CPU preprocess standing in for the GPU kernel)."""

    gpu_preprocessing = True

    def __init__(self, path: Path) -> None:
        self.inner = OrtRunner(path, threads=1)
        self.emotions = self.inner.emotions
        self.input_scale = self.inner.input_scale
        self.input_bias = self.inner.input_bias
        self.frames: list[int] = []
        self.batches = 0

    def new_input_buffer(self, n: int) -> npt.NDArray[np.float32]:
        return self.inner.new_input_buffer(n)

    def run(self, batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        self.batches += 1
        return self.inner.run(batch)

    def run_frame(
        self,
        frame: npt.NDArray[np.uint8],
        boxes: npt.ArrayLike,
        landmarks: npt.ArrayLike | None = None,
        framing: Framing | None = None,
    ) -> npt.NDArray[np.float32]:
        assert framing is not None
        box_arr = np.asarray(boxes)
        self.frames.append(len(box_arr))
        return self.inner.run(preprocess(frame, box_arr, landmarks=landmarks, framing=framing))


def _frame(seed: int) -> npt.NDArray[np.uint8]:
    return np.random.default_rng(seed).integers(0, 256, (120, 160, 3), dtype=np.uint8)


BOXES = np.array([[10, 10, 50, 60], [80, 30, 40, 40]], dtype=np.float64)


def test_engine_hands_frames_to_a_frame_runner(
    monkeypatch: pytest.MonkeyPatch, tiny_model: Path
) -> None:
    cpu = Engine(tiny_model, detector=None)
    fake = FakeFrameRunner(tiny_model)
    monkeypatch.setattr(ferfast.engine, "make_runner", lambda *a, **k: fake)
    gpu_engine = Engine(tiny_model, detector=None)
    assert frame_runner(gpu_engine.runner) is fake
    frame = _frame(1)
    got, want = gpu_engine.predict(frame, BOXES), cpu.predict(frame, BOXES)
    assert fake.frames == [2] and fake.batches == 0
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a.probs, b.probs, rtol=1e-6, atol=1e-7)
        assert a.emotion == b.emotion and a.box == b.box
    assert len(gpu_engine.predict(frame, np.empty((0, 4)))) == 0
    assert fake.frames == [2]
    # crops=True needs the model input on the host: that call preprocesses on the CPU.
    with_crops = gpu_engine.predict(frame, BOXES, crops=True)
    assert fake.batches == 1 and with_crops[0].crop is not None


def test_frame_runner_needs_gpu_preprocessing(tiny_model: Path) -> None:
    assert frame_runner(OrtRunner(tiny_model)) is None
    fake = FakeFrameRunner(tiny_model)
    fake.gpu_preprocessing = False
    assert frame_runner(fake) is None
