"""Batch augmentation with torch ops (no torchvision): affine (shift/rotate/scale/flip),
brightness/contrast, random erasing, and mixup / CutMix, all driven by an explicit
``torch.Generator`` (on the batch's device: a CUDA run augments on the GPU)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugConfig:
    """Augmentation strengths (0 disables each part)."""

    shift: float = 4.0  # pixels
    rotate: float = 10.0  # degrees
    scale: float = 0.1  # +-fraction
    flip: float = 0.5  # probability
    brightness: float = 0.15  # +- added (0..1 scale)
    contrast: float = 0.2  # +- fraction
    erase: float = 0.5  # probability of one erased rectangle
    erase_area: tuple[float, float] = (0.02, 0.15)


def _u(n: int, lo: float, hi: float, g: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=g, device=g.device) * (hi - lo) + lo


def _r(n: int, g: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=g, device=g.device)


def augment(x: torch.Tensor, cfg: AugConfig, g: torch.Generator) -> torch.Tensor:
    """Augment a float batch ``x`` (N,1,H,W) in [0,1]; returns a new tensor."""
    if x.ndim != 4:
        raise ValueError(f"expected (N,C,H,W), got shape {tuple(x.shape)}")
    n, _, h, w = x.shape
    ang = _u(n, -cfg.rotate, cfg.rotate, g) * math.pi / 180
    sc = _u(n, 1 - cfg.scale, 1 + cfg.scale, g)
    flip = torch.where(_r(n, g) < cfg.flip, -1.0, 1.0)
    tx = _u(n, -cfg.shift, cfg.shift, g) * 2 / w
    ty = _u(n, -cfg.shift, cfg.shift, g) * 2 / h
    cos, sin = torch.cos(ang) / sc, torch.sin(ang) / sc
    theta = torch.stack(
        [torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    c = _u(n, 1 - cfg.contrast, 1 + cfg.contrast, g).view(n, 1, 1, 1)
    b = _u(n, -cfg.brightness, cfg.brightness, g).view(n, 1, 1, 1)
    mean = x.mean((1, 2, 3), keepdim=True)
    x = ((x - mean) * c + mean + b).clamp_(0, 1)
    if cfg.erase > 0:
        do = _r(n, g) < cfg.erase
        area = _u(n, *cfg.erase_area, g) * h * w
        aspect = torch.exp(_u(n, math.log(0.5), math.log(2.0), g))
        eh = (area * aspect).sqrt().clamp(1, h - 1)
        ew = (area / aspect).sqrt().clamp(1, w - 1)
        y0 = _r(n, g) * (h - eh)
        x0 = _r(n, g) * (w - ew)
        fill = _r(n, g)
        yy = torch.arange(h, device=x.device).view(1, h, 1)
        xx = torch.arange(w, device=x.device).view(1, 1, w)
        m = (
            (yy >= y0.view(n, 1, 1))
            & (yy < (y0 + eh).view(n, 1, 1))
            & (xx >= x0.view(n, 1, 1))
            & (xx < (x0 + ew).view(n, 1, 1))
            & do.view(n, 1, 1)
        )
        x = torch.where(m[:, None], fill.view(n, 1, 1, 1), x)
    return x


def mix(
    x: torch.Tensor, mixup: float, cutmix: float, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Mixup (alpha ``mixup``) or CutMix (alpha ``cutmix``) of a batch with a permutation of
    itself; with both > 0 each batch picks one at random. Returns ``(x, perm, lam)``: the loss is
    ``lam * loss(y) + (1 - lam) * loss(y[perm])`` (for CutMix ``lam`` is the kept area)."""
    n, _, h, w = x.shape
    use_cut = cutmix > 0 and (mixup <= 0 or float(_r(1, g)) < 0.5)
    alpha = cutmix if use_cut else mixup
    # Beta draws from a NumPy stream seeded by the torch generator: reproducible per epoch.
    seed = int(torch.randint(2**31 - 1, (1,), generator=g, device=g.device))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    perm = torch.randperm(n, generator=g, device=g.device)
    if not use_cut:
        return x * lam + x[perm] * (1 - lam), perm, lam
    ch, cw = round(h * math.sqrt(1 - lam)), round(w * math.sqrt(1 - lam))
    cy, cx = int(_r(1, g) * h), int(_r(1, g) * w)
    y0, y1 = max(cy - ch // 2, 0), min(cy + (ch + 1) // 2, h)
    x0, x1 = max(cx - cw // 2, 0), min(cx + (cw + 1) // 2, w)
    out = x.clone()
    out[:, :, y0:y1, x0:x1] = x[perm, :, y0:y1, x0:x1]
    return out, perm, 1.0 - (y1 - y0) * (x1 - x0) / (h * w)
