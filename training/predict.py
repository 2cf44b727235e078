"""Torch inference of a training network on uint8 faces: 7-class probabilities."""

from __future__ import annotations

import numpy as np
import torch

from ferfast.contract import DEFAULT_BIAS, DEFAULT_SCALE

from .strategies import probs7


def _to_input(x: np.ndarray, channels_last: bool) -> torch.Tensor:
    t = torch.from_numpy(x).float().mul_(DEFAULT_SCALE).add_(DEFAULT_BIAS).unsqueeze(1)
    return t.contiguous(memory_format=torch.channels_last) if channels_last else t


@torch.no_grad()
def predict_probs(
    net: torch.nn.Module, images: np.ndarray, strategy: str, batch: int = 512
) -> np.ndarray:
    """7-class probabilities (EMOTIONS order) for uint8 faces (N,48,48), fp32, eval mode, on the
    device ``net`` is on."""
    was = net.training
    net.eval()
    dev = next(net.parameters()).device
    out = []
    for i in range(0, len(images), batch):
        x = _to_input(images[i : i + batch], False).to(dev)
        out.append(probs7(strategy, net(x)).cpu().numpy())
    net.train(was)
    return np.concatenate(out) if out else np.zeros((0, 7), np.float32)
