"""Teacher artifacts: a trained teacher in the small, committed form that distillation reads.

    python -m training.teacher export runs/t1/best.pt training/teachers/t1
    python -m training.teacher list                      # every artifact under training/teachers
    python -m training.teacher verify training/teachers/t1

An artifact is a folder ``training/teachers/<name>/`` holding ``teacher.onnx`` (the ferfast model
contract; weights stored as float16 and cast to float32 inside the graph, so I/O and compute stay
float32; INT8 Q/DQ when the fp16 file would exceed ``--max-mb``) and ``manifest.json``
(:class:`TeacherManifest`: architecture, size, epochs trained of planned, validation and
PublicTest scores measured on the exported file, its sha256, the command that reproduces or
resumes the run).
``--teacher`` of ``training.train`` takes such a folder, a folder of them, or a name (see
:func:`resolve_teachers`); a file whose sha256 disagrees with its manifest is refused.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import tempfile
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ferfast.assets import sha256_file
from ferfast.sysinfo import cpu_info

from .metrics import Metrics, compute_metrics
from .paths import CACHE, FER2013, REPO, repo_relative

TEACHERS = REPO / "training" / "teachers"
MODEL_FILE = "teacher.onnx"
MANIFEST_FILE = "manifest.json"
MAX_MB = 10.0
# Flags that never change the trained weights (how a run executes, how verbosely).
_NOT_RECIPE = ("out", "progress", "stop_after", "threads", "device", "time_limit")


@dataclass
class TeacherManifest:
    """What ``manifest.json`` records about one teacher artifact."""

    name: str
    file: str
    format: str  # "fp16-weights" | "int8-qdq"
    sha256: str
    bytes: int
    arch: str
    params: int
    mflops: float
    strategy: str
    epochs_trained: int
    epochs_planned: int
    best_epoch: int
    finished: bool
    status: str
    publictest: dict  # accuracy, macro_f1, disgust_recall, n: measured on ``file``
    checkpoint_publictest: dict  # the same scores of the float32 checkpoint
    max_abs_prob_diff: float  # ``file`` against the float32 checkpoint on PublicTest
    command: str
    date: str
    machine: str
    config: dict = field(default_factory=dict)
    # the same scores on the run's validation split (what selected the weights), measured on
    # ``file``; empty for runs made before the split, which selected on PublicTest
    validation: dict = field(default_factory=dict)
    # where the run's checkpoint came from when it was not trained by ``command`` on this machine
    # (a GPU run, say); empty otherwise
    provenance: str = ""

    @classmethod
    def read(cls, folder: str | Path) -> TeacherManifest:
        """Parse ``folder/manifest.json`` (ValueError names a missing or unknown key)."""
        path = Path(folder) / MANIFEST_FILE
        if not path.is_file():
            raise FileNotFoundError(f"no teacher manifest: {path}")
        doc = json.loads(path.read_text())
        names = {f.name for f in fields(cls)}
        missing = names - set(doc) - {"config", "validation", "provenance"}
        if missing or set(doc) - names:
            raise ValueError(
                f"{path}: manifest keys differ (missing {sorted(missing)}, "
                f"unknown {sorted(set(doc) - names)})"
            )
        return cls(**doc)

    def write(self, folder: str | Path) -> Path:
        path = Path(folder) / MANIFEST_FILE
        path.write_text(json.dumps(asdict(self), indent=1) + "\n")
        return path


def sha256(path: str | Path) -> str:
    """Hex sha256 of a file."""
    return sha256_file(path)


def fp16_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    """Store every float32 initializer as float16 behind a ``Cast`` to float32 (in place).

    The graph's inputs, outputs and arithmetic stay float32 (the model contract; ONNX Runtime
    folds the casts at load), so the file halves while the math is that of rounded weights.
    """
    casts = []
    for t in model.graph.initializer:
        if t.data_type != TensorProto.FLOAT:
            continue
        arr = numpy_helper.to_array(t)
        name = t.name
        t.CopyFrom(numpy_helper.from_array(arr.astype(np.float16), name + "_fp16"))
        casts.append(helper.make_node("Cast", [name + "_fp16"], [name], to=TensorProto.FLOAT))
    nodes = casts + list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    onnx.checker.check_model(model)
    return model


def train_command(config: dict) -> str:
    """The ``training.train`` command line that reproduces (or, with ``--resume``, continues) a
    run: its output folder plus every recipe flag that differs from the default."""
    from .config import TrainConfig

    default = asdict(TrainConfig())
    parts = ["python -m training.train", f"--out {shlex.quote(repo_relative(config['out']))}"]
    for k, v in config.items():
        always = k in ("arch", "strategy", "epochs")  # readable without the defaults at hand
        if k in _NOT_RECIPE or k not in default or (v == default[k] and not always):
            continue
        flag = "--" + k.replace("_", "-")
        if k in ("data", "cache"):
            if Path(v).resolve() != Path(default[k]).resolve():
                parts.append(f"{flag} {shlex.quote(repo_relative(v))}")
        elif isinstance(v, bool):
            parts.append(flag if v else "--no-" + flag[2:])
        else:
            parts.append(f"{flag} {shlex.quote(str(v))}")
    if "val_fraction" not in config:  # a run from before the validation split
        parts.append("--val-fraction 0")
    if config.get("threads"):
        parts.append(f"--threads {config['threads']}")
    return " ".join(parts + ["--resume"])


def _machine() -> str:
    import torch

    return f"{cpu_info().model}, {os.cpu_count()} cores, torch {torch.__version__}"


def export_teacher(
    checkpoint: str | Path,
    dest: str | Path,
    data: str | Path = FER2013,
    cache: str | Path = CACHE,
    max_mb: float = MAX_MB,
    name: str | None = None,
    provenance: str = "",
) -> TeacherManifest:
    """Export a training checkpoint (its best weights) to the artifact folder ``dest``.

    Validation (the run's own split) and PublicTest scores are measured on the written file; the
    checkpoint's ``last.pt`` beside ``checkpoint`` (when present) gives the epochs trained so far.
    """
    import torch

    from .data import EMOTIONS, load
    from .evaluate import onnx_probs
    from .export import export_onnx, load_checkpoint_net, run_val_fraction
    from .model import count_macs, count_params
    from .predict import predict_probs

    net, ck = load_checkpoint_net(checkpoint)
    cfg = ck["config"]
    if tuple(ck["emotions"]) != EMOTIONS:
        raise ValueError(f"{checkpoint}: a teacher needs the 7 classes {EMOTIONS}")
    last = Path(checkpoint).with_name("last.pt")
    epochs, stopped = len(ck.get("history") or []), False
    if last.is_file():
        lk = torch.load(last, map_location="cpu", weights_only=False)
        epochs = lk["epoch"]
        stopped = bool(cfg.get("patience") and lk["bad_epochs"] >= cfg["patience"])
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / MODEL_FILE
    ds, _ = load(data, cache)
    x, y = ds.subset("PublicTest")
    _, (xval, yval) = ds.holdout(run_val_fraction(cfg))
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_onnx(net, Path(tmp) / "fp32.onnx", config=cfg)
        chosen, fmt = Path(tmp) / "fp16.onnx", "fp16-weights"
        onnx.save(fp16_weights(onnx.load(str(fp32))), str(chosen))
        if chosen.stat().st_size > max_mb * 1e6:
            # Too big as fp16: the shipped INT8 recipe (MinMax on 256 Training faces).
            from .data import normalise
            from .quantize import QuantSettings, quantize_model

            (xt, _), _ = ds.holdout(run_val_fraction(cfg))
            idx = np.random.default_rng(0).choice(len(xt), min(256, len(xt)), replace=False)
            chosen, fmt = Path(tmp) / "int8.onnx", "int8-qdq"
            settings = QuantSettings(method="minmax")
            quantize_model(fp32, chosen, normalise(xt[idx]), settings, progress=False)
        size = chosen.stat().st_size
        if size > max_mb * 1e6:
            raise ValueError(
                f"{checkpoint}: the {fmt} teacher file is {size:,} bytes > {max_mb} MB"
            )
        shutil.copyfile(chosen, out)
    got = onnx_probs(str(out), x)
    validation = {}
    if len(yval):
        mval = compute_metrics(yval, onnx_probs(str(out), xval), with_auc=False)
        validation = _scores(mval, len(yval))
    ref = predict_probs(net, x, cfg["strategy"])
    m, mref = compute_metrics(y, got, with_auc=False), compute_metrics(y, ref, with_auc=False)
    finished = epochs >= cfg["epochs"] or stopped
    command = train_command(cfg)
    status = (
        f"finished: {epochs} of {cfg['epochs']} epochs"
        if finished
        else f"epochs {epochs} of {cfg['epochs']}, run unfinished: resume with {command}"
    )
    manifest = TeacherManifest(
        name=name or dest.name,
        file=MODEL_FILE,
        format=fmt,
        sha256=sha256(out),
        bytes=out.stat().st_size,
        arch=cfg["arch"],
        params=count_params(net),
        mflops=round(2 * count_macs(cfg["arch"], net.num_classes) / 1e6, 1),
        strategy=cfg["strategy"],
        epochs_trained=epochs,
        epochs_planned=cfg["epochs"],
        best_epoch=ck["best_epoch"],
        finished=finished,
        status=status,
        publictest=_scores(m, len(y)),
        checkpoint_publictest=_scores(mref, len(y)),
        max_abs_prob_diff=float(np.abs(got - ref).max()),
        command=command,
        date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        machine=_machine(),
        config={
            k: v
            for k, v in cfg.items()
            if k not in ("out", "data", "cache", "progress", "stop_after", "time_limit")
        },
        validation=validation,
        provenance=provenance,
    )
    manifest.write(dest)
    return manifest


def _scores(m: Metrics, n: int) -> dict:
    return {
        "accuracy": round(m.accuracy, 4),
        "macro_f1": round(m.macro_f1, 4),
        "disgust_recall": round(m.disgust_recall, 4),
        "n": n,
    }


def verify(folder: str | Path) -> TeacherManifest:
    """The manifest of an artifact whose file matches it (ValueError names what differs)."""
    folder = Path(folder)
    manifest = TeacherManifest.read(folder)
    path = folder / manifest.file
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: manifest names {manifest.file}, which is missing")
    if path.stat().st_size != manifest.bytes or sha256(path) != manifest.sha256:
        raise ValueError(f"{path}: file does not match its manifest (size or sha256 differ)")
    return manifest


def list_teachers(root: str | Path = TEACHERS) -> list[Path]:
    """Artifact folders directly under ``root`` (those with a manifest), sorted by name."""
    root = Path(root)
    return sorted(p.parent for p in root.glob(f"*/{MANIFEST_FILE}"))


def resolve_teachers(spec: str | Path | list[str | Path]) -> list[Path]:
    """ONNX files of a ``--teacher`` value; each comma-separated item is one of: an ONNX file;
    an artifact folder (verified against its manifest); a folder of artifacts (all of them);
    a name under ``training/teachers``. Anything else passes through for the runner to refuse.
    """
    items = spec if isinstance(spec, list) else [p.strip() for p in str(spec).split(",")]
    out: list[Path] = []
    for item in (Path(i) for i in items if str(i).strip()):
        if not item.is_dir() and (TEACHERS / item).is_dir() and len(item.parts) == 1:
            item = TEACHERS / item
        if item.is_dir() and (item / MANIFEST_FILE).is_file():
            out.append(item / verify(item).file)
        elif item.is_dir():
            found = list_teachers(item)
            if not found:
                raise ValueError(f"{item}: no teacher artifacts (folders with {MANIFEST_FILE})")
            out += [f / verify(f).file for f in found]
        else:
            out.append(item)
    return out


def _print(folder: Path, m: TeacherManifest) -> None:
    p, v = m.publictest, m.validation
    val = f"val acc={v['accuracy']:.4f} macroF1={v['macro_f1']:.4f}, " if v else ""
    print(
        f"{folder}: {m.arch} {m.params / 1e6:.2f}M params {m.mflops:.0f} MFLOPs, {m.format} "
        f"{m.bytes / 1e6:.1f} MB, epochs {m.epochs_trained}/{m.epochs_planned}, {val}PublicTest "
        f"acc={p['accuracy']:.4f} macroF1={p['macro_f1']:.4f} disgustR={p['disgust_recall']:.3f}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    ex = sub.add_parser("export", help="checkpoint -> artifact folder")
    ex.add_argument("checkpoint")
    ex.add_argument("dest")
    ex.add_argument("--data", default=str(FER2013))
    ex.add_argument("--cache", default=str(CACHE))
    ex.add_argument("--max-mb", type=float, default=MAX_MB)
    ex.add_argument(
        "--provenance", default="", help="where the checkpoint was trained, if not here"
    )
    ls = sub.add_parser("list", help="list (and verify) the artifacts under a folder")
    ls.add_argument("root", nargs="?", default=str(TEACHERS))
    ve = sub.add_parser("verify", help="check artifact folders against their manifests")
    ve.add_argument("folders", nargs="+")
    a = ap.parse_args(argv)
    if a.cmd == "export":
        m = export_teacher(a.checkpoint, a.dest, a.data, a.cache, a.max_mb, provenance=a.provenance)
        _print(Path(a.dest), m)
        print(f"  {m.status}; fp32 checkpoint acc={m.checkpoint_publictest['accuracy']:.4f}")
        return 0
    folders = list_teachers(a.root) if a.cmd == "list" else [Path(f) for f in a.folders]
    if not folders:
        print(f"no teacher artifacts under {a.root}")
    bad = 0
    for f in folders:
        try:
            _print(f, verify(f))
        except (OSError, ValueError) as exc:
            print(f"{f}: INVALID: {exc}")
            bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
