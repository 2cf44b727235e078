"""Write the C++ view of the model contract: ``contract.hpp`` from ``ferfast.contract`` and
``ferfast.framing``.

CMake runs this at configure time (CMakeLists.txt) and puts the header in the build folder, so
the input side, the normalisation and the default framing have one definition, in Python, and
the C++ kernels still see them as compile-time constants. It imports the two modules from the
source tree (they need only the standard library) and writes the file only when its text
changes, so an unchanged contract rebuilds nothing.

Usage: python cpp/contract_header.py SRC_DIR OUT_FILE   (SRC_DIR holds the ferfast package)
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any


def render(side: int, scale: float, bias: float, framing: Any) -> str:
    """The header text for the contract values and the default ``Framing``."""

    def num(value: float) -> str:
        # repr is the shortest text that reads back as the same double, in C++ as in Python.
        return repr(float(value))

    f = framing
    lines = [
        "// The model contract for the C++ kernels, generated from src/ferfast/contract.py and",
        "// src/ferfast/framing.py by cpp/contract_header.py when CMake configures. Not to be",
        "// edited: change the Python definition and rebuild.",
        "#pragma once",
        "",
        "namespace ferfast {",
        "namespace contract {",
        "",
        f"constexpr int kSide = {int(side)};  // SIDE: model input (N, 1, kSide, kSide)",
        f"constexpr double kScale = {num(scale)};  // DEFAULT_SCALE: value = gray * scale + bias",
        f"constexpr double kBias = {num(bias)};  // DEFAULT_BIAS",
        "",
        "}  // namespace contract",
        "",
        "// ferfast.framing.FRAMING: the default framing of the entry points (preprocess,",
        "// preprocess_cuda, TrtRuntime.run_frame).",
        "namespace defaults {",
        "",
        f"constexpr double kMargin = {num(f.margin)};",
        f"constexpr double kOffsetX = {num(f.offset_x)};",
        f"constexpr double kOffsetY = {num(f.offset_y)};",
        f"constexpr double kEyeLeftX = {num(f.eye_left[0])};",
        f"constexpr double kEyeLeftY = {num(f.eye_left[1])};",
        f"constexpr double kEyeRightX = {num(f.eye_right[0])};",
        f"constexpr double kEyeRightY = {num(f.eye_right[1])};",
        f"constexpr double kScale = {num(f.input_scale)};",
        f"constexpr double kBias = {num(f.input_bias)};",
        "",
        "}  // namespace defaults",
        "}  // namespace ferfast",
        "",
    ]
    return "\n".join(lines)


def header_text(src: Path) -> str:
    """The header for the ferfast package under ``src``, imported from there."""
    sys.dont_write_bytecode = True  # nothing lands in the source tree
    sys.path.insert(0, str(src))
    try:
        contract = importlib.import_module("ferfast.contract")
        framing = importlib.import_module("ferfast.framing")
    finally:
        sys.path.remove(str(src))
    return render(contract.SIDE, contract.DEFAULT_SCALE, contract.DEFAULT_BIAS, framing.FRAMING)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    src, out = Path(argv[0]), Path(argv[1])
    text = header_text(src)
    if not out.is_file() or out.read_text() != text:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
