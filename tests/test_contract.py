"""The model contract (ferfast.contract): one definition, which the C++ kernels are built from,
and one version literal."""

from __future__ import annotations

import ast
import importlib.metadata
import io
import re
import subprocess
import sys
import tokenize
from collections.abc import Callable
from pathlib import Path

import pytest
from cxx import contract_dir

import ferfast
from ferfast import _core
from ferfast.contract import (
    DEFAULT_BIAS,
    DEFAULT_SCALE,
    EMOTIONS,
    SIDE,
    metadata_props,
    parse_metadata,
)
from ferfast.framing import FRAMING, Framing

REPO = Path(__file__).resolve().parents[1]

# The numbers that only contract.py and framing.py may write: FRAMING's margins, offsets and eye
# positions. The side and the normalisation are looked for by shape (see the scans below).
FRAMING_LITERALS = {"0.966", "1.016", "0.016", "14.55", "17.7", "32.1"}


def python_defaults(framing: Framing = FRAMING) -> dict[str, object]:
    """The keyword defaults the native entry points must have, from Python's values."""
    return {
        "margin": framing.margin,
        "offset_x": framing.offset_x,
        "offset_y": framing.offset_y,
        "eye_left": framing.eye_left,
        "eye_right": framing.eye_right,
        "scale": framing.input_scale,
        "bias": framing.input_bias,
    }


def signature_defaults(func: Callable[..., object]) -> dict[str, object]:
    """Keyword defaults from a pybind11 function's rendered signature (its docstring's line 1)."""
    doc = func.__doc__ or ""
    line = next(ln for ln in doc.splitlines() if "(" in ln)
    found: dict[str, object] = {}
    for name in python_defaults():
        match = re.search(rf"\b{name}: [^=]*?= (\([^)]*\)|[-+\w.]+)", line)
        if match:
            found[name] = ast.literal_eval(match.group(1))
    return found


def header_constants(text: str) -> dict[str, float]:
    """``namespace::kName`` -> value of every constexpr in a generated contract.hpp."""
    found: dict[str, float] = {}
    namespace = ""
    for line in text.splitlines():
        if m := re.match(r"namespace (\w+) \{", line):
            namespace = m.group(1)
        elif m := re.match(r"constexpr (?:int|double) (k\w+) = ([^;]+);", line):
            found[f"{namespace}::{m.group(1)}"] = float(m.group(2))
    return found


def test_framing_is_the_contract_default_input() -> None:
    assert FRAMING.input_scale == DEFAULT_SCALE and FRAMING.input_bias == DEFAULT_BIAS
    assert _core.OUT_SIDE == SIDE


def test_generated_header_holds_the_contract() -> None:
    """contract.hpp (what CMake compiles the kernels with) carries Python's values, bit for bit."""
    got = header_constants((contract_dir() / "contract.hpp").read_text())
    f = FRAMING
    assert got == {
        "contract::kSide": SIDE,
        "contract::kScale": DEFAULT_SCALE,
        "contract::kBias": DEFAULT_BIAS,
        "defaults::kMargin": f.margin,
        "defaults::kOffsetX": f.offset_x,
        "defaults::kOffsetY": f.offset_y,
        "defaults::kEyeLeftX": f.eye_left[0],
        "defaults::kEyeLeftY": f.eye_left[1],
        "defaults::kEyeRightX": f.eye_right[0],
        "defaults::kEyeRightY": f.eye_right[1],
        "defaults::kScale": f.input_scale,
        "defaults::kBias": f.input_bias,
    }


