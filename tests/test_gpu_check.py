"""scripts/gpu-check.sh runs unattended and, without a GPU, skips every GPU part with a reason."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ferfast.tensorrt.gpu import cuda_device_count

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu-check.sh"


def test_script_parses() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_unknown_option_is_refused() -> None:
    proc = subprocess.run(["bash", str(SCRIPT), "--fast"], capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown option --fast" in proc.stderr


@pytest.mark.skipif(cuda_device_count() > 0, reason="a GPU is present: the parts would run")
def test_without_gpu_every_gpu_part_skips(shared_dir: Path) -> None:
    env = dict(os.environ, PYTHON=sys.executable, SHARED=str(shared_dir))
    proc = subprocess.run(
        ["bash", str(SCRIPT), "--no-build"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    for part in (
        "build",
        "CUDA preprocess vs CPU",
        "onnxruntime cuda (int8) vs cpu int8",
        "tensorrt engine (int8) vs cpu int8",
    ):
        assert f"[SKIP] {part}: " in out, out
    assert "[PASS]" not in out and "[FAIL]" not in out
    assert "gpu-check: 0 failed" in out
