"""ONNX Runtime runner: model contract checks, metadata, IO-binding correctness, backends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tiny_model import reference_probs

from ferfast.contract import parse_metadata
from ferfast.labels import EMOTIONS
from ferfast.measure import Latency, measure_latency, run_batches
from ferfast.models import BUNDLED, MODELS_DIR, model_path
from ferfast.ort import OrtRunner, default_threads
from ferfast.runtime import make_runner
from ferfast.tensorrt import tensorrt_available


def random_batch(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, 1, 48, 48)) / 255.0).astype(np.float32)


def test_defaults_without_metadata(tiny_model: Path) -> None:
    runner = OrtRunner(tiny_model)
    assert runner.emotions == EMOTIONS
    assert runner.input_scale == pytest.approx(1 / 255)
    assert runner.input_bias == 0.0
    assert runner.num_classes == 7
    assert runner.threads == default_threads() == min(2, __import__("os").cpu_count())


def test_metadata_is_read(make_model) -> None:
    names = ("a", "b", "c", "d", "e")
    path = make_model(
        k=5,
        metadata={
            "ferfast.emotions": ",".join(names),
            "ferfast.input_scale": "0.0078431373",
            "ferfast.input_bias": "-1",
            "ferfast.version": "9.9",
        },
    )
    runner = OrtRunner(path, threads=1)
    assert runner.emotions == names
    assert runner.input_scale == pytest.approx(0.0078431373)
    assert runner.input_bias == -1.0
    assert runner.version == "9.9"
    assert runner.session.get_session_options().intra_op_num_threads == 1


def test_six_class_default_omits_disgust(make_model) -> None:
    runner = OrtRunner(make_model(k=6))
    assert runner.emotions == tuple(e for e in EMOTIONS if e != "disgust")


@pytest.mark.parametrize(
    ("props", "match"),
    [
        ({"ferfast.emotions": "a,b"}, "lists 2 classes"),
        ({"ferfast.emotions": "a,a,b,c,d,e,f"}, "duplicate"),
        ({"ferfast.input_scale": "abc"}, "not a number"),
        ({"ferfast.input_bias": "nan"}, "not finite"),
        ({"ferfast.input_scale": "0"}, "non-zero"),
    ],
)
def test_bad_metadata(props: dict[str, str], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_metadata(props, 7, "m.onnx")


def test_bad_metadata_in_model_names_file(make_model) -> None:
    path = make_model("badmeta.onnx", metadata={"ferfast.emotions": "x,y"})
    with pytest.raises(ValueError, match="badmeta.onnx"):
        OrtRunner(path)


def test_run_matches_reference(tiny_model: Path) -> None:
    runner = OrtRunner(tiny_model)
    for n in (1, 3, 64):
        x = random_batch(n, seed=n)
        buf = runner.new_input_buffer(n)
        buf[:] = x
        probs = runner.run(buf)
        assert probs.shape == (n, 7) and probs.dtype == np.float32
        np.testing.assert_allclose(probs, reference_probs(x), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_spinning_can_be_switched_off(tiny_model: Path) -> None:
    """spin=False sets ORT's allow_spinning entry to 0; results are unchanged."""
    key = "session.intra_op.allow_spinning"
    quiet, default = OrtRunner(tiny_model, threads=2, spin=False), OrtRunner(tiny_model, threads=2)
    assert quiet.session.get_session_options().get_session_config_entry(key) == "0"
    with pytest.raises(RuntimeError, match="allow_spinning"):  # not set: ORT's default (spin)
        default.session.get_session_options().get_session_config_entry(key)
    x = np.random.default_rng(0).random((3, 1, 48, 48), dtype=np.float32)
    np.testing.assert_array_equal(quiet.run(x), default.run(x))


def test_run_reads_buffer_in_place_each_call(tiny_model: Path) -> None:
    """The cached IO binding must see new buffer contents (it binds the memory, not a copy)."""
    runner = OrtRunner(tiny_model)
    buf = runner.new_input_buffer(16)
    for seed in range(3):
        x = random_batch(4, seed=seed)
        buf[:4] = x
        np.testing.assert_allclose(runner.run(buf[:4]), reference_probs(x), rtol=1e-5, atol=1e-6)
        buf[:2] = x[:2]
        np.testing.assert_allclose(
            runner.run(buf[:2]), reference_probs(x[:2]), rtol=1e-5, atol=1e-6
        )


