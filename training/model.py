"""Compact CNN family for 48x48 gray faces (Conv3x3-BN-ReLU stacks, GAP head, softmax out).

Only 3x3 convolutions, BatchNorm (folded at export) and ReLU: the ops that quantize and fuse best in
ONNX Runtime INT8 (QLinearConv). FLOPs go to the low-resolution stages; the 48x48 stage is narrow.
Teachers, which never ship alone, may also be residual (``RES_ARCHS``: basic blocks with 1x1
projection shortcuts after a stride-2 stem), so their errors differ from the plain stacks'.
"""

from __future__ import annotations

import torch
from torch import nn

from ferfast.contract import SIDE

# Each architecture: list of (out_channels, stride) for successive Conv3x3-BN-ReLU layers.
ARCHS: dict[str, list[tuple[int, int]]] = {
    "tiny": [(8, 2), (16, 2), (32, 2)],  # tests only
    "xs": [(16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2), (128, 1)],
    "a": [(32, 2), (32, 1), (64, 2), (64, 1), (128, 2), (128, 1)],
    "a3": [(32, 2), (32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (256, 2)],
    "f": [(32, 2), (32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1)],
    "g": [(32, 2), (48, 1), (64, 2), (96, 1), (128, 2), (160, 1), (256, 2), (256, 1)],
    "e": [(32, 2), (32, 1), (64, 2), (64, 1), (64, 1), (128, 2), (128, 1), (128, 1), (256, 2)],
    "d": [(32, 2), (48, 1), (96, 2), (96, 1), (192, 2), (192, 1)],
    "c": [(24, 2), (48, 1), (64, 2), (96, 1), (128, 2), (192, 1), (256, 1)],
    # Teachers (distillation, and a member of the accurate ensemble): VGG-style depth and width at
    # 24x24 and below, one narrow full-resolution layer first; fp16 weights stay under 10 MB.
    "t1": [
        (32, 1),
        (64, 2),
        (64, 1),
        (128, 2),
        (128, 1),
        (256, 2),
        (256, 1),
        (256, 1),
        (384, 2),
        (384, 1),
    ],
    # A teacher of another shape: shallow, a stride-2 first layer straight to 24x24 (no
    # full-resolution layer), two layers per stage at t1's widths and one 512-wide layer at 3x3:
    # seven layers instead of ten (2.3M params, 192 MFLOPs), so its errors differ from t1's.
    "w1": [(64, 2), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)],
}


# Residual teachers: stem (channels, stride), then stages of (channels, blocks, stride); each
# block is Conv3x3-BN-ReLU-Conv3x3-BN plus a shortcut (1x1 Conv-BN when the shape changes), ReLU.
RES_ARCHS: dict[str, tuple[tuple[int, int], list[tuple[int, int, int]]]] = {
    "rtiny": ((8, 2), [(16, 1, 2)]),  # tests only
    # stride-2 stem to 24x24, one block per stage at 24/12/6/3 pixels: 240 MFLOPs, 3.5M params
    "r1": ((32, 2), [(64, 1, 1), (128, 1, 2), (256, 1, 2), (384, 1, 2)]),
    # the same shape, narrow at 24x24 and 12x12 (where the FLOPs are): 125 MFLOPs, 2.7M params,
    # cheap enough to train for ~30 epochs in two hours on a shared 2-core CPU
    "r2": ((32, 2), [(32, 1, 1), (96, 1, 2), (192, 1, 2), (384, 1, 2)]),
}


def _conv_bn(cin: int, cout: int, k: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout)]


