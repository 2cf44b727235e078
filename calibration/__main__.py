"""``python -m calibration``: calibrate the fp32 model, write the INT8 Q/DQ model, evaluate it.

Example (from the repo root, or anywhere with it on ``PYTHONPATH``)::

    python -m calibration --fp32 src/ferfast/models/ferfast_fp32.onnx \\
        --out src/ferfast/models/ferfast_int8.onnx --method percentile

The recorded calibration set (``calibration/calibration_set.json``) is reused unless ``--resample``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from training.paths import CACHE
from training.quantize import METHODS, QuantSettings, quantize_model

from .dataset import DEFAULT_PER_CLASS, DEFAULT_SEED, RECORD_PATH
from .pipeline import (
    FP32_MODEL,
    INT8_MODEL,
    TEST_DATA,
    TRAIN_ROOT,
    calibration_inputs,
    calibration_set,
    evaluate_model,
    load_test,
    read_model_info,
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m calibration", description=__doc__.splitlines()[0])
    p.add_argument("--fp32", type=Path, default=FP32_MODEL, help="fp32 ONNX model")
    p.add_argument("--out", type=Path, default=INT8_MODEL, help="INT8 Q/DQ ONNX model to write")
    p.add_argument("--method", choices=sorted(METHODS), default="percentile")
    p.add_argument("--percentile", type=float, default=99.999)
    p.add_argument(
        "--exclude-first-last",
        action="store_true",
        help="keep the first Conv and the last Gemm in float",
    )
    p.add_argument("--exclude", nargs="*", default=[], help="node names kept in float")
    p.add_argument(
        "--bias-int32",
        action="store_true",
        help="int32 biases + DequantizeLinear (default: float; TensorRT cannot parse int32 DQ)",
    )
    p.add_argument(
        "--keep-relu",
        action="store_true",
        help="keep Relu (default: identical LeakyRelu(0), one int8 op in ONNX Runtime)",
    )
    p.add_argument(
        "--quantize-head",
        action="store_true",
        help="quantize the classifier's last layer too (default: float logits; int8 logits lie"
        " on a coarse grid, so two emotions can tie)",
    )
    p.add_argument("--record", type=Path, default=RECORD_PATH, help="calibration-set record")
    p.add_argument("--resample", action="store_true", help="draw and record a new calibration set")
    p.add_argument("--per-class", type=int, default=DEFAULT_PER_CLASS)
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument(
        "--train-root", default=None, help=f"Training split (default: recorded / {TRAIN_ROOT})"
    )
    p.add_argument(
        "--test-data",
        default=TEST_DATA,
        help="PublicTest faces for the evaluation: FER2013 folder (whole set or one split) or CSV",
    )
    p.add_argument("--cache", default=CACHE, help="decoded-data cache of --test-data")
    p.add_argument("--no-eval", action="store_true", help="skip the PublicTest evaluation")
    return p


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    info = read_model_info(a.fp32)
    cset = calibration_set(
        a.record, a.resample, info.emotions, a.per_class, a.seed, a.train_root or TRAIN_ROOT
    )
    print(f"calibration set: {len(cset)} faces, seed {cset.seed}, {cset.counts} ({a.record})")
    x = calibration_inputs(cset, info, a.train_root)
    settings = QuantSettings(
        method=a.method,
        percentile=a.percentile,
        quantize_bias=a.bias_int32,
        relu_as_leaky=not a.keep_relu,
        float_head=not a.quantize_head,
        exclude_nodes=tuple(a.exclude),
        exclude_first_last=a.exclude_first_last,
    )
    report = quantize_model(
        a.fp32,
        a.out,
        x,
        settings,
        extra_metadata={
            "ferfast.calibration_set": f"{a.record.name} ({len(cset)} faces, seed {cset.seed})"
        },
    )
    print(f"wrote {a.out}: {settings.describe()}")
    r = report
    print(f"  Q/DQ: {r.n_quantize} Q, {r.n_dequantize} DQ; int8 ops {r.quantized_ops}")
    print(f"  float ops {r.float_ops}; weights {r.per_channel_weights} per-channel,")
    print(f"  {r.per_tensor_weights} per-tensor; zero points {r.zero_point_dtypes}")
    print(f"  all zero points 0: {r.zero_points_all_zero}; Softmax on int8 logits: {r.grid_logits}")
    if a.no_eval:
        return 0
    test = load_test(info.emotions, a.test_data, a.cache)
    ref = evaluate_model(a.fp32, test, name="fp32")
    q = evaluate_model(a.out, test, reference=ref.probs, name="int8")
    for e in (ref, q):
        s = e.scores
        extra = "" if s.agreement is None else f"  agreement {s.agreement:.2f}%"
        print(f"  {e.name}: PublicTest n={s.n} acc {s.accuracy:.2f}%  F1 {s.macro_f1:.2f}%{extra}")
    loss = ref.scores.accuracy - q.scores.accuracy
    print(f"  accuracy loss: {loss:+.2f} points ({'OK' if loss <= 0.5 else 'EXCEEDS 0.5'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
