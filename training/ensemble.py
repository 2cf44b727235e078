"""Ensembles of contract models fused into one ONNX graph, and their PublicTest/latency scores.

    python -m training.ensemble fuse src/ferfast/models/ferfast_fp32.onnx t1 --flip \\
        --out runs/ensembles/f_t1_flip.onnx [--weights 0.6,0.4]
    python -m calibration --fp32 runs/ensembles/f_t1_flip.onnx \\
        --out runs/ensembles/f_t1_flip_int8.onnx --method entropy --no-eval
    python -m training.ensemble evaluate runs/ensembles/f_t1_flip_int8.onnx \\
        --record training/ensembles/f_t1_flip_int8.json

``fuse`` embeds every member's graph (names prefixed ``m<i>/``) behind the contract input and
writes ``probs`` = the weighted mean of the members' probabilities; ``--flip`` adds horizontal-flip
test-time augmentation: the faces and their mirror images go through each member as one batch of
2N, and the two views' probabilities are averaged. Members are contract ONNX files or teacher
artifacts (:func:`training.teacher.resolve_teachers`); they must agree on emotions and input
normalisation. Teacher artifacts keep their float16 weights behind in-graph casts, which ONNX
Runtime (and the INT8 quantizer's pre-processing) folds. The averaging uses ops that the INT8
quantizer leaves in float (``Div``, ``Sum``, ``Reshape`` of float tensors, ``ReduceSum``), so the
probabilities keep full resolution in a Q/DQ model, as a single model's ``Softmax`` does.

``evaluate`` prints one table row (PublicTest accuracy, macro-F1, disgust recall; accuracy and
macro-F1 on the validation split of Training, marked when the model trained on those faces; median
latency at batch 1 and 64 in ``ferfast.ort.OrtRunner``); ``--record`` writes it as JSON for the
generated table in docs/comparison.md (:func:`training.tables.ensembles_table`).

Whether a model held the validation split out comes from its files, never from a flag: the
``ferfast.val_fraction`` metadata that ``training.export`` writes, else the training config in the
teacher manifest beside the file. A fused model records each member's fraction and, when all are
known, the smallest as its own: a smaller fraction's split is part of a larger one's (same seed),
so the smallest says which faces every member held out.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ferfast import __version__
from ferfast.assets import sha256_file
from ferfast.contract import INPUT_NAME, OUTPUT_NAME, SIDE, metadata_props
from ferfast.sysinfo import cpu_info

from .paths import CACHE, FER2013, REPO, repo_relative

if TYPE_CHECKING:
    from .metrics import Metrics

ENSEMBLES = REPO / "training" / "ensembles"  # recorded rows of the docs table
KEY_ARCH = "ferfast.arch"
KEY_ENSEMBLE = "ferfast.ensemble"  # JSON: members, weights, flip, the fuse command
_PREFIX = "ens/"  # names of the fusing nodes (members use "m<i>/")


@dataclass(frozen=True)
class Member:
    """One contract model to embed: its file, display name, graph and contract metadata."""

    path: Path
    name: str
    model: onnx.ModelProto
    emotions: tuple[str, ...]
    input_scale: float
    input_bias: float
    val_fraction: float | None = None  # the validation fraction its run held out; None: unknown


def recorded_val_fraction(path: str | Path, meta: dict[str, str]) -> float | None:
    """The validation fraction that the training run of the model at ``path`` held out: its
    ``ferfast.val_fraction`` metadata (``meta``), else the ``config`` of the teacher manifest
    beside it; None when neither says."""
    from .export import KEY_VAL_FRACTION, run_val_fraction
    from .teacher import MANIFEST_FILE, TeacherManifest

    if KEY_VAL_FRACTION in meta:
        return float(meta[KEY_VAL_FRACTION])
    path = Path(path)
    if (path.parent / MANIFEST_FILE).is_file():
        manifest = TeacherManifest.read(path.parent)
        if manifest.file == path.name and manifest.config:
            return run_val_fraction(manifest.config)
    return None


def held_out(val_fraction: float | None) -> bool:
    """True when a model's run held out the validation split that ``evaluate`` scores on."""
    from .data import VAL_FRACTION

    return val_fraction is not None and math.isclose(val_fraction, VAL_FRACTION)


