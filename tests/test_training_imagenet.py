"""VGG-16 / ResNet-50 with torchvision's names: a torchvision-format state dict (written by the
test, shaped like torchvision's) loads, adapted to gray input; training and BN folding work."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from _training_helpers import tiny_train_config, write_folder

from training.imagenet import IMAGENET_MEAN, IMAGENET_STD, VGG16, ResNet50, load_imagenet_weights
from training.model import count_params, fold_bn
from training.train import train


def _rgb_state(cls: type, head: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A random torchvision-format state dict: 3-channel first convolution, ImageNet head."""
    torch.manual_seed(0)
    net = cls(num_classes=1000, in_channels=3)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 2.0)
    sd = {k: v for k, v in net.state_dict().items() if not k.startswith("fc.")}
    return {**sd, **head}


def _normalised_rgb(g: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (g.expand(-1, 3, -1, -1) - mean) / std


def test_architectures_match_torchvision_sizes():
    assert count_params(ResNet50(1000, in_channels=3)) == 25_557_032  # torchvision resnet50
    assert count_params(VGG16(7, in_channels=3).features) == 14_714_688  # vgg16 convolutions
    names = set(ResNet50().state_dict())
    assert {
        "layer1.0.downsample.1.running_var",
        "layer4.2.bn3.weight",
        "bn1.num_batches_tracked",
    } <= names
    assert "features.28.weight" in VGG16().state_dict()  # the last of the 13 convolutions


def test_resnet50_loads_a_torchvision_state_dict_for_gray_faces(tmp_path):
    head = {"fc.weight": torch.zeros(1000, 2048), "fc.bias": torch.zeros(1000)}
    sd = _rgb_state(ResNet50, head)
    torch.save(sd, tmp_path / "resnet50.pth")
    net = ResNet50(7).eval()
    skipped = load_imagenet_weights(net, tmp_path / "resnet50.pth")
    assert skipped == ["fc.bias", "fc.weight"]
    got = net.state_dict()
    assert torch.equal(got["layer3.5.conv2.weight"], sd["layer3.5.conv2.weight"])
    assert got["conv1.weight"].shape == (64, 1, 7, 7)
    # The gray network on gray/255 gives the RGB network's stem response on the replicated,
    # ImageNet-normalised face, away from the zero-padded border.
    rgb = ResNet50(1000, in_channels=3).eval()
    rgb.load_state_dict({**sd, "fc.weight": head["fc.weight"], "fc.bias": head["fc.bias"]})
    g = torch.rand(2, 1, 48, 48)
    with torch.no_grad():
        want = rgb.bn1(rgb.conv1(_normalised_rgb(g)))[:, :, 2:22, 2:22]
        have = net.bn1(net.conv1(g))[:, :, 2:22, 2:22]
    assert torch.allclose(have, want, atol=1e-4)


def test_vgg16_loads_and_refuses_other_files(tmp_path):
    sd = _rgb_state(VGG16, {"classifier.6.weight": torch.zeros(1000, 8)})
    torch.save(sd, tmp_path / "vgg16.pth")
    net = VGG16(7).eval()
    assert load_imagenet_weights(net, tmp_path / "vgg16.pth") == ["classifier.6.weight"]
    rgb = VGG16(7, in_channels=3).eval()
    rgb.load_state_dict(sd, strict=False)
    g = torch.rand(2, 1, 48, 48)
    with torch.no_grad():
        want = F.relu(rgb.features[0](_normalised_rgb(g)))[:, :, 1:-1, 1:-1]
        have = F.relu(net.features[0](g))[:, :, 1:-1, 1:-1]
    assert torch.allclose(have, want, atol=1e-4)
    del sd["features.28.weight"]
    torch.save(sd, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="features.28.weight"):
        load_imagenet_weights(VGG16(7), tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="vgg16 or resnet50"):
        load_imagenet_weights(ResNet50(7).conv1, tmp_path / "vgg16.pth")


def test_resnet50_trains_from_the_weights_and_folds(tmp_path):
    sd = _rgb_state(ResNet50, {"fc.weight": torch.zeros(1000, 2048)})
    torch.save(sd, tmp_path / "w.pth")
    write_folder(tmp_path / "fer", n_train=64, n_test=16, corrupt=False)
    cfg = tiny_train_config(
        tmp_path, "r50", arch="resnet50", init_weights=str(tmp_path / "w.pth"), epochs=1,
        batch_size=16, steps_per_epoch=1, limit_eval=8,
    )  # fmt: skip
    r = train(cfg)
    assert r.epochs_run == 1 and r.best_val_metrics is not None
    net = ResNet50(7).eval()
    net.load_state_dict(torch.load(tmp_path / "r50" / "best.pt", weights_only=False)["best_state"])
    x = torch.rand(2, 1, 48, 48)
    with torch.no_grad():
        assert torch.allclose(net(x), fold_bn(net)(x), atol=1e-4)
