"""Train the teacher recipes on a CUDA GPU in one go and export each as a teacher artifact.

    python -m training.data --pack cache/fer2013_pack.npz        # here, once (git-ignored, ~20 MB)
    python -m training.gpu --data cache/fer2013_pack.npz --out OUT --minutes 5.5   # on the GPU

The recipes run side by side, one ``training.train`` process each (small convolutions leave one
run far from filling the GPU), every one under the same wall-clock budget (``--time-limit``): a
recipe that cannot finish stops after its last whole epoch and its artifact says so (epochs done
of planned). Each lands in ``OUT/<recipe>/`` as ``teacher.onnx``, ``manifest.json`` (validation
and PublicTest figures measured on the pack: PublicTest is stored lossless, validation is part
of the lossy Training faces) and ``train.log``; ``OUT/gpu-train.json`` sums them up. Checkpoints
stay in ``--runs`` (too big to bring back; rerunning the same command resumes them).
``--tiny`` swaps in seconds-long CPU recipes (the test of this path).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from .paths import REPO, RUNS

# name -> training.train flags; the first is the t1_90 recipe, now selecting on validation; the
# next two are the recipes of the teachers w1 and r2e trained here on the CPU, at 90 epochs
RECIPES: dict[str, str] = {
    "t1_90v": "--arch t1 --strategy sqrt --epochs 90",
    "w1_90": "--arch w1 --strategy sqrt --epochs 90",
    "r2e_90": "--arch r2 --strategy sqrt --epochs 90 --ema 0.999",
    "r1_60": "--arch r1 --strategy sqrt --epochs 60 --mixup 0.2",
}
TINY: dict[str, str] = {
    "tiny": "--arch tiny --strategy weights --epochs 1 --batch-size 32 --no-bf16",
    "rtiny": "--arch rtiny --strategy sqrt --epochs 1 --batch-size 32 --mixup 0.2 --no-bf16",
}


def _device_name(device: str) -> str:
    import torch

    if device == "cuda":
        return torch.cuda.get_device_name(0)
    from ferfast.sysinfo import cpu_info

    return cpu_info().model


def write_faces(pack: str | Path, root: Path, split: str = "PublicTest") -> int:
    """The faces of one split of ``pack`` as PNG files ``root/<emotion>/<name>.png``."""
    import cv2

    from .data import EMOTIONS, load_pack

    data, _ = load_pack(pack)
    m = data.splits == split
    for img, label, name in zip(data.images[m], data.labels[m], data.names[m], strict=True):
        path = root / EMOTIONS[label] / (Path(str(name)).stem + ".png")
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), img)
    return int(m.sum())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", default=str(REPO / "cache" / "fer2013_pack.npz"))
    ap.add_argument("--out", default=os.environ.get("OUT") or str(RUNS / "gpu-out"))
    ap.add_argument("--runs", default=str(RUNS / "gpu"), help="checkpoints (kept out of --out)")
    ap.add_argument("--minutes", type=float, default=5.5, help="training wall-clock budget")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--threads", type=int, default=4, help="CPU threads per training process")
    ap.add_argument("--only", nargs="+", help="a subset of the recipes")
    ap.add_argument("--tiny", action="store_true", help="seconds-long CPU recipes (tests)")
    ap.add_argument(
        "--faces-to",
        default="",
        help="also write the pack's PublicTest faces as FOLDER/data/fer2013/test/<emotion>/*.png "
        "(lossless: the faces scripts/gpu-check.sh reads from its SHARED folder)",
    )
    a = ap.parse_args(argv)
    recipes = TINY if a.tiny else RECIPES
    names = a.only or list(recipes)
    out, runs = Path(a.out), Path(a.runs)
    t0 = time.time()
    procs: dict[str, tuple[subprocess.Popen, Path]] = {}
    for name in names:
        (out / name).mkdir(parents=True, exist_ok=True)
        log = out / name / "train.log"
        cmd = [
            sys.executable, "-m", "training.train", "--out", str(runs / name),
            "--data", a.data, "--device", a.device, "--threads", str(a.threads),
            "--time-limit", str(a.minutes * 60), "--no-progress", "--resume",
            *shlex.split(recipes[name]),
        ]  # fmt: skip
        print(f"[{name}] {shlex.join(cmd)}", flush=True)
        with open(log, "a") as f:
            procs[name] = (subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT), log)
    failed = [n for n, (p, _) in procs.items() if p.wait() != 0]
    for name in failed:
        print(f"[{name}] FAILED; the end of its log:\n" + procs[name][1].read_text()[-2000:])
    from .teacher import export_teacher

    device = _device_name(a.device)
    summary: dict[str, dict] = {}
    for name in names:
        if name in failed:
            continue
        provenance = (
            f"trained by python -m training.gpu on {device} ({a.device}), data {Path(a.data).name}"
            " (Training lossy WebP, PublicTest lossless); figures measured on that pack"
        )
        m = export_teacher(runs / name / "best.pt", out / name, a.data, provenance=provenance)
        summary[name] = {
            "epochs": f"{m.epochs_trained} of {m.epochs_planned}",
            "best_epoch": m.best_epoch,
            "validation": m.validation,
            "publictest": m.publictest,
            "bytes": m.bytes,
        }
        print(
            f"[{name}] epochs {m.epochs_trained}/{m.epochs_planned} best@{m.best_epoch} "
            f"val acc={m.validation.get('accuracy')} PublicTest acc={m.publictest['accuracy']} "
            f"macroF1={m.publictest['macro_f1']} -> {out / name}",
            flush=True,
        )
    if a.faces_to:
        n = write_faces(a.data, Path(a.faces_to) / "data" / "fer2013" / "test")
        print(f"wrote {n} PublicTest faces under {a.faces_to}")
    doc = {"device": device, "seconds": round(time.time() - t0, 1), "recipes": summary}
    (out / "gpu-train.json").write_text(json.dumps(doc, indent=1) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