def load_members(specs: list[str | Path]) -> list[Member]:
    """Members from ONNX paths or teacher artifacts (folders, names), contract-checked by
    :class:`ferfast.ort.OrtRunner`; ValueError when they disagree on emotions, input
    normalisation or default-domain opset."""
    from ferfast.ort import OrtRunner

    from .teacher import resolve_teachers

    paths = resolve_teachers(list(specs))
    if not paths:
        raise ValueError("an ensemble needs at least one member")
    members = []
    for p in paths:
        runner = OrtRunner(p, threads=1)
        model = onnx.load(str(p))
        meta = {e.key: e.value for e in model.metadata_props}
        name = meta.get(KEY_ARCH) or Path(p).stem
        members.append(
            Member(
                Path(p),
                name,
                model,
                runner.emotions,
                runner.input_scale,
                runner.input_bias,
                recorded_val_fraction(p, meta),
            )
        )
    first = members[0]
    for m in members[1:]:
        if m.emotions != first.emotions:
            raise ValueError(
                f"{m.path}: emotions {m.emotions} differ from {first.path}'s {first.emotions}"
            )
        if not math.isclose(m.input_scale, first.input_scale, rel_tol=1e-9) or not math.isclose(
            m.input_bias, first.input_bias, rel_tol=1e-9, abs_tol=1e-12
        ):
            raise ValueError(
                f"{m.path}: input normalisation (scale {m.input_scale}, bias {m.input_bias}) "
                f"differs from {first.path}'s (scale {first.input_scale}, bias {first.input_bias})"
            )
        if _opset(m.model) != _opset(first.model):
            raise ValueError(
                f"{m.path}: opset {_opset(m.model)} differs from {first.path}'s "
                f"{_opset(first.model)} (re-export the members at one opset)"
            )
    return members


def _opset(model: onnx.ModelProto) -> int:
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def ensemble_arch(names: list[str], weights: list[float] | None, flip: bool) -> str:
    """``ferfast.arch`` of a fused model, e.g. ``ensemble(f,t1)+flip``."""
    if weights is None or len(set(weights)) == 1:
        inner = ",".join(names)
    else:
        inner = ",".join(f"{n}:{w:g}" for n, w in zip(names, weights, strict=True))
    return f"ensemble({inner})" + ("+flip" if flip else "")