def test_input_is_bound_without_copy(tiny_model: Path) -> None:
    """The model input OrtValue is the caller's buffer memory (zero copy)."""
    runner = OrtRunner(tiny_model)
    buf = runner.new_input_buffer(8)
    buf[:] = random_batch(8)
    runner.run(buf[:5])
    (_, _, value, bound) = runner._local.cache[(buf.ctypes.data, 5)]
    assert value.data_ptr() == buf.ctypes.data
    assert np.shares_memory(bound, buf)


def test_results_are_independent_arrays(tiny_model: Path) -> None:
    runner = OrtRunner(tiny_model)
    buf = runner.new_input_buffer(2)
    buf[:] = random_batch(2, 1)
    first = runner.run(buf)
    kept = first.copy()
    buf[:] = random_batch(2, 2)
    runner.run(buf)
    np.testing.assert_array_equal(first, kept)


def test_run_empty_and_bad_batches(tiny_model: Path) -> None:
    runner = OrtRunner(tiny_model)
    assert runner.run(runner.new_input_buffer(0)).shape == (0, 7)
    with pytest.raises(TypeError, match="numpy"):
        runner.run([[0.0]])
    with pytest.raises(TypeError, match="float32"):
        runner.run(np.zeros((1, 1, 48, 48), np.float64))
    with pytest.raises(ValueError, match="shape"):
        runner.run(np.zeros((1, 48, 48), np.float32))
    with pytest.raises(ValueError, match="contiguous"):
        runner.run(np.zeros((2, 1, 48, 96), np.float32)[..., ::2])
    with pytest.raises(ValueError, match="threads"):
        OrtRunner(Path(runner.path), threads=0)
    with pytest.raises(TypeError, match="threads must be an int"):
        OrtRunner(Path(runner.path), threads=1.5)  # type: ignore[arg-type]


def test_missing_model_names_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.onnx"
    with pytest.raises(FileNotFoundError, match="nope.onnx"):
        OrtRunner(missing)
    with pytest.raises(FileNotFoundError, match="nope.onnx"):
        make_runner(missing)


def test_corrupt_model_names_file(tiny_model: Path, tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(tiny_model.read_bytes()[:300])
    with pytest.raises(ValueError, match="corrupt.onnx"):
        OrtRunner(bad)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not an onnx file at all")
    with pytest.raises(ValueError, match="junk.onnx"):
        make_runner(junk)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"channels": 3}, r"\(N, 1, 48, 48\)"),
        ({"side": 64}, r"\(N, 1, 48, 48\)"),
        ({"input_name": "x"}, "'input'"),
        ({"output_name": "logits_out"}, "'probs'"),
    ],
)
def test_wrong_io_contract_names_file(make_model, kwargs: dict, match: str) -> None:
    path = make_model("wrong.onnx", **kwargs)
    with pytest.raises(ValueError, match=match) as info:
        OrtRunner(path)
    assert "wrong.onnx" in str(info.value)


def test_make_runner_choices(tiny_model: Path, tmp_path: Path) -> None:
    for backend in ("onnxruntime", "cpu"):
        runner = make_runner(tiny_model, backend)
        assert isinstance(runner, OrtRunner) and runner.provider == "cpu"
    assert isinstance(make_runner(str(tiny_model)), OrtRunner)
    with pytest.raises(ValueError, match="backend"):
        make_runner(tiny_model, "gpu")
    with pytest.raises(ValueError, match=r"\.onnx or \.engine"):
        make_runner(tmp_path / "model.pt")
    with pytest.raises(TypeError, match="model"):
        make_runner(42)
    engine_file = tmp_path / "m.engine"
    engine_file.write_bytes(b"\0" * 16)
    with pytest.raises(ValueError, match="onnxruntime"):
        make_runner(engine_file, "onnxruntime")


def test_model_and_backend_errors_name_the_flag_and_the_argument(
    tiny_model: Path, tmp_path: Path
) -> None:
    """The same message serves CLI users (--model, --backend) and Python callers (model=)."""
    with pytest.raises(
        ValueError, match=r"'foo' is neither a bundled model name.*--model / model="
    ):
        make_runner("foo")
    with pytest.raises(FileNotFoundError, match=r"absent\.onnx \(--model / model=\)"):
        make_runner(tmp_path / "absent.onnx")
    with pytest.raises(
        ValueError, match=r"--backend / backend=.*one of auto, cpu, cuda, tensorrt, onnxruntime"
    ):
        make_runner(tiny_model, "gpu")
    engine_file = tmp_path / "m.engine"
    engine_file.write_bytes(b"\0" * 16)
    for backend in ("onnxruntime", "cpu", "cuda"):
        with pytest.raises(
            ValueError, match=rf"'{backend}' \(--backend / backend=\) cannot run the TensorRT"
        ):
            make_runner(engine_file, backend)


