"""TensorRT backend: engine header format, mismatch refusal, build-engine checks, runner errors.

Everything here runs without a GPU. Tests that need TensorRT and an NVIDIA GPU build a real
engine from the tiny model and skip with a reason elsewhere.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sysconfig
from pathlib import Path

import numpy as np
import pytest
from cxx import include_flags
from tiny_model import reference_probs

from ferfast.labels import EMOTIONS
from ferfast.ort import OrtRunner
from ferfast.tensorrt import (
    EngineHeader,
    EngineMismatchError,
    TensorRTRunner,
    build_engine,
    check_compatible,
    pack_engine,
    read_engine,
    read_onnx_info,
    tensorrt_available,
    unpack_engine,
    write_engine,
)
from ferfast.tensorrt.gpu import gpu_info
from ferfast.tensorrt.header import MAGIC

REPO = Path(__file__).resolve().parents[1]
HAS_TRT = tensorrt_available()


def gpu_present() -> bool:
    try:
        gpu_info(0)
    except RuntimeError:
        return False
    return True


def core_has(name: str) -> bool:
    try:
        import ferfast._core as core
    except ImportError:
        return False
    return hasattr(core, name)


needs_trt_gpu = pytest.mark.skipif(
    not (HAS_TRT and gpu_present()), reason="needs TensorRT and an NVIDIA GPU (none here)"
)


def header(**kw: object) -> EngineHeader:
    base: dict[str, object] = dict(
        trt_version="10.13.0.35",
        gpu_name="Orin",
        compute_capability="8.7",
        precision="int8",
        emotions=EMOTIONS,
        input_scale=1 / 255,
        input_bias=0.0,
        max_batch=64,
        opt_batch=8,
    )
    base.update(kw)
    return EngineHeader(**base)  # type: ignore[arg-type]


# ---- header format -------------------------------------------------------------------------


def test_header_round_trip(tmp_path: Path) -> None:
    h = header(extra={"ferfast_version": "0.1.0", "source": "ferfast_int8.onnx"})
    plan = bytes(range(256)) * 3
    data = pack_engine(h, plan)
    assert data.startswith(MAGIC)
    back, payload = unpack_engine(data)
    assert back == h
    assert bytes(payload) == plan
    assert back.input_scale == 1 / 255  # repr() round-trips floats exactly
    path = write_engine(tmp_path / "m.engine", h, plan)
    assert read_engine(path) == (h, plan)
    assert not (tmp_path / "m.engine.tmp").exists()


def test_header_text_is_key_value_lines() -> None:
    text = header(emotions=("happy", "sad")).to_bytes().decode()
    lines = dict(line.split("=", 1) for line in text.splitlines())
    assert lines["emotions"] == "happy,sad"
    assert lines["precision"] == "int8"
    assert lines["trt_version"] == "10.13.0.35"


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"precision": "int4"}, "precision"),
        ({"emotions": ("a,b", "c")}, "emotions"),
        ({"emotions": ()}, "emotions"),
        ({"opt_batch": 65}, "opt_batch"),
        ({"gpu_name": "bad\nname"}, "one line"),
        ({"extra": {"trt_version": "x"}}, "extra header key"),
    ],
)
def test_header_rejects_bad_fields(kw: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        header(**kw).to_bytes()


def test_unpack_rejects_non_engines(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a ferfast engine"):
        unpack_engine(b"\0" * 64)
    good = pack_engine(header(), b"plan")
    with pytest.raises(ValueError, match="truncated"):
        unpack_engine(good[:20])
    broken = MAGIC + (9).to_bytes(4, "little") + b"novalue\n\n" + b"plan"
    with pytest.raises(ValueError, match="malformed"):
        unpack_engine(broken)
    missing = MAGIC + (10).to_bytes(4, "little") + b"gpu_name=x" + b"plan"
    with pytest.raises(ValueError, match="lacks"):
        unpack_engine(missing)
    bad = tmp_path / "bad.engine"
    bad.write_bytes(b"TRT raw plan without header")
    with pytest.raises(ValueError, match="bad.engine"):
        read_engine(bad)
    with pytest.raises(FileNotFoundError):
        read_engine(tmp_path / "absent.engine")


def test_check_compatible_accepts_same_version_and_gpu() -> None:
    h = header()
    check_compatible(h, "10.13.0.35", "Orin", "8.7")
    check_compatible(h, "10.13.0.99", "Orin", "8.7")  # build number does not matter


def test_mismatch_names_both_versions() -> None:
    with pytest.raises(EngineMismatchError) as err:
        check_compatible(header(), "8.6.2.3", "Orin", "8.7", path="m.engine")
    msg = str(err.value)
    assert "TensorRT 10.13.0.35" in msg and "TensorRT 8.6.2.3" in msg
    assert "m.engine" in msg and "build-engine" in msg


def test_mismatch_names_both_gpus() -> None:
    with pytest.raises(EngineMismatchError) as err:
        check_compatible(header(), "10.13.0.35", "NVIDIA H100 80GB HBM3", "9.0")
    msg = str(err.value)
    assert "'Orin' (sm 8.7)" in msg and "'NVIDIA H100 80GB HBM3' (sm 9.0)" in msg
    assert "TensorRT 10" not in msg  # the version matched: only the GPU is named


def test_cpp_header_reader_agrees(tmp_path: Path) -> None:
    """cpp/trt/engine_file.cpp (the C++ runtime's reader) parses what header.py writes."""
    cxx = shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        pytest.skip("no C++ compiler")
    main = tmp_path / "main.cpp"
    main.write_text(
        '#include "trt/engine_file.hpp"\n#include <cstdio>\n'
        "using namespace ferfast::trt;\n"
        "int main(int, char** argv) {\n"
        "  try {\n"
        "    EngineFile f = read_engine_file(argv[1]);\n"
        "    for (auto& kv : f.header)\n"
        '      std::printf("%s=%s\\n", kv.first.c_str(), kv.second.c_str());\n'
        '    std::printf("plan=%zu\\n", f.plan.size());\n'
        '    std::printf("mismatch=%s\\n", mismatch(f, argv[1], decode_lib_version(101300),\n'
        '        "Orin", "8.7").c_str());\n'
        '    std::printf("v86=%s\\n", decode_lib_version(8601).c_str());\n'
        '  } catch (const std::exception& e) { std::printf("error=%s\\n", e.what()); }\n'
        "}\n"
    )
    exe = tmp_path / "reader"
    subprocess.run(
        [
            cxx,
            "-std=c++17",
            "-O0",
            f"-I{REPO / 'cpp'}",
            str(main),
            str(REPO / "cpp" / "trt" / "engine_file.cpp"),
            "-o",
            str(exe),
        ],
        check=True,
    )
    h = header(extra={"source": "x.onnx"})
    path = write_engine(tmp_path / "m.engine", h, b"P" * 1000)
    out = subprocess.run([str(exe), str(path)], capture_output=True, text=True, check=True).stdout
    fields = dict(line.split("=", 1) for line in out.splitlines())
    assert fields["plan"] == "1000"
    assert fields["emotions"] == ",".join(EMOTIONS)
    assert fields["source"] == "x.onnx"
    assert float(fields["input_scale"]) == 1 / 255
    assert fields["mismatch"] == ""  # 10.13.0 on Orin sm 8.7 matches
    assert fields["v86"] == "8.6.1"
    other = write_engine(tmp_path / "o.engine", header(trt_version="8.6.1.6"), b"P")
    out = subprocess.run([str(exe), str(other)], capture_output=True, text=True, check=True).stdout
    assert "TensorRT 8.6.1.6" in out and "TensorRT 10.13.0" in out
    raw = tmp_path / "raw.engine"
    raw.write_bytes(b"no header here, just bytes")
    out = subprocess.run([str(exe), str(raw)], capture_output=True, text=True, check=True).stdout
    assert out.startswith("error=not a ferfast engine")


def cuda_include_dir() -> Path | None:
    """The CUDA toolkit's include folder (with cuda_runtime.h), found beside nvcc as CMake does."""
    nvcc = shutil.which("nvcc")
    roots = [Path(nvcc).resolve().parents[1]] if nvcc else []
    roots.append(Path("/usr/local/cuda"))
    for root in roots:
        if (root / "include" / "cuda_runtime.h").is_file():
            return root / "include"
    return None


@pytest.mark.parametrize("version", ["v8", "v10"])
def test_cpp_runtime_compiles_against_tensorrt_api(version: str, tmp_path: Path) -> None:
    """cpp/trt/runtime.cpp compiles against TensorRT 8.6's and 10.x's API (tests/trt_standin).

    The stand-ins declare only the API runtime.cpp uses, with each version's signatures, so a call
    that one of the versions lacks fails here. The snippet check proves the stand-ins tell the
    versions apart (createExecutionContext takes an allocation strategy from TensorRT 10 on).
    """
    cxx = shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        pytest.skip("no C++ compiler")
    cuda_include = cuda_include_dir()
    if cuda_include is None:
        pytest.skip("no CUDA headers (cuda_runtime.h)")
    pybind11 = pytest.importorskip("pybind11")
    standin = REPO / "tests" / "trt_standin" / version
    # As CMake builds _core with FERFAST_WITH_TENSORRT (which implies the CUDA block).
    flags = [
        "-std=c++17",
        "-fsyntax-only",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-fvisibility=hidden",
        "-DFERFAST_WITH_CUDA",
        "-DFERFAST_WITH_TENSORRT",
        *include_flags(),
        f"-isystem{standin}",
        f"-isystem{cuda_include}",
        f"-isystem{pybind11.get_include()}",
        f"-isystem{sysconfig.get_paths()['include']}",
    ]
    res = subprocess.run(
        [cxx, *flags, str(REPO / "cpp" / "trt" / "runtime.cpp")], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    snippet = tmp_path / "strategy.cpp"
    snippet.write_text(
        "#include <NvInfer.h>\n"
        "nvinfer1::IExecutionContext* make(nvinfer1::ICudaEngine& e) {\n"
        "  return e.createExecutionContext(\n"
        "      nvinfer1::ExecutionContextAllocationStrategy::kSTATIC);\n"
        "}\n"
    )
    res = subprocess.run([cxx, *flags, str(snippet)], capture_output=True, text=True)
    assert (res.returncode == 0) == (version == "v10"), res.stderr


# ---- build-engine (the parts that run without TensorRT) ------------------------------------


def test_read_onnx_info(make_model) -> None:  # type: ignore[no-untyped-def]
    meta = {
        "ferfast.emotions": "angry,happy,sad",
        "ferfast.input_scale": "0.5",
        "ferfast.input_bias": "-1",
        "ferfast.version": "9.9",
    }
    info = read_onnx_info(make_model("m.onnx", k=3, metadata=meta))
    assert info.emotions == ("angry", "happy", "sad")
    assert (info.input_scale, info.input_bias, info.model_version) == (0.5, -1.0, "9.9")
    assert info.has_qdq is False


def test_read_onnx_info_defaults(tiny_model: Path) -> None:
    info = read_onnx_info(tiny_model)
    assert info.emotions == EMOTIONS
    assert info.input_scale == pytest.approx(1 / 255) and info.input_bias == 0.0


def test_read_onnx_info_parses_like_the_runner(make_model) -> None:  # type: ignore[no-untyped-def]
    """Metadata goes through contract.parse_metadata: same defaults and checks as OrtRunner."""
    six = make_model("six.onnx", k=6)
    assert read_onnx_info(six).emotions == OrtRunner(six).emotions
    assert "disgust" not in read_onnx_info(six).emotions
    with pytest.raises(ValueError, match="lists 2 classes"):
        read_onnx_info(make_model("m.onnx", k=3, metadata={"ferfast.emotions": "a,b"}))
    with pytest.raises(ValueError, match="not a number"):
        read_onnx_info(make_model("s.onnx", metadata={"ferfast.input_scale": "x"}))


def test_build_engine_rejects_bad_arguments(tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.engine"
    with pytest.raises(ValueError, match="precision"):
        build_engine(tiny_model, out, precision="int4")
    with pytest.raises(ValueError, match="max_batch"):
        build_engine(tiny_model, out, precision="fp32", max_batch=0)
    with pytest.raises(ValueError, match="opt_batch"):
        build_engine(tiny_model, out, precision="fp32", max_batch=4, opt_batch=8)
    with pytest.raises(ValueError, match="workspace"):
        build_engine(tiny_model, out, precision="fp32", workspace=10)
    with pytest.raises(FileNotFoundError):
        build_engine(tmp_path / "absent.onnx", out, precision="fp32")
    # int8 engines come from the Q/DQ model: a float model is refused before TensorRT is needed.
    with pytest.raises(ValueError, match="QuantizeLinear"):
        build_engine(tiny_model, out, precision="int8")
    assert not out.exists()


@pytest.mark.skipif(HAS_TRT, reason="tensorrt is installed here")
def test_build_engine_without_tensorrt_is_clear(tiny_model: Path, tmp_path: Path) -> None:
    with pytest.raises(ImportError, match="TensorRT is not available"):
        build_engine(tiny_model, tmp_path / "m.engine", precision="fp32")


# ---- runner errors ---------------------------------------------------------------------------


def test_runner_rejects_bad_files_and_arguments(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        TensorRTRunner(tmp_path / "absent.engine")
    junk = tmp_path / "junk.engine"
    junk.write_bytes(b"\0" * 100)
    with pytest.raises(ValueError, match="junk.engine"):
        TensorRTRunner(junk)
    good = write_engine(tmp_path / "m.engine", header(), b"plan")
    with pytest.raises(ValueError, match="backend"):
        TensorRTRunner(good, backend="cuda")
    with pytest.raises(ValueError, match="device"):
        TensorRTRunner(good, device=-1)
    with pytest.raises(TypeError, match="device must be an int"):
        TensorRTRunner(good, device="0")  # type: ignore[arg-type]


@pytest.mark.skipif(HAS_TRT, reason="tensorrt is installed here")
def test_runner_without_tensorrt_is_clear(tmp_path: Path) -> None:
    path = write_engine(tmp_path / "m.engine", header(), b"plan")
    with pytest.raises(ImportError, match="TensorRT is not available"):
        TensorRTRunner(path, backend="python")


@pytest.mark.skipif(core_has("TrtRuntime"), reason="ferfast._core was built with TensorRT")
def test_runner_cpp_backend_needs_tensorrt_build(tmp_path: Path) -> None:
    path = write_engine(tmp_path / "m.engine", header(), b"plan")
    with pytest.raises(RuntimeError, match="built without TensorRT"):
        TensorRTRunner(path, backend="cpp")


@pytest.mark.skipif(gpu_present(), reason="a CUDA driver and GPU are present")
def test_gpu_info_without_gpu_is_clear() -> None:
    with pytest.raises(RuntimeError, match="driver|device"):
        gpu_info(0)
    with pytest.raises(ValueError):
        gpu_info(-1)


def test_tensorrt_stubs_are_not_mistaken_for_tensorrt() -> None:
    """tensorrt-stubs installs a bare tensorrt/ folder that imports as a namespace package."""
    if HAS_TRT:
        pytest.skip("real tensorrt installed")
    spec = importlib.util.find_spec("tensorrt")
    if spec is None:
        pytest.skip("neither tensorrt nor tensorrt-stubs installed")
    assert not tensorrt_available()


# ---- type check against tensorrt-stubs -------------------------------------------------------


def test_mypy_against_tensorrt_stubs() -> None:
    pytest.importorskip("mypy", reason="mypy not installed (pip install mypy)")
    try:
        from importlib import metadata

        metadata.distribution("tensorrt-stubs")
    except Exception:
        pytest.skip("tensorrt-stubs not installed (pip install --no-deps tensorrt-stubs)")
    from mypy_tensorrt import run_mypy

    proc = run_mypy()
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ---- real TensorRT on a GPU --------------------------------------------------------------------


@needs_trt_gpu
@pytest.mark.parametrize("backend", ["python", "cpp"])
def test_build_and_run_fp32_engine(tiny_model: Path, tmp_path: Path, backend: str) -> None:
    if backend == "cpp" and not core_has("TrtRuntime"):
        pytest.skip("ferfast._core built without TensorRT")
    if backend == "python" and importlib.util.find_spec("pycuda") is None:
        pytest.skip("pycuda not installed")
    cache = tmp_path / "timing.cache"
    result = build_engine(
        tiny_model, tmp_path / "m.engine", precision="fp32", max_batch=16, timing_cache=cache
    )
    assert cache.is_file() and result.header.max_batch == 16
    runner = TensorRTRunner(result.path, backend=backend)
    assert runner.emotions == EMOTIONS
    buf = runner.new_input_buffer(40)
    rng = np.random.default_rng(0)
    buf[:] = rng.integers(0, 256, buf.shape) / 255.0
    probs = runner.run(buf[:37])  # above max_batch: split into chunks
    np.testing.assert_allclose(probs, reference_probs(buf[:37]), atol=1e-4)
    assert runner.run(buf[:0]).shape == (0, 7)


# ---- wrap-engine (trtexec plans) -------------------------------------------------------------


def test_decode_lib_version_matches_tensorrt_encodings() -> None:
    from ferfast.tensorrt.wrap import decode_lib_version

    assert decode_lib_version(8502) == "8.5.2"  # JetPack 5.1
    assert decode_lib_version(8602) == "8.6.2"  # JetPack 6.0
    assert decode_lib_version(100300) == "10.3.0"  # JetPack 6.1 / 6.2
    assert decode_lib_version(101300) == "10.13.0"


def test_wrap_plan_round_trip(
    make_model,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import ferfast.tensorrt.wrap as wrap
    from ferfast.tensorrt.gpu import GpuInfo

    monkeypatch.setattr(wrap, "gpu_info", lambda device=0: GpuInfo(0, "Orin", "8.7"))
    model = make_model("m.onnx", k=6, metadata={"ferfast.emotions": "a,b,c,d,e,f"})
    plan = tmp_path / "m.plan"
    plan.write_bytes(b"\x01trtexec plan bytes")
    out = tmp_path / "m.engine"
    h = wrap.wrap_plan(plan, model, out, "fp16", 32, trt_version="8.5.2")
    back, payload = read_engine(out)
    assert back == h and payload == plan.read_bytes()
    assert (back.gpu_name, back.compute_capability, back.trt_version) == ("Orin", "8.7", "8.5.2")
    assert back.emotions == ("a", "b", "c", "d", "e", "f") and back.opt_batch == 8
    assert back.extra["built_by"] == "wrap-engine"
    with pytest.raises(ValueError, match="already a ferfast engine"):
        wrap.wrap_plan(out, model, tmp_path / "again.engine", "fp16", 32, trt_version="8.5.2")
    # and through the CLI
    from ferfast.cli import main

    code = main(
        [
            "wrap-engine",
            str(plan),
            "--model",
            str(model),
            "-o",
            str(tmp_path / "c.engine"),
            "--precision",
            "int8",
            "--max-batch",
            "16",
            "--trt-version",
            "10.3.0",
        ]
    )
    assert code == 0 and read_engine(tmp_path / "c.engine")[0].precision == "int8"


@pytest.mark.skipif(gpu_present(), reason="a CUDA driver and GPU are present")
def test_wrap_engine_cli_without_gpu_is_clear(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ferfast.cli import main

    plan = tmp_path / "m.plan"
    plan.write_bytes(b"plan")
    code = main(
        [
            "wrap-engine",
            str(plan),
            "--model",
            str(tiny_model),
            "-o",
            str(tmp_path / "m.engine"),
            "--precision",
            "fp32",
            "--max-batch",
            "8",
            "--trt-version",
            "10.3.0",
        ]
    )
    assert code == 1
    assert "driver" in capsys.readouterr().err
    assert not (tmp_path / "m.engine").exists()


# ---- TensorRTRunner's own logic (batch splitting, run_frame) on a stand-in backend ----------


class FakeBackend:
    """Stands in for TrtRuntime / the pycuda backend: the tiny model's reference maths."""

    def __init__(self, max_batch: int, with_frames: bool) -> None:
        self.max_batch = max_batch
        self.calls: list[tuple] = []
        if with_frames:
            self.run_frame = self._run_frame

    def new_input_buffer(self, n: int) -> np.ndarray:
        return np.zeros((n, 1, 48, 48), np.float32)

    def run(self, batch: np.ndarray) -> np.ndarray:
        assert batch.shape[0] <= self.max_batch and batch.flags.c_contiguous
        self.calls.append(("run", batch.shape[0]))
        return reference_probs(batch)

    def _run_frame(self, frame, boxes, landmarks, margin, ox, oy, el, er):  # type: ignore[no-untyped-def]
        from ferfast import _core

        assert len(boxes) <= self.max_batch
        self.calls.append(("run_frame", len(boxes), margin, ox, oy, el, er))
        crops = _core.preprocess(frame, boxes, None, landmarks, margin, ox, oy, el, er)
        return reference_probs(crops)


def fake_runner(tmp_path: Path, max_batch: int, with_frames: bool) -> TensorRTRunner:
    path = write_engine(tmp_path / "m.engine", header(max_batch=max_batch, opt_batch=1), b"p")
    runner = TensorRTRunner.__new__(TensorRTRunner)
    runner.path = path
    runner.header = read_engine(path)[0]
    runner.emotions = runner.header.emotions
    runner.input_scale, runner.input_bias = runner.header.input_scale, runner.header.input_bias
    runner._impl = FakeBackend(max_batch, with_frames)
    runner.backend = "fake"
    runner.max_batch = max_batch
    return runner


def test_runner_splits_large_batches_and_checks_input(tmp_path: Path) -> None:
    runner = fake_runner(tmp_path, 4, with_frames=False)
    x = np.random.default_rng(0).random((10, 1, 48, 48), dtype=np.float32)
    np.testing.assert_allclose(runner.run(x), reference_probs(x), rtol=1e-6)
    assert runner._impl.calls == [("run", 4), ("run", 4), ("run", 2)]  # type: ignore[attr-defined]
    assert runner.run(x[:0]).shape == (0, 7)
    # The same checks as OrtRunner (runner.check_batch): no hidden copy of a strided batch.
    with pytest.raises(ValueError, match="C-contiguous"):
        runner.run(x[::2])
    with pytest.raises(TypeError, match="float32"):
        runner.run(x.astype(np.float64))
    with pytest.raises(ValueError, match=r"\(n, 1, 48, 48\)"):
        runner.run(x[:, :, :24])
    with pytest.raises(TypeError, match="numpy.ndarray"):
        runner.run(x.tolist())  # type: ignore[arg-type]
    assert runner._impl.calls == [("run", 4), ("run", 4), ("run", 2)]  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="positive"):
        runner.new_input_buffer(0)
    with pytest.raises(TypeError, match="n must be an int"):
        runner.new_input_buffer(2.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("with_frames", [False, True])
def test_run_frame_matches_preprocess_then_run(tmp_path: Path, with_frames: bool) -> None:
    from ferfast.framing import FRAMING
    from ferfast.preprocess import preprocess

    runner = fake_runner(tmp_path, 3, with_frames)
    assert runner.gpu_preprocessing is with_frames
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    boxes = np.column_stack(
        [rng.uniform(0, 120, 7), rng.uniform(0, 80, 7), np.full(7, 40.0), np.full(7, 44.0)]
    )
    expected = reference_probs(preprocess(frame, boxes, framing=FRAMING))
    np.testing.assert_allclose(runner.run_frame(frame, boxes), expected, rtol=1e-5, atol=1e-7)
    calls = runner._impl.calls  # type: ignore[attr-defined]
    if with_frames:
        assert [c[1] for c in calls] == [3, 3, 1]  # split at the engine's max batch
        assert calls[0][2:] == (
            FRAMING.margin,
            FRAMING.offset_x,
            FRAMING.offset_y,
            tuple(FRAMING.eye_left),
            tuple(FRAMING.eye_right),
        )
    assert runner.run_frame(frame, np.zeros((0, 4))).shape == (0, 7)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        runner.run_frame(frame, np.zeros((2, 3)))


# ---- more real TensorRT on a GPU -----------------------------------------------------------------


@needs_trt_gpu
def test_engine_from_another_gpu_is_refused(tiny_model: Path, tmp_path: Path) -> None:
    built = build_engine(tiny_model, tmp_path / "m.engine", precision="fp32", max_batch=4)
    h, plan = read_engine(built.path)
    other = EngineHeader(h.trt_version, "Some Other GPU", "1.0", h.precision, h.emotions)
    moved = write_engine(tmp_path / "moved.engine", other, plan)
    for backend in ("auto", "python"):
        if backend == "python" and importlib.util.find_spec("pycuda") is None:
            continue
        with pytest.raises(RuntimeError, match="Some Other GPU"):
            TensorRTRunner(moved, backend=backend)


@needs_trt_gpu
def test_int8_engine_from_bundled_qdq_model_matches_onnxruntime(tmp_path: Path) -> None:
    from ferfast.models import MODELS_DIR
    from ferfast.ort import OrtRunner

    model = MODELS_DIR / "ferfast_int8.onnx"
    if not model.is_file():
        pytest.skip("bundled int8 model not present")
    result = build_engine(model, tmp_path / "int8.engine", precision="int8", max_batch=64)
    runner = TensorRTRunner(result.path)
    ort = OrtRunner(model)
    buf = runner.new_input_buffer(64)
    rng = np.random.default_rng(0)
    buf[:] = rng.integers(0, 256, buf.shape) / 255.0
    trt_probs, ort_probs = runner.run(buf), ort.run(np.ascontiguousarray(buf))
    # Different INT8 kernels: same class almost always, probabilities close.
    assert (trt_probs.argmax(1) == ort_probs.argmax(1)).mean() >= 0.9
    assert np.abs(trt_probs - ort_probs).max() < 0.1


@needs_trt_gpu
def test_run_frame_on_gpu_matches_cpu_path(tiny_model: Path, tmp_path: Path) -> None:
    from ferfast.framing import FRAMING
    from ferfast.preprocess import preprocess

    built = build_engine(tiny_model, tmp_path / "m.engine", precision="fp32", max_batch=8)
    runner = TensorRTRunner(built.path)
    rng = np.random.default_rng(5)
    frame = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    boxes = np.column_stack(
        [rng.uniform(0, 260, 11), rng.uniform(0, 180, 11), np.full(11, 60.0), np.full(11, 64.0)]
    )
    expected = reference_probs(preprocess(frame, boxes, framing=FRAMING))
    np.testing.assert_allclose(runner.run_frame(frame, boxes), expected, atol=1e-4)


def test_bench_engine_times_with_runtime_measure_latency(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """bench-engine: warm-up + timed runs per batch size through measure.measure_latency."""
    import ferfast.tensorrt
    from ferfast.cli import main

    runner = fake_runner(tmp_path, 8, with_frames=False)
    monkeypatch.setattr(ferfast.tensorrt, "TensorRTRunner", lambda path, backend: runner)
    argv = ["bench-engine", str(runner.path), "--batch", "2", "--batch", "8"]
    assert main([*argv, "--iters", "3", "--warmup", "1"]) == 0
    assert runner._impl.calls == [("run", 2)] * 4 + [("run", 8)] * 4  # type: ignore[attr-defined]
    lines = capsys.readouterr().out.splitlines()
    assert "backend fake" in lines[0]
    assert lines[1].startswith("batch    2: median ") and lines[1].endswith(", 3 runs)")
    assert lines[2].startswith("batch    8: median ") and "ms per face" in lines[2]