def fuse(
    members: list[Member],
    weights: list[float] | None = None,
    flip: bool = False,
    command: str = "",
) -> onnx.ModelProto:
    """One contract model: ``probs`` = sum_i w_i p_i / sum_i w_i over the members (and over the
    face and its mirror image with ``flip``)."""
    from .export import KEY_VAL_FRACTION

    if not members:
        raise ValueError("an ensemble needs at least one member")
    if weights is not None:
        if len(weights) != len(members):
            raise ValueError(f"{len(weights)} weights for {len(members)} members")
        if any(not math.isfinite(w) or w <= 0 for w in weights):
            raise ValueError(f"weights must be finite and positive, got {weights}")
    w = [1.0] * len(members) if weights is None else [float(x) for x in weights]
    k = len(members[0].emotions)
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    functions: list[onnx.FunctionProto] = []
    views = INPUT_NAME
    if flip:
        # Mirror along the width (last) axis: Slice from the last column back past the first.
        inits += [
            numpy_helper.from_array(np.array([-1], np.int64), _PREFIX + "flip_starts"),
            numpy_helper.from_array(
                np.array([np.iinfo(np.int64).min], np.int64), _PREFIX + "flip_ends"
            ),
            numpy_helper.from_array(np.array([3], np.int64), _PREFIX + "flip_axes"),
            numpy_helper.from_array(np.array([-1], np.int64), _PREFIX + "flip_steps"),
        ]
        nodes.append(
            helper.make_node(
                "Slice",
                [INPUT_NAME]
                + [_PREFIX + s for s in ("flip_starts", "flip_ends", "flip_axes", "flip_steps")],
                [_PREFIX + "flipped"],
                name=_PREFIX + "flip",
            )
        )
        views = _PREFIX + "views"
        nodes.append(
            helper.make_node(
                "Concat", [INPUT_NAME, _PREFIX + "flipped"], [views], axis=0, name=_PREFIX + "views"
            )
        )
    outs = []
    for i, m in enumerate(members):
        prefix = f"m{i}/"
        prefixed = onnx.compose.add_prefix(m.model, prefix)
        g = prefixed.graph
        src_in, src_out = prefix + INPUT_NAME, prefix + OUTPUT_NAME
        for node in g.node:
            node.input[:] = [views if x == src_in else x for x in node.input]
            nodes.append(node)
        inits += list(g.initializer)
        functions += list(prefixed.functions)
        outs.append(src_out)
    # Every step divides (never Mul): ONNX Runtime's quantizer leaves Div, Sum and ReduceSum in
    # float, so an INT8 model averages full-resolution probabilities.
    total = sum(w) * (2.0 if flip else 1.0)
    if len(set(w)) == 1:
        mean = outs[0]
        if len(outs) > 1:
            mean = _PREFIX + "sum"
            nodes.append(helper.make_node("Sum", outs, [mean], name=_PREFIX + "sum"))
        divisor = total / w[0]
        if divisor != 1.0:
            mean = _divide(mean, divisor, _PREFIX + "mean", nodes, inits)
    else:
        terms = [
            _divide(o, total / wi, f"{_PREFIX}term{i}", nodes, inits)
            for i, (o, wi) in enumerate(zip(outs, w, strict=True))
        ]
        mean = _PREFIX + "sum"
        nodes.append(helper.make_node("Sum", terms, [mean], name=_PREFIX + "sum"))
    if flip:
        # Rows [0, N) hold the faces, [N, 2N) their mirror images: (2, N, K) summed over views.
        inits.append(
            numpy_helper.from_array(np.array([2, -1, k], np.int64), _PREFIX + "by_view_shape")
        )
        nodes.append(
            helper.make_node(
                "Reshape",
                [mean, _PREFIX + "by_view_shape"],
                [_PREFIX + "by_view"],
                name=_PREFIX + "by_view",
            )
        )
        if _opset(members[0].model) >= 13:  # axes became an input in opset 13
            inits.append(numpy_helper.from_array(np.array([0], np.int64), _PREFIX + "view_axis"))
            reduce = helper.make_node(
                "ReduceSum", [_PREFIX + "by_view", _PREFIX + "view_axis"], [OUTPUT_NAME], keepdims=0
            )
        else:
            reduce = helper.make_node(
                "ReduceSum", [_PREFIX + "by_view"], [OUTPUT_NAME], axes=[0], keepdims=0
            )
        reduce.name = _PREFIX + "views_sum"
        nodes.append(reduce)
    elif mean != OUTPUT_NAME:
        nodes.append(helper.make_node("Identity", [mean], [OUTPUT_NAME], name=_PREFIX + "probs"))
    graph = helper.make_graph(
        nodes,
        "ferfast_ensemble",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", 1, SIDE, SIDE])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", k])],
        initializer=inits,
    )
    opsets: dict[str, int] = {}
    for m in members:
        for o in m.model.opset_import:
            domain = "" if o.domain == "ai.onnx" else o.domain
            opsets[domain] = max(opsets.get(domain, 0), o.version)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid(d, v) for d, v in sorted(opsets.items())],
        functions=functions,
        producer_name="ferfast.training.ensemble",
    )
    model.ir_version = max(m.model.ir_version for m in members)
    first = members[0]
    names = [m.name for m in members]
    meta = {
        **metadata_props(first.emotions, __version__, first.input_scale, first.input_bias),
        KEY_ARCH: ensemble_arch(names, weights, flip),
        KEY_ENSEMBLE: json.dumps(
            {
                "members": [
                    {
                        "name": m.name,
                        "file": repo_relative(m.path),
                        "sha256": sha256_file(m.path),
                        "val_fraction": m.val_fraction,
                    }
                    for m in members
                ],
                "weights": [wi / sum(w) for wi in w],
                "flip": flip,
                "command": command,
            }
        ),
    }
    fractions = [m.val_fraction for m in members]
    if all(f is not None for f in fractions):
        meta[KEY_VAL_FRACTION] = str(min(fractions))
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    return model


def _divide(
    name: str, divisor: float, out: str, nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto]
) -> str:
    const = out + "_divisor"
    inits.append(numpy_helper.from_array(np.array(divisor, np.float32), const))
    nodes.append(helper.make_node("Div", [name, const], [out], name=out))
    return out


def write_fused(
    specs: list[str | Path],
    out: str | Path,
    weights: list[float] | None = None,
    flip: bool = False,
    command: str = "",
) -> Path:
    """Load and check the members, fuse them and write ``out``."""
    model = fuse(load_members(specs), weights, flip, command)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    return out


