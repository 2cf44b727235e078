"""INT8 latency of candidate architectures: export, the shipped INT8 quantizer, timing.

Each net is exported by ``training.export``, quantized by ``training.quantize`` (the recipe
of the shipped INT8 model: Q/DQ, per-channel symmetric int8 weights, symmetric int8
activations, Softmax float; MinMax calibration on ``--calib`` Training faces) and timed in
``ferfast.ort.OrtRunner`` (2 intra-op threads, IO binding) by
``ferfast.measure.measure_latency``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from .export import export_onnx
from .model import ARCHS, FerNet, count_macs, count_params
from .paths import CACHE, FER2013


@dataclass
class Latency:
    """Median ms per face at batch 1 and batch 64 (INT8 and fp32)."""

    arch: str
    params: int
    mflops: float
    int8_b1_ms: float
    int8_b64_ms_per_face: float
    fp32_b1_ms: float
    fp32_b64_ms_per_face: float


def time_onnx(path: Path, batch: int, reps: int = 200, threads: int = 2) -> float:
    """Median milliseconds per face at ``batch`` (fewer timed runs for large batches)."""
    from ferfast.measure import measure_latency
    from ferfast.ort import OrtRunner

    repeats = max(20, reps // max(1, batch // 8))
    runner = OrtRunner(path, threads=threads)
    return measure_latency(runner, batch, repeats=repeats, warmup=20).median_ms_per_face


def measure(
    arch: str,
    calib: np.ndarray,
    net: FerNet | None = None,
    keep_dir: Path | None = None,
) -> Latency:
    """Export ``net`` (random init when None), quantize and time it (files kept in keep_dir)."""
    from .quantize import QuantSettings, quantize_model

    torch.manual_seed(0)
    net = net or FerNet(arch)
    if net.training:
        net.eval()
    with tempfile.TemporaryDirectory() as d:
        d = Path(keep_dir) if keep_dir else Path(d)
        d.mkdir(parents=True, exist_ok=True)
        fp32, int8 = export_onnx(net, d / "fp32.onnx"), d / "int8.onnx"
        quantize_model(fp32, int8, calib, QuantSettings(method="minmax"), progress=False)
        return Latency(
            arch=arch,
            params=count_params(net),
            mflops=2 * count_macs(arch, net.num_classes) / 1e6,
            int8_b1_ms=time_onnx(int8, 1),
            int8_b64_ms_per_face=time_onnx(int8, 64),
            fp32_b1_ms=time_onnx(fp32, 1),
            fp32_b64_ms_per_face=time_onnx(fp32, 64),
        )


def main() -> None:
    """``python -m training.latency [--archs xs s m l]``: INT8/fp32 latency table of candidates."""
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--archs", nargs="+", default=list(ARCHS))
    ap.add_argument("--data", default=str(FER2013))
    ap.add_argument("--cache", default=str(CACHE))
    ap.add_argument("--calib", type=int, default=256)
    ap.add_argument("--out", default=None, help="JSON output file")
    ap.add_argument("--checkpoint", default=None, help="time + score this trained checkpoint")
    a = ap.parse_args()
    from .data import load, normalise

    data, _ = load(a.data, a.cache)
    x, _ = data.subset("Training")
    idx = np.random.default_rng(0).choice(len(x), a.calib, replace=False)
    calib = normalise(x[idx])
    if a.checkpoint:
        _trained(a, data, calib)
        return
    rows = []
    for arch in a.archs:
        r = measure(arch, calib)
        rows.append(asdict(r))
        print(
            f"{arch:4s} params={r.params:8d} MFLOPs={r.mflops:6.1f} "
            f"int8 b1={r.int8_b1_ms:.3f} ms b64={r.int8_b64_ms_per_face:.3f} ms/face | "
            f"fp32 b1={r.fp32_b1_ms:.3f} b64={r.fp32_b64_ms_per_face:.3f}",
            flush=True,
        )
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(rows, indent=1))


def _trained(a: argparse.Namespace, data, calib: np.ndarray) -> None:
    """Latency of a trained checkpoint and its fp32 / INT8 PublicTest metrics."""
    from .evaluate import onnx_probs
    from .export import load_checkpoint_net
    from .metrics import compute_metrics

    net, ck = load_checkpoint_net(a.checkpoint)
    keep = Path(a.checkpoint).parent / "int8_probe"
    r = measure(ck["config"]["arch"], calib, net, keep_dir=keep)
    x, y = data.subset("PublicTest")
    res = {"latency": asdict(r)}
    for name in ("fp32", "int8"):
        m = compute_metrics(y, onnx_probs(str(keep / f"{name}.onnx"), x))
        res[name] = {
            "accuracy": m.accuracy,
            "macro_f1": m.macro_f1,
            "disgust_recall": m.disgust_recall,
        }
        print(f"{name}: PublicTest {m.line()}")
    print(json.dumps(res["latency"]))
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
