"""Compact plain-CNN family for 48x48 gray faces (Conv3x3-BN-ReLU stacks, GAP head, softmax out).

Only 3x3 convolutions, BatchNorm (folded at export) and ReLU: the ops that quantize and fuse best in
ONNX Runtime INT8 (QLinearConv). FLOPs go to the low-resolution stages; the 48x48 stage is narrow.
"""

from __future__ import annotations

import torch
from torch import nn

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
}


class FerNet(nn.Module):
    """Conv3x3-BN-ReLU stack -> global average pool -> dropout -> linear -> logits."""

    def __init__(self, arch: str = "s", num_classes: int = 7, dropout: float = 0.3) -> None:
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"unknown arch {arch!r}; expected one of {sorted(ARCHS)}")
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.arch = arch
        self.num_classes = num_classes
        layers: list[nn.Module] = []
        cin = 1
        for cout, stride in ARCHS[arch]:
            layers += [
                nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]
            cin = cout
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


def count_macs(arch: str, num_classes: int = 7, size: int = 48) -> int:
    """Multiply-accumulates per face (convolutions + classifier); FLOPs = 2 x MACs."""
    macs, cin, hw = 0, 1, size
    for cout, stride in ARCHS[arch]:
        hw = (hw + 2 - 3) // stride + 1
        macs += hw * hw * 9 * cin * cout
        cin = cout
    return macs + cin * num_classes


def fold_bn(net: FerNet) -> nn.Module:
    """Eval-mode copy of ``net`` with each BatchNorm folded into its convolution."""
    import copy

    from torch.nn.utils.fusion import fuse_conv_bn_eval

    net = copy.deepcopy(net).eval()
    mods = list(net.features)
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
    net.features = nn.Sequential(*fused)
    return net
