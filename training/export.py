"""ONNX export (opset 17, dynamic batch, ``input`` -> ``probs``, ferfast metadata), parity."""

from __future__ import annotations

import argparse
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch

from ferfast.contract import INPUT_NAME, OUTPUT_NAME, metadata_props

from .data import EMOTIONS
from .model import FerNet, ProbsWrapper, fold_bn
from .paths import CACHE, FER2013

OPSET = 17
FERFAST_VERSION = "0.1.0"


@dataclass
class ParityResult:
    """Max absolute probability difference between PyTorch and ONNX Runtime on a batch."""

    max_abs_diff: float
    n: int
    argmax_agree: float

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= 1e-4


def export_onnx(
    net: FerNet,
    path: str | os.PathLike,
    emotions: tuple[str, ...] = EMOTIONS,
    extra_meta: dict[str, str] | None = None,
) -> Path:
    """Fold BN, wrap with softmax and write ``path`` (atomic)."""
    if len(emotions) != net.num_classes:
        raise ValueError(f"{len(emotions)} class names for a {net.num_classes}-class net")
    model = ProbsWrapper(fold_bn(net)).eval()
    dummy = torch.zeros(2, 1, 48, 48)
    buf = io.BytesIO()
    torch.onnx.export(
        model,
        (dummy,),
        buf,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_axes={INPUT_NAME: {0: "N"}, OUTPUT_NAME: {0: "N"}},
        opset_version=OPSET,
        do_constant_folding=True,
        dynamo=False,
    )
    m = _inline_identities(onnx.load_from_string(buf.getvalue()))
    meta = {**metadata_props(emotions, FERFAST_VERSION), "ferfast.arch": net.arch}
    meta.update(extra_meta or {})
    del m.metadata_props[:]
    for k, v in meta.items():
        p = m.metadata_props.add()
        p.key, p.value = k, str(v)
    onnx.checker.check_model(m)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    onnx.save(m, str(tmp))
    os.replace(tmp, path)
    return path


def _inline_identities(m: onnx.ModelProto) -> onnx.ModelProto:
    """Replace ``Identity(initializer)`` nodes (deduplicated constants) by initializer copies.

    The TorchScript exporter shares equal constants through Identity nodes; quantizers expect
    Conv biases to be initializers.
    """
    inits = {t.name: t for t in m.graph.initializer}
    keep = []
    for node in m.graph.node:
        if node.op_type == "Identity" and node.input[0] in inits:
            t = onnx.TensorProto()
            t.CopyFrom(inits[node.input[0]])
            t.name = node.output[0]
            m.graph.initializer.append(t)
        else:
            keep.append(node)
    del m.graph.node[:]
    m.graph.node.extend(keep)
    used = {i for n in m.graph.node for i in n.input} | {o.name for o in m.graph.output}
    dead = [t for t in m.graph.initializer if t.name not in used]
    for t in dead:
        m.graph.initializer.remove(t)
    return m


def parity(net: FerNet, onnx_path: str | os.PathLike, x: np.ndarray) -> ParityResult:
    """Compare softmax probs of ``net`` (fp32, eval) and the ONNX file on ``x`` (N,1,48,48)."""
    from ferfast.runtime import OrtRunner

    x = np.ascontiguousarray(x, dtype=np.float32)
    with torch.no_grad():
        ref = torch.softmax(net.eval()(torch.from_numpy(x)), 1).numpy()
    got = OrtRunner(onnx_path).run(x)
    return ParityResult(
        max_abs_diff=float(np.abs(ref - got).max()),
        n=len(x),
        argmax_agree=float((ref.argmax(1) == got.argmax(1)).mean()),
    )


def load_checkpoint_net(ckpt_path: str | os.PathLike) -> tuple[FerNet, dict]:
    """Rebuild the net of a training checkpoint (uses its best weights when present)."""
    ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    cfg = ck["config"]
    net = FerNet(cfg["arch"], num_classes=ck["num_classes"], dropout=cfg.get("dropout", 0.3))
    net.load_state_dict(ck.get("best_state") or ck["model"])
    return net.eval(), ck


def main() -> None:
    """``python -m training.export CKPT OUT.onnx``: export + PublicTest parity check."""
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("checkpoint")
    ap.add_argument("out")
    ap.add_argument("--data", default=str(FER2013))
    ap.add_argument("--cache", default=str(CACHE))
    a = ap.parse_args()
    from .data import load, normalise

    net, ck = load_checkpoint_net(a.checkpoint)
    emotions = tuple(ck["emotions"])
    export_onnx(net, a.out, emotions)
    data, _ = load(a.data, a.cache)
    x, _ = data.subset("PublicTest")
    x = normalise(x[:256])
    r = parity(net, a.out, x)
    size_mb = Path(a.out).stat().st_size / 1e6
    print(
        f"wrote {a.out} ({size_mb:.2f} MB); parity on {r.n} PublicTest faces: "
        f"max |dp| = {r.max_abs_diff:.2e}, argmax agreement {r.argmax_agree:.4f}"
    )
    if not r.ok:
        raise SystemExit("parity check FAILED (max abs prob diff > 1e-4)")


if __name__ == "__main__":
    main()
