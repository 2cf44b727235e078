"""ferfast.sysinfo.cpu_info: /proc/cpuinfo parsing on x86 and ARM layouts, and without the file."""

from __future__ import annotations

import platform
from pathlib import Path

from ferfast.sysinfo import cpu_info

X86 = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz
flags\t\t: fpu sse4_1 avx2 fma avx512f

processor\t: 1
model name\t: another model
flags\t\t: fpu
"""

ARM = """processor\t: 0
BogoMIPS\t: 50.00
Features\t: fp asimd evtstrm aes
CPU implementer\t: 0x41
"""


def test_cpu_info_reads_the_first_processor(tmp_path: Path) -> None:
    path = tmp_path / "cpuinfo"
    path.write_text(X86)
    info = cpu_info(path)
    assert info.model == "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz"
    assert info.flags == {"fpu", "sse4_1", "avx2", "fma", "avx512f"}


def test_cpu_info_without_a_model_name_or_file(tmp_path: Path) -> None:
    """ARM kernels list Features but may lack "model name": the model falls back to platform."""
    fallback = platform.processor() or platform.machine()
    path = tmp_path / "cpuinfo"
    path.write_text(ARM)
    info = cpu_info(str(path))
    assert info.model == fallback and "asimd" in info.flags
    missing = cpu_info(tmp_path / "absent")
    assert missing.model == fallback and missing.flags == frozenset()