class BasicBlock(nn.Module):
    """ReLU(body(x) + shortcut(x)); body and shortcut are Sequentials of Conv-BN pairs, so
    :func:`fold_bn` folds them like the plain stacks."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *_conv_bn(cin, cout, 3, stride), nn.ReLU(inplace=True), *_conv_bn(cout, cout, 3, 1)
        )
        reshape = stride != 1 or cin != cout
        self.short = nn.Sequential(*_conv_bn(cin, cout, 1, stride)) if reshape else nn.Identity()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.short(x))


def _layers(arch: str) -> tuple[list[nn.Module], int]:
    """The feature layers of ``arch`` and their output width."""
    layers: list[nn.Module] = []
    if arch in RES_ARCHS:
        (cin, stride), stages = RES_ARCHS[arch]
        layers += [*_conv_bn(1, cin, 3, stride), nn.ReLU(inplace=True)]
        for cout, blocks, stride in stages:
            for b in range(blocks):
                layers.append(BasicBlock(cin, cout, stride if b == 0 else 1))
                cin = cout
        return layers, cin
    cin = 1
    for cout, stride in ARCHS[arch]:
        layers += [*_conv_bn(cin, cout, 3, stride), nn.ReLU(inplace=True)]
        cin = cout
    return layers, cin


class FerNet(nn.Module):
    """Conv-BN-ReLU features (a plain stack or residual stages) -> global average pool ->
    dropout -> linear -> logits."""

    def __init__(self, arch: str = "s", num_classes: int = 7, dropout: float = 0.3) -> None:
        super().__init__()
        if arch not in ARCHS and arch not in RES_ARCHS:
            raise ValueError(f"unknown arch {arch!r}; expected one of {all_archs()}")
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.arch = arch
        self.num_classes = num_classes
        layers, cin = _layers(arch)
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(cin, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (N,1,48,48) = gray/255 -> logits (N,K)."""
        x = self.features(x)
        x = torch.flatten(self.pool(x), 1)
        return self.fc(self.drop(x))


class ProbsWrapper(nn.Module):
    """Export wrapper: logits -> softmax ``probs`` (the model I/O contract)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(x), dim=1)


def count_params(net: nn.Module) -> int:
    """Trainable parameter count."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def all_archs() -> list[str]:
    """Every architecture name (plain, residual, ImageNet-shaped), sorted."""
    from .imagenet import IMAGENET_ARCHS

    return sorted([*ARCHS, *RES_ARCHS, *IMAGENET_ARCHS])


def build_net(arch: str, num_classes: int = 7, dropout: float = 0.3) -> nn.Module:
    """The network of ``arch``: a :class:`FerNet`, or VGG16 / ResNet50 (``imagenet.py``, which
    take torchvision ImageNet weights); each has ``arch``, ``num_classes`` and a linear ``fc``."""
    from .imagenet import IMAGENET_ARCHS

    if arch in IMAGENET_ARCHS:
        return IMAGENET_ARCHS[arch](num_classes, dropout)
    return FerNet(arch, num_classes, dropout)


def count_macs(arch: str, num_classes: int = 7, size: int = SIDE) -> int:
    """Multiply-accumulates per face (convolutions + classifier); FLOPs = 2 x MACs."""
    net = build_net(arch, num_classes).eval()
    macs = [net.fc.in_features * num_classes]

    def hook(m: nn.Conv2d, _x: object, y: torch.Tensor) -> None:
        k = m.kernel_size[0] * m.kernel_size[1] * m.in_channels // m.groups
        macs.append(y.shape[2] * y.shape[3] * k * m.out_channels)

    hooks = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        net(torch.zeros(1, 1, size, size))
    for h in hooks:
        h.remove()
    return sum(macs)


def _fold_sequential(seq: nn.Sequential) -> nn.Sequential:
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    mods = list(seq)
    fused: list[nn.Module] = []
    i = 0
    while i < len(mods):
        if (
            isinstance(mods[i], nn.Conv2d)
            and i + 1 < len(mods)
            and isinstance(mods[i + 1], nn.BatchNorm2d)
        ):
            fused.append(fuse_conv_bn_eval(mods[i], mods[i + 1]))
            i += 2
        else:
            fused.append(mods[i])
            i += 1
    return nn.Sequential(*fused)


def fold_bn(net: nn.Module) -> nn.Module:
    """Eval-mode copy of ``net`` with each BatchNorm folded into the convolution before it: in
    every Sequential (features, residual bodies and shortcuts) and in torchvision-style pairs of
    attributes ``convN`` / ``bnN`` (ResNet-50), whose BatchNorm becomes an Identity."""
    import copy

    from torch.nn.utils.fusion import fuse_conv_bn_eval

    net = copy.deepcopy(net).eval()
    for m in list(net.modules()):
        for name, child in list(m.named_children()):
            if isinstance(child, nn.Sequential):
                setattr(m, name, _fold_sequential(child))
        for i in (1, 2, 3):
            conv, bn = getattr(m, f"conv{i}", None), getattr(m, f"bn{i}", None)
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                setattr(m, f"conv{i}", fuse_conv_bn_eval(conv, bn))
                setattr(m, f"bn{i}", nn.Identity())
    return net
