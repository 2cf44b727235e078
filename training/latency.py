"""INT8 latency of candidate architectures: export, ORT static QDQ quantization, timing.

Quantization mirrors the INT8 issue: QDQ, per-channel symmetric int8 weights, symmetric int8
activations; timing uses ONNX Runtime CPU, 2 intra-op threads, ORT_ENABLE_ALL.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from .export import export_onnx
from .model import ARCHS, FerNet, count_macs, count_params


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


def quantize_int8(fp32_path: Path, out_path: Path, calib: np.ndarray) -> Path:
    """Static QDQ quantization (per-channel symmetric int8 weights, symmetric int8 activations)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter([{"input": calib[i : i + 32]} for i in range(0, len(calib), 32)])

        def get_next(self):  # noqa: ANN201
            return next(self.it, None)

    quantize_static(
        str(fp32_path),
        str(out_path),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True},
    )
    return out_path


def time_onnx(path: Path, batch: int, reps: int = 200, threads: int = 2) -> float:
    """Median milliseconds per face."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((batch, 1, 48, 48), dtype=np.float32)
    for _ in range(20):
        sess.run(None, {"input": x})
    ts = []
    n = max(20, reps // max(1, batch // 8))
    for _ in range(n):
        t = time.perf_counter()
        sess.run(None, {"input": x})
        ts.append(time.perf_counter() - t)
    return float(np.median(ts)) * 1e3 / batch


def measure(
    arch: str,
    calib: np.ndarray,
    net: FerNet | None = None,
    keep_dir: Path | None = None,
) -> Latency:
    """Export ``net`` (random init when None), quantize and time it (files kept in keep_dir)."""
    torch.manual_seed(0)
    net = net or FerNet(arch)
    if net.training:
        net.eval()
    with tempfile.TemporaryDirectory() as d:
        d = Path(keep_dir) if keep_dir else Path(d)
        d.mkdir(parents=True, exist_ok=True)
        fp32 = export_onnx(net, d / "fp32.onnx")
        int8 = quantize_int8(fp32, d / "int8.onnx", calib)
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
    ap.add_argument("--data", default="../shared/data/fer2013")
    ap.add_argument("--cache", default="cache")
    ap.add_argument("--calib", type=int, default=256)
    ap.add_argument("--out", default=None, help="JSON output file")
    ap.add_argument("--checkpoint", default=None, help="time + score this trained checkpoint")
    a = ap.parse_args()
    from .data import load

    data, _ = load(a.data, a.cache)
    x, _ = data.subset("Training")
    idx = np.random.default_rng(0).choice(len(x), a.calib, replace=False)
    calib = (x[idx].astype(np.float32) / 255.0)[:, None]
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
