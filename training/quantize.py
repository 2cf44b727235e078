"""Static INT8 quantization to a Q/DQ graph (ONNX Runtime), in the form TensorRT's explicit
quantization consumes: per-channel symmetric int8 weights, symmetric int8 activations (zero
point 0).

Calibration runs in chunks (the histogram methods otherwise keep every intermediate tensor of the
whole set in memory) and the resulting tensor ranges are handed to ``quantize_static`` as a
calibration cache, so one calibration can serve several quantization variants.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.calibrate import TensorsData, create_calibrator, save_tensors_data
from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry
from onnxruntime.quantization.shape_inference import quant_pre_process
from tqdm import tqdm

from ferfast.assets import sha256_file

METHODS: dict[str, CalibrationMethod] = {
    "entropy": CalibrationMethod.Entropy,
    "percentile": CalibrationMethod.Percentile,
    "minmax": CalibrationMethod.MinMax,
    "distribution": CalibrationMethod.Distribution,
}
# Probabilities stay float: quantizing Softmax would snap every score to a multiple of 1/127.
NOT_QUANTIZED_OPS = frozenset({"Softmax"})
_QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
# Ops that may sit between a classifier's last Gemm/MatMul and its Softmax and only shift, scale
# or reshape the logits (MatMul's bias Add, a temperature Div, a Reshape): they stay float with
# the layer, or their int8 output would put the logits back on a grid.
_LOGIT_OPS = frozenset(
    {"Add", "Sub", "Mul", "Div", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"}
)


@dataclass(frozen=True)
class QuantSettings:
    """How to calibrate and quantize (the recorded recipe of a shipped INT8 model)."""

    method: str = "entropy"
    percentile: float = 99.999
    per_channel: bool = True
    quantize_bias: bool = False
    relu_as_leaky: bool = True
    float_head: bool = True  # the classifier head (head_nodes) in float: full-resolution logits
    exclude_nodes: tuple[str, ...] = ()
    exclude_first_last: bool = False
    chunk: int = 128

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {sorted(METHODS)}, got {self.method!r}")
        if not 0.0 < self.percentile <= 100.0:
            raise ValueError(f"percentile must be in (0, 100], got {self.percentile}")
        if self.chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {self.chunk}")

    def describe(self) -> str:
        """One-line recipe, stored in the model's ``ferfast.calibration`` metadata."""
        s = f"method={self.method}"
        if self.method == "percentile":
            s += f"({self.percentile})"
        s += f" per_channel={self.per_channel} act=int8-sym w=int8-sym"
        s += " bias=int32" if self.quantize_bias else " bias=float"
        if self.relu_as_leaky:
            s += " relu=LeakyRelu(0)"
        if self.float_head:
            s += " head=float"
        if self.exclude_first_last:
            s += " excl=first_conv+last_gemm"
        if self.exclude_nodes:
            s += " excl=" + "+".join(self.exclude_nodes)
        return s


class ArrayReader(CalibrationDataReader):
    """Feeds rows of a float32 (N,1,48,48) array to the calibrator in batches."""

    def __init__(self, input_name: str, x: np.ndarray, batch: int) -> None:
        if x.dtype != np.float32 or x.ndim != 4:
            raise TypeError(f"calibration input must be float32 (N,1,H,W), got {x.dtype} {x.shape}")
        self.input_name, self.x, self.batch = input_name, x, batch
        self._it: Iterator[int] = iter(range(0, len(x), batch))

    def get_next(self) -> dict[str, np.ndarray] | None:
        i = next(self._it, None)
        return None if i is None else {self.input_name: self.x[i : i + self.batch]}

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch)

    def rewind(self) -> None:
        self._it = iter(range(0, len(self.x), self.batch))


def quantizable_op_types() -> list[str]:
    """Op types ONNX Runtime can quantize in Q/DQ form, less :data:`NOT_QUANTIZED_OPS`."""
    return sorted((set(QLinearOpsRegistry) | set(QDQRegistry)) - NOT_QUANTIZED_OPS)


