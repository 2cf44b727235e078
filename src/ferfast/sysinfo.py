"""The machine a figure was measured on: CPU model and SIMD feature flags (Linux /proc/cpuinfo)."""

from __future__ import annotations

import platform
from dataclasses import dataclass

from ferfast._types import PathLike

CPUINFO = "/proc/cpuinfo"


@dataclass(frozen=True)
class CpuInfo:
    """CPU model name and feature flags (x86 ``flags`` or ARM ``Features``; empty if unknown)."""

    model: str
    flags: frozenset[str]


def cpu_info(path: PathLike = CPUINFO) -> CpuInfo:
    """The first processor's model name and flags from ``path``.

    Without a ``model name`` line (some ARM kernels, other systems) the model is
    ``platform.processor()`` or ``platform.machine()``; an unreadable file gives no flags.
    """
    model, flags = "", frozenset[str]()
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and not model:
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = frozenset(value.split())
                if model and flags:
                    break
    except OSError:
        pass
    return CpuInfo(model or platform.processor() or platform.machine(), flags)
