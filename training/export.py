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

from ferfast import __version__
from ferfast.contract import (
    DEFAULT_BIAS,
    DEFAULT_SCALE,
    INPUT_NAME,
    INPUT_SHAPE,
    OUTPUT_NAME,
    metadata_props,
)

from .data import EMOTIONS
from .model import ARCHS, FerNet, ProbsWrapper, build_net, fold_bn
from .paths import CACHE, FER2013

OPSET = 17
# Metadata key: the fraction of FER2013 Training that the run held out as its validation split
# (``training.data.VAL_FRACTION`` for the standard split, 0.0 when it trained on all of Training),
# so a model's validation figures say by themselves whether the model saw those faces.
KEY_VAL_FRACTION = "ferfast.val_fraction"


def run_val_fraction(config: dict) -> float:
    """The validation fraction a training run's ``config`` held out; a config without the key is
    from before the validation split, when runs trained on all of Training."""
    return float(config.get("val_fraction", 0.0))


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
    net: torch.nn.Module,
    path: str | os.PathLike,
    emotions: tuple[str, ...] = EMOTIONS,
    extra_meta: dict[str, str] | None = None,
    config: dict | None = None,
) -> Path:
    """Fold BN, wrap with softmax and write ``path`` (atomic). ``config`` (the checkpoint's
    training config) adds :data:`KEY_VAL_FRACTION`."""
    if len(emotions) != net.num_classes:
        raise ValueError(f"{len(emotions)} class names for a {net.num_classes}-class net")
    model = ProbsWrapper(fold_bn(net)).eval()
    dummy = torch.zeros(2, *INPUT_SHAPE)
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
    meta = {**metadata_props(emotions, __version__), "ferfast.arch": net.arch}
    if config is not None:
        meta[KEY_VAL_FRACTION] = str(run_val_fraction(config))
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


def parity(net: torch.nn.Module, onnx_path: str | os.PathLike, x: np.ndarray) -> ParityResult:
    """Compare softmax probs of ``net`` (fp32, eval) and the ONNX file on ``x`` (N,1,48,48)."""
    from ferfast.ort import OrtRunner

    x = np.ascontiguousarray(x, dtype=np.float32)
    with torch.no_grad():
        ref = torch.softmax(net.eval()(torch.from_numpy(x)), 1).numpy()
    got = OrtRunner(onnx_path).run(x)
    return ParityResult(
        max_abs_diff=float(np.abs(ref - got).max()),
        n=len(x),
        argmax_agree=float((ref.argmax(1) == got.argmax(1)).mean()),
    )


def load_checkpoint_net(ckpt_path: str | os.PathLike) -> tuple[torch.nn.Module, dict]:
    """Rebuild the net of a training checkpoint (uses its best weights when present)."""
    ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    cfg = ck["config"]
    net = build_net(cfg["arch"], num_classes=ck["num_classes"], dropout=cfg.get("dropout", 0.3))
    net.load_state_dict(ck.get("best_state") or ck["model"])
    return net.eval(), ck


def load_onnx_net(path: str | os.PathLike, images: np.ndarray) -> FerNet:
    """Rebuild a trainable net from a ferfast fp32 ONNX file that ``export_onnx`` wrote.

    The file's BatchNorm is folded into its convolutions, so each BatchNorm is given back as the
    statistics of its convolution's output on up to 2,048 of ``images`` (uint8 (N,48,48), Training
    faces): running mean m and variance v, weight sqrt(v + eps), bias m + the folded bias. In eval
    mode that is exactly the file's function whatever m and v are; with m and v measured on the
    data, training-mode batch statistics start close to them, so fine-tuning does not start by
    rescaling every layer.
    """
    from onnx import numpy_helper

    model = onnx.load(str(path))
    meta = {p.key: p.value for p in model.metadata_props}
    arch = meta.get("ferfast.arch", "")
    if arch not in ARCHS:
        raise ValueError(  # residual teachers start from checkpoints (--init-from CKPT)
            f"{path}: ferfast.arch {arch!r} is not a training arch of the plain stacks "
            f"{sorted(ARCHS)}"
        )
    tensors = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}

    def weight(name: str) -> torch.Tensor:
        if name in tensors:
            return torch.from_numpy(tensors[name].astype(np.float32))
        if f"{name}_fp16" in tensors:  # a teacher artifact: fp16 weights cast up in the graph
            return torch.from_numpy(tensors[f"{name}_fp16"].astype(np.float32))
        raise ValueError(f"{path}: no initializer {name!r}; not a file export_onnx wrote")

    net = FerNet(arch, num_classes=len(EMOTIONS), dropout=0.0)
    convs = [i for i, m in enumerate(net.features) if isinstance(m, torch.nn.Conv2d)]
    biases: dict[int, torch.Tensor] = {}
    with torch.no_grad():
        for k, i in enumerate(convs):  # the folded graph holds Conv, ReLU pairs: conv k is 2k
            w = weight(f"net.features.{2 * k}.weight")
            if w.shape != net.features[i].weight.shape:
                raise ValueError(f"{path}: layer {i} weight {tuple(w.shape)} does not fit {arch}")
            net.features[i].weight.copy_(w)
            biases[i] = weight(f"net.features.{2 * k}.bias")
            bn = net.features[i + 1]
            bn.weight.fill_(1.0)
            bn.running_var.fill_(1.0 - bn.eps)
            bn.running_mean.zero_()
            bn.bias.copy_(biases[i])  # identity BN: the folded network exactly, in eval mode
        net.fc.weight.copy_(weight("net.fc.weight"))
        net.fc.bias.copy_(weight("net.fc.bias"))
        stats: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

        def record(i: int):
            def hook(_m: torch.nn.Module, _x: object, y: torch.Tensor) -> None:
                stats[i] = torch.var_mean(y, dim=(0, 2, 3), unbiased=False)

            return hook

        hooks = [net.features[i].register_forward_hook(record(i)) for i in convs]
        # a seeded sample, since image-folder data arrive sorted by class
        pick = np.random.default_rng(0).permutation(len(images))[:2048]
        x = torch.from_numpy(np.asarray(images)[np.sort(pick)]).float()
        x = x.mul_(DEFAULT_SCALE).add_(DEFAULT_BIAS).unsqueeze(1)
        net.eval()(x)
        for h in hooks:
            h.remove()
        for i in convs:
            bn = net.features[i + 1]
            v, m = stats[i]
            bn.running_mean.copy_(m)
            bn.running_var.copy_(v)
            bn.weight.copy_(torch.sqrt(v + bn.eps))
            bn.bias.copy_(m + biases[i])
    return net.eval()


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
    export_onnx(net, a.out, emotions, config=ck["config"])
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