def sensitive_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of the first Conv and the last Gemm/MatMul, the usual accuracy-sensitive layers."""
    names: list[str] = []
    convs = [n.name for n in model.graph.node if n.op_type == "Conv"]
    fcs = [n.name for n in model.graph.node if n.op_type in ("Gemm", "MatMul")]
    if convs:
        names.append(convs[0])
    if fcs:
        names.append(fcs[-1])
    return names


def head_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """Each classifier head, in graph order: the Gemm/MatMul whose output reaches a ``Softmax``
    through logit-only ops (bias Add, Reshape...), and those ops.

    Quantizing a head's output puts the logits on an int8 grid (steps of 0.06-0.075 for the
    shipped models), so two emotions often get exactly the same probability; kept in float, the
    logits have full resolution while the layer's input stays int8.
    """
    nodes = list(model.graph.node)
    producer = {o: i for i, n in enumerate(nodes) for o in n.output}
    consts = {i.name for i in model.graph.initializer}
    consts |= {n.output[0] for n in nodes if n.op_type == "Constant"}
    found: set[int] = set()
    for sm in (n for n in nodes if n.op_type == "Softmax"):
        path: list[int] = []
        at = producer.get(sm.input[0])
        while at is not None and nodes[at].op_type in _LOGIT_OPS:
            data = [i for i in nodes[at].input if i and i not in consts]
            if len(data) != 1:  # e.g. the sum of two activations: not a bias or a scale
                break
            path.append(at)
            at = producer.get(data[0])
        if at is not None and nodes[at].op_type in ("Gemm", "MatMul"):
            found.update([*path, at])
    return [nodes[i] for i in sorted(found)]


def name_heads(model: onnx.ModelProto) -> list[str]:
    """Names of the :func:`head_nodes`; unnamed ones are named in place, since
    ``quantize_static`` excludes nodes by name."""
    taken = {n.name for n in model.graph.node}
    heads = head_nodes(model)
    for n in heads:
        if not n.name:
            base = f"head/{n.op_type}"
            n.name = next(
                f"{base}_{k}" for k in range(len(taken) + 1) if f"{base}_{k}" not in taken
            )
            taken.add(n.name)
    return [n.name for n in heads]


def relu_to_leaky(model: onnx.ModelProto) -> int:
    """Rewrite every ``Relu`` as the identical ``LeakyRelu(alpha=0)`` in place; returns the count.

    With symmetric int8 activations a ``DQ -> Relu -> Q`` group cannot be folded away, and ONNX
    Runtime has no integer Relu: it runs dequantize, float Relu, quantize (a third of the INT8 time
    of a small CNN). ``DQ -> LeakyRelu -> Q`` becomes one int8 lookup (``QLinearLeakyRelu``).
    """
    n = 0
    for node in model.graph.node:
        if node.op_type == "Relu" and node.domain in ("", "ai.onnx"):
            node.op_type = "LeakyRelu"
            del node.attribute[:]
            node.attribute.append(onnx.helper.make_attribute("alpha", 0.0))
            n += 1
    return n


def share_relu_ranges(model: onnx.ModelProto, ranges: TensorsData) -> TensorsData:
    """Copy of ``ranges`` where each ``LeakyRelu(alpha=0)`` input takes its output's range.

    ONNX Runtime does this itself for ``Relu``/``Clip`` (negative inputs only need to reach 0);
    it gives the Conv output the resolution of the positive range, and input and output of the
    activation the same scale, so its int8 lookup is exactly ``max(q, 0)``.
    """
    out = TensorsData(ranges.calibration_method, dict(ranges.data))
    consumers: dict[str, int] = {}
    for n in model.graph.node:
        for i in n.input:
            consumers[i] = consumers.get(i, 0) + 1
    for n in model.graph.node:
        if n.op_type != "LeakyRelu" or consumers.get(n.input[0]) != 1:
            continue
        alpha = next((a.f for a in n.attribute if a.name == "alpha"), 0.01)
        if alpha == 0.0 and n.input[0] in out and n.output[0] in out:
            out[n.input[0]] = out[n.output[0]]
    return out


def preprocess_model(fp32: str | Path, out: str | Path, relu_as_leaky: bool = False) -> Path:
    """``quant_pre_process`` (shape inference + ORT basic graph optimisation, e.g. BN folding),
    then optionally :func:`relu_to_leaky`."""
    quant_pre_process(str(fp32), str(out), skip_symbolic_shape=False)
    if relu_as_leaky:
        m = onnx.load(str(out))
        if relu_to_leaky(m):
            onnx.save(m, str(out))
    return Path(out)


def calibrate(
    model: str | Path,
    x: np.ndarray,
    settings: QuantSettings,
    workdir: str | Path,
    progress: bool = True,
) -> TensorsData:
    """Tensor ranges of ``model`` (pre-processed) over calibration inputs ``x``, chunk by chunk."""
    model = onnx.load(str(model))
    inits = {i.name for i in model.graph.initializer}
    input_name = next(i.name for i in model.graph.input if i.name not in inits)
    extra: dict[str, object] = {"symmetric": True}
    if settings.method == "percentile":
        extra["percentile"] = settings.percentile
    calibrator = create_calibrator(
        Path(_save(model, Path(workdir) / "calib_input.onnx")),
        quantizable_op_types(),
        augmented_model_path=str(Path(workdir) / "augmented.onnx"),
        calibrate_method=METHODS[settings.method],
        extra_options=extra,
    )
    starts = range(0, len(x), settings.chunk)
    for i in tqdm(starts, desc=f"calibrate[{settings.method}]", disable=not progress, unit="chunk"):
        # One run per chunk: ORT's histogram collector stacks a chunk's outputs, so they must
        # have equal shapes (a ragged last batch would not).
        part = x[i : i + settings.chunk]
        calibrator.collect_data(ArrayReader(input_name, part, len(part)))
        calibrator.clear_collected_data()
    ranges = calibrator.compute_data()
    del calibrator
    return ranges


def _save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, str(path))
    return path


def quantize_model(
    fp32: str | Path,
    out: str | Path,
    x: np.ndarray,
    settings: QuantSettings | None = None,
    extra_metadata: dict[str, str] | None = None,
    ranges: TensorsData | None = None,
    progress: bool = True,
) -> QdqReport:
    """Calibrate on ``x`` (float32 (N,1,48,48), already normalised) and write the Q/DQ model.

    ``metadata_props`` of ``fp32`` are copied over, plus ``ferfast.precision`` = ``int8`` and
    ``ferfast.calibration`` (the recipe) and ``extra_metadata``. ``ranges`` reuses a calibration
    from :func:`calibrate` (same method) instead of calibrating again.
    """
    settings = settings or QuantSettings()
    fp32, out = Path(fp32), Path(out)
    if not fp32.is_file():
        raise FileNotFoundError(f"fp32 model not found: {fp32}")
    src = onnx.load(str(fp32))
    with tempfile.TemporaryDirectory(prefix="ferfast-quant-") as tmp:
        prep = preprocess_model(fp32, Path(tmp) / "prep.onnx", settings.relu_as_leaky)
        if ranges is None:
            ranges = calibrate(prep, x, settings, tmp, progress=progress)
        if ranges.calibration_method != METHODS[settings.method]:
            raise ValueError(f"ranges were calibrated with {ranges.calibration_method}")
        cache = Path(tmp) / "ranges.json"
        if settings.relu_as_leaky:
            ranges = share_relu_ranges(onnx.load(str(prep)), ranges)
        save_tensors_data(ranges, cache)
        exclude = list(settings.exclude_nodes)
        if settings.exclude_first_last:
            exclude += sensitive_nodes(onnx.load(str(prep)))
        if settings.float_head:
            m = onnx.load(str(prep))
            unnamed = sum(not n.name for n in m.graph.node)
            exclude += name_heads(m)
            if sum(not n.name for n in m.graph.node) != unnamed:
                onnx.save(m, str(prep))
        exclude = list(dict.fromkeys(exclude))
        quantize_static(
            str(prep),
            str(out),
            calibration_data_reader=None,
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=quantizable_op_types(),
            per_channel=settings.per_channel,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=exclude,
            calibrate_method=METHODS[settings.method],
            calibration_cache_path=str(cache),
            extra_options={
                "ActivationSymmetric": True,
                "WeightSymmetric": True,
                "QuantizeBias": settings.quantize_bias,
            },
        )
    q = onnx.load(str(out))
    # quant_pre_process declares every ORT-internal domain; keep only those the nodes use.
    used = {n.domain for n in q.graph.node} | {""}
    keep = [o for o in q.opset_import if o.domain in used or (o.domain == "ai.onnx")]
    del q.opset_import[:]
    q.opset_import.extend(keep)
    meta = {p.key: p.value for p in src.metadata_props}
    meta.update(
        {
            "ferfast.precision": "int8",
            "ferfast.calibration": settings.describe(),
            "ferfast.fp32_sha256": sha256_file(fp32),
        }
    )
    meta.update(extra_metadata or {})
    del q.metadata_props[:]
    for k, v in meta.items():
        q.metadata_props.add(key=k, value=v)
    q.doc_string = (
        (src.doc_string + "\n" if src.doc_string else "") + "INT8 Q/DQ: " + settings.describe()
    )
    onnx.checker.check_model(q)
    onnx.save(q, str(out))
    return inspect_qdq(q)


@dataclass(frozen=True)
class QdqReport:
    """What a Q/DQ graph contains (used to check the TensorRT-explicit-quantization form)."""

    n_quantize: int
    n_dequantize: int
    quantized_ops: dict[str, int]
    zero_point_dtypes: tuple[str, ...]
    zero_points_all_zero: bool
    per_channel_weights: int
    per_tensor_weights: int
    int32_bias_dq: int
    float_ops: dict[str, int] = field(default_factory=dict)
    grid_logits: int = 0  # Softmax nodes fed by a DequantizeLinear: logits on an int8 grid

    @property
    def symmetric_int8(self) -> bool:
        """Every zero point is int8 (or int32 bias) and equals 0."""
        return self.zero_points_all_zero and set(self.zero_point_dtypes) <= {"int8", "int32"}


def inspect_qdq(model: str | Path | onnx.ModelProto) -> QdqReport:
    """Count Q/DQ nodes, check zero points and per-channel weight scales of a Q/DQ model."""
    if isinstance(model, (str, Path)):
        model = onnx.load(str(model))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    zp_dtypes: set[str] = set()
    zp_zero = True
    per_ch = per_t = bias32 = 0
    for n in model.graph.node:
        if n.op_type not in _QDQ_OPS:
            continue
        if len(n.input) > 2 and n.input[2]:
            zp = inits.get(n.input[2])
            if zp is None:
                zp_zero = False
            else:
                zp_dtypes.add(str(zp.dtype))
                zp_zero &= bool(np.all(zp == 0))
        if n.op_type == "DequantizeLinear" and n.input[0] in inits:
            w = inits[n.input[0]]
            scale = inits.get(n.input[1])
            if w.dtype == np.int32:
                bias32 += 1
            elif scale is not None and scale.size > 1:
                per_ch += 1
            else:
                per_t += 1
    # A compute node runs quantized when its data input (and weight, for Conv/Gemm/MatMul) comes
    # from a DequantizeLinear and its output goes to a QuantizeLinear (the int8 fusion pattern).
    quantized: dict[str, int] = {}
    floating: dict[str, int] = {}
    q_inputs = {n.input[0] for n in model.graph.node if n.op_type == "QuantizeLinear"}

    def from_dq(name: str) -> bool:
        p = producers.get(name)
        return p is not None and p.op_type == "DequantizeLinear"

    for n in model.graph.node:
        if n.op_type in _QDQ_OPS or not n.input:
            continue
        ok = from_dq(n.input[0]) and all(o in q_inputs for o in n.output)
        if n.op_type in ("Conv", "Gemm", "MatMul") and len(n.input) > 1:
            ok = ok and from_dq(n.input[1])
        bucket = quantized if ok else floating
        bucket[n.op_type] = bucket.get(n.op_type, 0) + 1
    count = {op: sum(n.op_type == op for n in model.graph.node) for op in _QDQ_OPS}
    grid = sum(n.op_type == "Softmax" and from_dq(n.input[0]) for n in model.graph.node)
    return QdqReport(
        n_quantize=count["QuantizeLinear"],
        n_dequantize=count["DequantizeLinear"],
        quantized_ops=quantized,
        zero_point_dtypes=tuple(sorted(zp_dtypes)),
        zero_points_all_zero=zp_zero,
        per_channel_weights=per_ch,
        per_tensor_weights=per_t,
        int32_bias_dq=bias32,
        float_ops=floating,
        grid_logits=grid,
    )


def fold_bias_dequantize(model: onnx.ModelProto) -> onnx.ModelProto:
    """Copy of ``model`` with each int32-bias ``DequantizeLinear`` folded into a float initializer.

    TensorRT's ONNX parser accepts DequantizeLinear only on int8/fp8/int4 data, not on int32 bias;
    this gives the TensorRT builder the same graph with float biases (numerically identical).
    """
    model = onnx.ModelProto.FromString(model.SerializeToString())
    inits = {i.name: i for i in model.graph.initializer}
    keep: list[onnx.NodeProto] = []
    replaced: dict[str, onnx.TensorProto] = {}
    for n in model.graph.node:
        w = inits.get(n.input[0]) if n.op_type == "DequantizeLinear" else None
        if w is not None and w.data_type == onnx.TensorProto.INT32:
            q = numpy_helper.to_array(w).astype(np.float64)
            s = numpy_helper.to_array(inits[n.input[1]]).astype(np.float64)
            replaced[n.output[0]] = numpy_helper.from_array((q * s).astype(np.float32), n.output[0])
        else:
            keep.append(n)
    del model.graph.node[:]
    model.graph.node.extend(keep)
    model.graph.initializer.extend(replaced.values())
    used = {i for n in model.graph.node for i in n.input} | {o.name for o in model.graph.output}
    alive = [i for i in model.graph.initializer if i.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(alive)
    return model