def test_header_generation_needs_only_the_standard_library(tmp_path: Path) -> None:
    """The build environment has no NumPy: contract.py and framing.py import without it."""
    out = tmp_path / "contract.hpp"
    script = REPO / "cpp" / "contract_header.py"
    # -I -S: no site-packages, no PYTHONPATH, no user site.
    run = [sys.executable, "-I", "-S", str(script), str(REPO / "src"), str(out)]
    res = subprocess.run(run, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert out.read_text() == (contract_dir() / "contract.hpp").read_text()
    mtime = out.stat().st_mtime_ns
    subprocess.run(run, check=True)
    assert out.stat().st_mtime_ns == mtime  # unchanged text: not rewritten, nothing rebuilds


def _entry_points() -> dict[str, Callable[..., object]]:
    """The native functions with framing arguments that this build of _core has."""
    points: dict[str, Callable[..., object]] = {"preprocess": _core.preprocess}
    for name in ("preprocess_cuda", "_preprocess_cuda_emulated"):
        if hasattr(_core, name):
            points[name] = getattr(_core, name)
    trt = getattr(_core, "TrtRuntime", None)
    if trt is not None and hasattr(trt, "run_frame"):
        points["TrtRuntime.run_frame"] = trt.run_frame
    return points


@pytest.mark.parametrize("name", list(_entry_points()))
def test_native_signature_defaults_equal_python(name: str) -> None:
    """The built extension's defaults (what a caller of _core gets) are Python's framing: a
    stale build fails here."""
    got = signature_defaults(_entry_points()[name])
    want = {k: v for k, v in python_defaults().items() if k in got}
    assert set(got) >= {"margin", "offset_x", "offset_y", "eye_left", "eye_right"}, name
    assert got == want, name


def _cpp_code(path: Path) -> str:
    """A C++/CUDA source without comments and string literals."""
    text = re.sub(r"/\*.*?\*/", " ", path.read_text(), flags=re.S)
    text = re.sub(r'R"doc\(.*?\)doc"', " ", text, flags=re.S)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    return re.sub(r"//[^\n]*", "", text)


def test_cpp_has_no_copy_of_the_contract() -> None:
    """The kernels take the side, the normalisation and the framing from contract.hpp."""
    sources = sorted(p for ext in ("hpp", "cpp", "cu") for p in (REPO / "cpp").rglob(f"*.{ext}"))
    assert sources
    literals = re.compile(r"\b(48|255(\.0*f?)?)\b|" + "|".join(map(re.escape, FRAMING_LITERALS)))
    found = [
        f"{p.relative_to(REPO)}: {m.group(0)}"
        for p in sources
        for m in literals.finditer(_cpp_code(p))
    ]
    assert found == []
    assert not (REPO / "cpp" / "framing_defaults.hpp").exists()


# Python files whose own sizes or scaling are not the model input's: a peer model's contract
# (64x64 input), a HOG baseline's features, FER2013's 48x48 image space (the framing measurement,
# the training recipe's augmentation).
OWN_SIZES = {
    "training/peer.py",
    "training/classical.py",
    "training/strategies.py",
    "tools/measure_framing.py",
}
DEFINITIONS = {"src/ferfast/contract.py", "src/ferfast/framing.py"}


def _python_code(path: Path) -> str:
    """The code tokens of a Python file (no strings, no comments), space separated."""
    skip = {tokenize.STRING, tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE}
    skip |= {getattr(tokenize, n) for n in ("FSTRING_MIDDLE",) if hasattr(tokenize, n)}
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
    return " ".join(t.string for t in tokens if t.type not in skip)


def test_python_has_no_copy_of_the_contract() -> None:
    """Package, training, calibration, tools and benchmarks take the input side, the
    normalisation and the framing from ferfast.contract / ferfast.framing."""
    roots = ["src/ferfast", "training", "calibration", "tools", "benchmarks"]
    files = sorted(p for r in roots for p in (REPO / r).rglob("*.py") if "runs" not in p.parts)
    side = r"\b48 , 48\b"
    scaling = r"(/ 255\b|div_? \( 255\b|\b1\.0 / 255\b|\b255\.0\b)"
    framing = r"(?<![\w.])(" + "|".join(map(re.escape, FRAMING_LITERALS)) + r")(?![\w.])"
    found = []
    for path in files:
        rel = path.relative_to(REPO).as_posix()
        if rel in DEFINITIONS:
            continue
        code = _python_code(path)
        patterns = [framing] if rel in OWN_SIZES else [side, scaling, framing]
        found += [f"{rel}: {m.group(0)}" for pat in patterns for m in re.finditer(pat, code)]
    assert found == []


def test_version_is_the_installed_metadata() -> None:
    """ferfast.__version__ is the installed distribution's version (pyproject.toml's)."""
    installed = importlib.metadata.version("ferfast")
    assert ferfast.__version__ == installed
    files = {str(f): f for f in importlib.metadata.files("ferfast") or ()}
    generated = files.get("ferfast/_version.py")
    if generated is not None:  # a wheel built from this tree: the build's copy agrees
        text = Path(str(generated.locate())).read_text()
        assert f'version = "{installed}"' in text


def test_version_is_written_once() -> None:
    """pyproject.toml holds the only version literal among the code and build files."""
    text = (REPO / "pyproject.toml").read_text()
    version = re.search(r'^version = "([^"]+)"', text, flags=re.M)
    assert version is not None
    quoted = re.compile(rf"[\"']{re.escape(version.group(1))}[\"']")
    exts = {".py", ".sh", ".cpp", ".hpp", ".cu", ".toml", ".txt", ".cfg"}
    roots = ["src", "training", "calibration", "tools", "benchmarks", "cpp", "scripts", "deploy"]
    files = [p for r in roots for p in (REPO / r).rglob("*") if p.suffix in exts and p.is_file()]
    files += [REPO / "CMakeLists.txt", REPO / "pyproject.toml"]
    holders = [
        p.relative_to(REPO).as_posix()
        for p in files
        if "runs" not in p.parts and quoted.search(p.read_text(errors="replace"))
    ]
    assert holders == ["pyproject.toml"]


def test_metadata_props_round_trip() -> None:
    props = metadata_props(("a", "b", "c"), "1.2.3", input_scale=2 / 255, input_bias=-1.0)
    assert props["ferfast.emotions"] == "a,b,c" and props["ferfast.version"] == "1.2.3"
    meta = parse_metadata(props, 3, "m.onnx")
    assert meta.emotions == ("a", "b", "c")
    assert meta.input_scale == 2 / 255 and meta.input_bias == -1.0
    defaults = parse_metadata(metadata_props(EMOTIONS, "x"), 7, "m.onnx")
    assert defaults == (EMOTIONS, DEFAULT_SCALE, DEFAULT_BIAS)


def test_default_label_order_without_metadata() -> None:
    assert parse_metadata({}, 7, "m").emotions == EMOTIONS
    assert "disgust" not in parse_metadata({}, 6, "m").emotions
    with pytest.raises(ValueError, match="5 outputs and no 'ferfast.emotions'"):
        parse_metadata({}, 5, "m")