@dataclass
class EnsembleRow:
    """One measured model: PublicTest and validation scores, CPU latency, and how to rebuild and
    re-measure it."""

    name: str
    file: str
    arch: str
    precision: str  # "fp32" | "int8"
    sha256: str
    publictest: dict  # accuracy, macro_f1, disgust_recall, n
    latency: dict  # b1_ms, b64_ms_per_face (medians), threads, repeats, load_1min (max)
    commands: list[str]
    date: str
    machine: str
    # accuracy, macro_f1, disgust_recall, n on the validation split, and held_out; None in rows
    # measured before the field existed and for models without the split (a peer library)
    validation: dict | None = None

    @classmethod
    def read(cls, path: str | Path) -> EnsembleRow:
        return cls(**json.loads(Path(path).read_text()))

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=1) + "\n")
        return path

    def line(self) -> str:
        """A markdown table row (the columns of :func:`training.tables.ensembles_table`)."""
        p, lat, v = self.publictest, self.latency, self.validation
        val = "–"
        if v:
            val = f"{v['accuracy']:.4f} / {v['macro_f1']:.4f}"
            val += "" if v.get("held_out") else " (seen)"
        return (
            f"| {self.name} | `{self.arch}` | {self.precision} | {p['accuracy']:.4f} "
            f"| {p['macro_f1']:.4f} | {p['disgust_recall']:.3f} | {val} | {lat['b1_ms']:.3f} "
            f"| {lat['b64_ms_per_face']:.3f} | {lat['load_1min']:.1f} |"
        )


def rebuild_commands(path: str | Path, meta: dict[str, str]) -> list[str]:
    """The commands that made ``path``: for a fused file, the recorded ``fuse`` command and, for
    an INT8 one, the ``python -m calibration`` call whose recipe matches its
    ``ferfast.calibration`` metadata; for a teacher artifact, its manifest's training command and
    the export; for a bundled single network, ``scripts/reproduce.sh``. Empty otherwise."""
    from ferfast.models import MODELS_DIR

    from .quantize import METHODS, QuantSettings

    path = Path(path)
    if KEY_ENSEMBLE not in meta:
        if (path.parent / "manifest.json").is_file():
            from .teacher import TeacherManifest

            m = TeacherManifest.read(path.parent)
            folder = repo_relative(path.parent)
            return [m.command, f"python -m training.teacher export runs/{m.name}/best.pt {folder}"]
        if path.resolve().parent == MODELS_DIR:
            return [f"bash scripts/reproduce.sh  # trains, exports and calibrates {path.name}"]
        return []
    doc = json.loads(meta[KEY_ENSEMBLE])
    cmds = [doc["command"]] if doc.get("command") else []
    recipe = meta.get("ferfast.calibration")
    if recipe is not None and cmds:
        flags = {
            QuantSettings(method=m, float_head=h).describe(): f"--method {m}"
            + ("" if h else " --quantize-head")
            for m in METHODS
            for h in (True, False)
        }.get(recipe)
        fp32 = shlex.split(doc.get("command", ""))
        src = fp32[fp32.index("--out") + 1] if "--out" in fp32 else "FUSED_FP32.onnx"
        if flags is None:
            cmds.append(
                f"python -m calibration --fp32 {src} --out {repo_relative(path)} ({recipe})"
            )
        else:
            cmds.append(
                f"python -m calibration --fp32 {src} --out {repo_relative(path)} {flags} --no-eval"
            )
    return cmds


def evaluate(
    path: str | Path,
    name: str | None = None,
    data: str | Path = FER2013,
    cache: str | Path = CACHE,
    repeats: int = 100,
    repeats_b64: int = 20,
    threads: int | None = None,
) -> EnsembleRow:
    """PublicTest scores (``training.evaluate.onnx_probs``, ``training.metrics``), the same on the
    validation split (``FerData.holdout``; held out or not by :func:`recorded_val_fraction`) and
    median latency at batch 1 and 64 (``ferfast.measure.measure_latency`` on PublicTest faces)."""
    from ferfast.measure import measure_latency
    from ferfast.ort import OrtRunner

    from .data import load, normalise
    from .evaluate import onnx_probs
    from .metrics import compute_metrics

    path = Path(path)
    ds, _ = load(data, cache)
    x, y = ds.subset("PublicTest")
    m = compute_metrics(y, onnx_probs(str(path), x), with_auc=False)
    meta = {e.key: e.value for e in onnx.load(str(path), load_external_data=False).metadata_props}
    _, (xval, yval) = ds.holdout()
    validation = None
    if len(yval):
        mval = compute_metrics(yval, onnx_probs(str(path), xval), with_auc=False)
        validation = validation_scores(mval, len(yval), recorded_val_fraction(path, meta))
    runner = OrtRunner(path, threads=threads)
    faces = normalise(x[:64], runner.input_scale, runner.input_bias)
    load_before = os.getloadavg()[0]
    b1 = measure_latency(runner, 1, repeats=repeats, data=faces)
    b64 = measure_latency(runner, 64, repeats=repeats_b64, data=faces)
    # The machine is shared: the run-queue length beside the timing says how much it was.
    load = max(load_before, os.getloadavg()[0])
    return EnsembleRow(
        name=name or path.stem,
        file=repo_relative(path),
        arch=meta.get(KEY_ARCH, "?"),
        precision=meta.get("ferfast.precision", "fp32"),
        sha256=sha256_file(path),
        publictest=publictest_scores(m, len(y)),
        latency=latency_record(
            b1.median_ms,
            b64.median_ms_per_face,
            runner.threads,
            [b1.repeats, b64.repeats],
            load,
        ),
        commands=rebuild_commands(path, meta),
        date=utc_now(),
        machine=f"{cpu_info().model}, ORT {_ort_version()}",
        validation=validation,
    )


