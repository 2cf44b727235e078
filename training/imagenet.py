"""VGG-16 and ResNet-50 for 48x48 gray faces, with torchvision's parameter names so that an
ImageNet state dict saved by torchvision (``torch.save(model.state_dict(), FILE)``) loads into
them: ``--arch vgg16|resnet50 --init-weights FILE``. torchvision itself is not imported (it does
not import here); no weights are downloaded, the user brings the file.

Adaptation to gray 48x48: the first convolution takes one channel, its RGB weights summed over the
input channels (see :func:`gray_first_conv`); the ImageNet head (VGG's ``classifier``, ResNet's
1000-class ``fc``) is left out and a new head (global average pool, dropout, linear to the
emotions) is trained. At 48x48, VGG-16's five poolings end at 1x1 and ResNet-50's stages at 12 /
6 / 3 / 2 pixels.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

# torchvision's ImageNet input normalisation (RGB), folded into the first convolution
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class VGG16(nn.Module):
    """torchvision ``vgg16`` ``features`` (same names) + a GAP/dropout/linear head ``fc``."""

    def __init__(self, num_classes: int = 7, dropout: float = 0.3, in_channels: int = 1) -> None:
        super().__init__()
        self.arch, self.num_classes = "vgg16", num_classes
        layers: list[nn.Module] = []
        cin = in_channels
        for v in VGG16_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, int(v), 3, padding=1), nn.ReLU(inplace=True)]
                cin = int(v)
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(torch.flatten(self.pool(self.features(x)), 1)))


class Bottleneck(nn.Module):
    """torchvision's ResNet ``Bottleneck`` (stride on the 3x3 convolution, "v1.5")."""

    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1) -> None:
        super().__init__()
        cout = width * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idt = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        return self.relu(self.bn3(self.conv3(y)) + idt)


class ResNet50(nn.Module):
    """torchvision ``resnet50`` (same names: conv1, bn1, layer1-4, fc), dropout before ``fc``."""

    def __init__(self, num_classes: int = 7, dropout: float = 0.3, in_channels: int = 1) -> None:
        super().__init__()
        self.arch, self.num_classes = "resnet50", num_classes
        self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        for i, (width, blocks, stride) in enumerate(
            ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))
        ):
            layer = []
            for b in range(blocks):
                layer.append(Bottleneck(cin, width, stride if b == 0 else 1))
                cin = width * Bottleneck.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*layer))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(cin, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.drop(torch.flatten(self.avgpool(x), 1)))


IMAGENET_ARCHS: dict[str, type[nn.Module]] = {"vgg16": VGG16, "resnet50": ResNet50}
# the first convolution, and the ImageNet head that is not loaded
_FIRST = {"vgg16": "features.0", "resnet50": "conv1"}
_HEAD = {"vgg16": "classifier.", "resnet50": "fc."}


def gray_first_conv(
    weight: torch.Tensor, bias: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB first-convolution weights (O,3,k,k) of an ImageNet model -> gray (O,1,k,k) weights and
    the bias shift (O,) for input gray/255.

    A gray face shown to the RGB network is the same image in all three channels, normalised per
    channel: x_c = (g - mean_c) / std_c. The convolution is linear, so sum_c W_c * x_c equals one
    convolution of g with sum_c W_c / std_c, plus the constant -sum W_c * mean_c / std_c: summing
    the channel weights keeps exactly the responses the ImageNet features were trained to give
    (away from the zero-padded border), where taking one channel or the mean would scale them.
    """
    mean = torch.tensor(IMAGENET_MEAN, dtype=weight.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=weight.dtype).view(1, 3, 1, 1)
    gray = (weight / std).sum(1, keepdim=True)
    shift = -(weight * mean / std).sum((1, 2, 3))
    if bias is not None:
        shift = shift + bias
    return gray, shift


def load_imagenet_weights(net: nn.Module, path: str | Path) -> list[str]:
    """Load a torchvision-format state dict into ``net`` (VGG16 or ResNet50), adapted to gray
    input; the ImageNet head is skipped. Returns the skipped keys; ValueError names any key of
    ``net`` the file lacks or a shape that does not fit."""
    arch = getattr(net, "arch", "")
    if arch not in IMAGENET_ARCHS:
        raise ValueError(f"--init-weights needs arch vgg16 or resnet50, not {arch!r}")
    sd = torch.load(path, map_location="cpu", weights_only=True)
    sd = sd.get("state_dict", sd) if isinstance(sd, dict) else sd
    first, head = _FIRST[arch], _HEAD[arch]
    skipped = sorted(k for k in sd if k.startswith(head))
    sd = {k: v for k, v in sd.items() if not k.startswith(head)}
    w = sd[f"{first}.weight"]
    if w.shape[1] == 3:
        gray, shift = gray_first_conv(w.float(), sd.get(f"{first}.bias"))
        sd[f"{first}.weight"] = gray
        if arch == "vgg16":
            sd[f"{first}.bias"] = shift
        else:  # conv1 has no bias: BatchNorm bn1 follows, so the shift moves its running mean
            sd["bn1.running_mean"] = sd["bn1.running_mean"] - shift
    own = {k: v for k, v in net.state_dict().items() if not k.startswith(("fc.", "drop."))}
    missing = sorted(set(own) - set(sd))
    bad = [k for k in own if k in sd and sd[k].shape != own[k].shape]
    if missing or bad:
        raise ValueError(
            f"{path}: not a torchvision {arch} state dict (missing {missing[:5]}, "
            f"shapes differ {bad[:5]})"
        )
    net.load_state_dict({k: sd[k] for k in own}, strict=False)
    return skipped + sorted(set(sd) - set(own))
