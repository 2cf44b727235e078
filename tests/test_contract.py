"""The model contract (ferfast.contract) and the native defaults that must equal Python's."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from pathlib import Path

import pytest

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

HEADER = Path(__file__).resolve().parents[1] / "cpp" / "framing_defaults.hpp"


def python_defaults(framing: Framing = FRAMING) -> dict[str, object]:
    """The keyword defaults the native entry points must have, from Python's values."""
    return {
        "margin": framing.margin,
        "offset_x": framing.offset_x,
        "offset_y": framing.offset_y,
        "eye_left": framing.eye_left,
        "eye_right": framing.eye_right,
        "scale": DEFAULT_SCALE,
        "bias": DEFAULT_BIAS,
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


def test_framing_is_the_contract_default_input() -> None:
    assert FRAMING.input_scale == DEFAULT_SCALE and FRAMING.input_bias == DEFAULT_BIAS
    assert _core.OUT_SIDE == SIDE


def test_header_constants_equal_python() -> None:
    """cpp/framing_defaults.hpp holds the same numbers as ferfast.framing.FRAMING."""
    consts = {
        m.group(1): eval(m.group(2), {"__builtins__": {}})  # noqa: S307 (arithmetic literals)
        for m in re.finditer(r"constexpr double k(\w+) = ([^;]+);", HEADER.read_text())
    }
    want = python_defaults()
    got = {
        "margin": consts["Margin"],
        "offset_x": consts["OffsetX"],
        "offset_y": consts["OffsetY"],
        "eye_left": (consts["EyeLeftX"], consts["EyeLeftY"]),
        "eye_right": (consts["EyeRightX"], consts["EyeRightY"]),
        "scale": consts["Scale"],
        "bias": consts["Bias"],
    }
    assert got == want


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
    """The built extension's defaults (what a caller of _core gets) are Python's framing."""
    got = signature_defaults(_entry_points()[name])
    want = {k: v for k, v in python_defaults().items() if k in got}
    assert set(got) >= {"margin", "offset_x", "offset_y", "eye_left", "eye_right"}, name
    assert got == want, name


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