def test_garbage_engine_file_names_file(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.engine"
    garbage.write_bytes(b"\0" * 64)
    with pytest.raises(ValueError, match="garbage.engine"):
        make_runner(garbage)


@pytest.mark.skipif(tensorrt_available(), reason="tensorrt is installed here")
def test_tensorrt_unavailable_is_clear(tmp_path: Path) -> None:
    trt_header = pytest.importorskip("ferfast.tensorrt.header")
    EngineHeader, write_engine = trt_header.EngineHeader, trt_header.write_engine
    header = EngineHeader("10.0.0", "Some GPU", "8.7", "int8", EMOTIONS)
    path = write_engine(tmp_path / "m.engine", header, b"plan")
    for backend in ("auto", "tensorrt"):
        with pytest.raises(RuntimeError, match="TensorRT backend is unavailable"):
            make_runner(path, backend)


def test_model_path_names() -> None:
    with pytest.raises(ValueError, match="unknown bundled model"):
        model_path("int4")
    with pytest.raises(TypeError):
        model_path(8)
    for name, filename in BUNDLED.items():
        path = MODELS_DIR / filename
        if path.is_file():
            assert model_path(name) == path
            assert model_path(name.upper()) == path
        else:
            with pytest.raises(FileNotFoundError, match=filename):
                model_path(name)


class _CountingRunner:
    """An OrtRunner that records the batch sizes and first input values it is run on."""

    def __init__(self, path: Path) -> None:
        self.inner = OrtRunner(path)
        self.emotions = self.inner.emotions
        self.input_scale, self.input_bias = self.inner.input_scale, self.inner.input_bias
        self.calls: list[int] = []
        self.first: list[float] = []

    def new_input_buffer(self, n: int) -> np.ndarray:
        return self.inner.new_input_buffer(n)

    def run(self, batch: np.ndarray) -> np.ndarray:
        self.calls.append(len(batch))
        self.first.append(float(batch.flat[0]) if batch.size else -1.0)
        return self.inner.run(batch)


def test_run_batches_chunks_a_split(tiny_model: Path) -> None:
    runner = _CountingRunner(tiny_model)
    x = random_batch(10, seed=3)
    probs = run_batches(runner, x.astype(np.float64), batch=4)  # made float32 and contiguous
    assert runner.calls == [4, 4, 2]
    np.testing.assert_allclose(probs, reference_probs(x), rtol=1e-5, atol=1e-6)
    assert run_batches(runner, x[:0]).shape == (0, 7)
    with pytest.raises(ValueError, match="batch must be >= 1"):
        run_batches(runner, x, batch=0)
    with pytest.raises(TypeError, match="batch must be an int"):
        run_batches(runner, x, batch=2.5)  # type: ignore[arg-type]


def test_measure_latency_times_warmed_runs_on_the_given_rows(tiny_model: Path) -> None:
    runner = _CountingRunner(tiny_model)
    data = random_batch(6, seed=1)
    lat = measure_latency(runner, batch=4, repeats=3, warmup=2, data=data)
    assert runner.calls == [4] * 5 and set(runner.first) == {float(data[0, 0, 0, 0])}
    assert isinstance(lat, Latency) and lat.batch == 4 and lat.repeats == 3
    assert 0 < lat.min_ms_per_face <= lat.median_ms_per_face <= lat.p90_ms / 4
    assert lat.median_ms == pytest.approx(lat.median_ms_per_face * 4)
    # Fewer rows than the batch: random faces (fixed seed), the same on every call.
    measure_latency(runner, batch=8, repeats=1, warmup=0, data=data)
    measure_latency(runner, batch=8, repeats=1, warmup=0)
    assert runner.first[-1] == runner.first[-2]
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        measure_latency(runner, batch=1, repeats=0)
    with pytest.raises(ValueError, match="warmup must be >= 0"):
        measure_latency(runner, batch=1, warmup=-1)
    with pytest.raises(TypeError, match="batch must be an int"):
        measure_latency(runner, batch="4")  # type: ignore[arg-type]


def test_latency_figures_from_known_times() -> None:
    lat = Latency(batch=2, seconds=(0.004, 0.001, 0.002, 0.003))
    assert lat.repeats == 4
    assert lat.median_ms == pytest.approx(2.5) and lat.median_ms_per_face == pytest.approx(1.25)
    assert lat.min_ms_per_face == pytest.approx(0.5)
    assert lat.p90_ms == pytest.approx(3.7)
