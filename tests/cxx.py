"""Include flags for the tests that compile cpp/ sources with the system compiler, as CMake
builds them: cpp/ and a folder with contract.hpp generated from this tree's src/ferfast."""

from __future__ import annotations

import atexit
import functools
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CPP = REPO / "cpp"


@functools.cache
def contract_dir() -> Path:
    """A temporary folder holding contract.hpp (cpp/contract_header.py), removed at exit."""
    folder = Path(tempfile.mkdtemp(prefix="ferfast-contract-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    script = CPP / "contract_header.py"
    subprocess.run(
        [sys.executable, str(script), str(REPO / "src"), str(folder / "contract.hpp")], check=True
    )
    return folder


def include_flags() -> list[str]:
    """``-I`` flags for cpp/ sources."""
    return [f"-I{CPP}", f"-I{contract_dir()}"]