def publictest_scores(m: Metrics, n: int) -> dict:
    """The ``publictest`` field of a row: accuracy, macro-F1, disgust recall, face count."""
    return {
        "accuracy": round(m.accuracy, 4),
        "macro_f1": round(m.macro_f1, 4),
        "disgust_recall": round(m.disgust_recall, 4),
        "n": n,
    }


def validation_scores(m: Metrics, n: int, val_fraction: float | None) -> dict:
    """The ``validation`` field of a row: the scores of :func:`publictest_scores` on the
    validation split, and ``held_out`` (:func:`held_out` of the model's recorded fraction)."""
    return {**publictest_scores(m, n), "held_out": held_out(val_fraction)}


def latency_record(
    b1_ms: float, b64_ms_per_face: float, threads: int, repeats: list[int], load_1min: float
) -> dict:
    """The ``latency`` field of a row: medians at batch 1 and 64, and how they were taken."""
    return {
        "b1_ms": round(b1_ms, 4),
        "b64_ms_per_face": round(b64_ms_per_face, 4),
        "threads": threads,
        "repeats": repeats,
        "load_1min": round(load_1min, 2),
    }


def utc_now() -> str:
    """The ``date`` field of a row."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


HEADER = (
    "| Model | Arch | Precision | Accuracy | Macro-F1 | Disgust recall | Val acc / F1 | b1 ms "
    "| b64 ms/face | Load |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|"
)


def _weights(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"weights must be comma-separated numbers: {text!r}"
        ) from None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m training.ensemble",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    fu = sub.add_parser("fuse", help="members -> one contract ONNX graph")
    fu.add_argument("members", nargs="+", help="ONNX files, teacher artifact folders or names")
    fu.add_argument("--out", required=True)
    fu.add_argument("--flip", action="store_true", help="average over the face and its mirror")
    fu.add_argument("--weights", type=_weights, default=None, help="w1,w2,... (normalised)")
    ev = sub.add_parser(
        "evaluate", help="PublicTest and validation scores and latency: one table row"
    )
    ev.add_argument("file")
    ev.add_argument("--name", default=None, help="row label (default: the file stem)")
    ev.add_argument("--record", default=None, help="write the row as JSON here")
    ev.add_argument("--data", default=str(FER2013))
    ev.add_argument("--cache", default=str(CACHE))
    ev.add_argument("--repeats", type=int, default=100, help="timed runs at batch 1")
    ev.add_argument("--repeats-b64", type=int, default=20, help="timed runs at batch 64")
    ev.add_argument(
        "--threads", type=int, default=None, help="intra-op threads (default: 2, or fewer CPUs)"
    )
    a = ap.parse_args(argv)
    if a.cmd == "fuse":
        args = [*a.members, "--out", repo_relative(a.out)]
        if a.flip:
            args.append("--flip")
        if a.weights:
            args += ["--weights", ",".join(f"{w:g}" for w in a.weights)]
        command = "python -m training.ensemble fuse " + " ".join(shlex.quote(s) for s in args)
        out = write_fused(a.members, a.out, a.weights, a.flip, command)
        meta = {e.key: e.value for e in onnx.load(str(out)).metadata_props}
        print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB): {meta[KEY_ARCH]}")
        return 0
    row = evaluate(a.file, a.name, a.data, a.cache, a.repeats, a.repeats_b64, a.threads)
    if a.record:
        row.commands.append(
            f"python -m training.ensemble evaluate {row.file} --name {shlex.quote(row.name)} "
            f"--record {repo_relative(a.record)}"
        )
        row.write(a.record)
    print(HEADER)
    print(row.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
