"""Development stand-in for the fp32 model: a briefly trained ``training.model.FerNet`` export.

Only for exercising calibrate -> quantize -> evaluate -> benchmark before the real model exists::

    python -m calibration.standin --out /tmp/standin_fp32.onnx --seconds 180
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from training.data import EMOTIONS, normalise, read_faces

from .dataset import DEFAULT_SEED, list_split
from .pipeline import TRAIN_ROOT


def build_standin(
    out: Path, arch: str = "f", seconds: float = 180.0, per_class: int = 1500
) -> Path:
    """Train ``FerNet(arch)`` about ``seconds`` on a class-capped subset; export with metadata."""
    import torch

    from training.export import export_onnx
    from training.model import ARCHS, FerNet

    if arch not in ARCHS:  # the training package's family evolves; fall back to its first entry
        arch = next(iter(ARCHS))
    torch.manual_seed(0)
    names = list_split(TRAIN_ROOT, EMOTIONS)
    rng = np.random.default_rng(DEFAULT_SEED + 1)
    files, labels = [], []
    for k, c in enumerate(EMOTIONS):
        pick = rng.permutation(len(names[c]))[:per_class]
        files += [TRAIN_ROOT / names[c][i] for i in pick]
        labels += [k] * len(pick)
    x = torch.from_numpy(normalise(read_faces(files)))
    y = torch.tensor(labels)
    net = FerNet(arch, num_classes=len(EMOTIONS))
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    t0, step = time.time(), 0
    net.train()
    while time.time() - t0 < seconds:
        idx = torch.randint(0, len(x), (128,))
        xb = x[idx]
        if step % 2:
            xb = torch.flip(xb, dims=[3])
        loss = torch.nn.functional.cross_entropy(net(xb), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 50 == 0:
            print(f"step {step} loss {loss.item():.3f}", flush=True)
    return export_onnx(net.eval(), out, EMOTIONS, extra_meta={"ferfast.version": "standin"})


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("/tmp/standin_fp32.onnx"))
    p.add_argument("--arch", default="f")
    p.add_argument("--seconds", type=float, default=180.0)
    a = p.parse_args(argv)
    print(build_standin(a.out, a.arch, a.seconds))


if __name__ == "__main__":
    main()
