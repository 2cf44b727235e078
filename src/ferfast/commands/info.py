"""``ferfast info``: what this installation has (versions, providers, CPU, cache, models)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ferfast.commands.common import EXIT_OK


def add_info(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "info",
        help="versions, execution providers, CPU features, detector cache and bundled models",
        description="Print what this installation has: versions of ferfast and its runtime "
        "libraries, ONNX Runtime execution providers, the CPU features ONNX Runtime can use, "
        "the native extension's GPU parts, the face-detector cache, and the bundled models "
        "with their PublicTest figures.",
    )
    p.set_defaults(func=_cmd_info)


# x86 SIMD flags (/proc/cpuinfo names) that decide which ONNX Runtime int8 kernels run.
_CPU_FLAGS = ("sse4_1", "avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "amx_bf16")


def _cpu_line() -> str:
    """CPU model, cores and the SIMD features that matter for inference (Linux /proc/cpuinfo)."""
    import os

    from ferfast.sysinfo import cpu_info

    cpu = cpu_info()
    flags = cpu.flags
    found = [f for f in _CPU_FLAGS if f in flags] or (["asimd"] if "asimd" in flags else [])
    return f"{cpu.model}, {os.cpu_count()} CPUs; features: {' '.join(found) or 'unknown'}"


def _cmd_info(args: argparse.Namespace) -> int:
    import os
    import platform

    import cv2
    import numpy as np
    import onnxruntime

    from ferfast import __version__, _core, assets
    from ferfast.detectors import YUNET_ENV
    from ferfast.models import list_models
    from ferfast.stream.kiosk import gui_backend

    cuda = "not compiled in"
    if _core.WITH_CUDA:
        cuda = f"compiled in, {_core.cuda_device_count()} GPU(s) visible"
    lines = [
        f"ferfast {__version__} ({Path(__file__).resolve().parent})",
        f"python {platform.python_version()} ({platform.platform()})",
        f"cpu: {_cpu_line()}",
        f"numpy {np.__version__}",
        f"opencv {cv2.__version__} (GUI: {gui_backend(cv2.getBuildInformation())})",
        f"onnxruntime {onnxruntime.__version__}: providers "
        + ", ".join(onnxruntime.get_available_providers()),
        f"native extension: CUDA preprocess {cuda}, TensorRT runtime "
        + ("compiled in" if _core.WITH_TENSORRT else "not compiled in"),
    ]
    home = assets.cache_dir()
    yunet_env = os.environ.get(YUNET_ENV)  # read as detectors.make_detector reads it
    for key, asset in assets.ASSETS.items():
        found = assets.cached(asset)
        if asset is assets.YUNET and yunet_env:
            state = f"{YUNET_ENV}={yunet_env} (used instead of the cache)"
        elif found:
            state = f"cached at {found}"
        else:
            state = f"not cached (ferfast download puts it in {home})"
        lines.append(f"{key}: {asset.name}, {state}")
    lines.append("bundled models, default first (FER2013 PublicTest, 3,589 faces):")
    models = list_models()
    width = max(len(m.name) for m in models)
    aliases = {m.name: "alias " + ", ".join(m.aliases) if m.aliases else "" for m in models}
    alias_width = max(len(a) for a in aliases.values())
    file_width = max(len(m.file) for m in models)
    for m in models:
        present = "" if m.path.is_file() else "  [file missing]"
        lines.append(
            f"  {m.name:<{width}} {aliases[m.name]:<{alias_width}} {m.file:<{file_width}} "
            f"{m.precision:<4} {m.params / 1e6:5.2f}M params "
            f"{m.mflops:5.1f} MFLOPs  accuracy {m.accuracy:.4f}  macro-F1 {m.macro_f1:.4f}  "
            f"disgust recall {m.disgust_recall:.3f}{present}"
        )
    print("\n".join(lines))
    return EXIT_OK
