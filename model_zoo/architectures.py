"""PyTorch definitions of the zoo's torch models (written for this project).

Module attribute names are chosen so that the ONNX node names torch writes read well:
``/layer1/layer1.0/conv1/Conv``, ``/features/features.4/MaxPool``, ``/conv2/Conv``.

Example:
    >>> import torch
    >>> from model_zoo.architectures import cifar_resnet
    >>> cifar_resnet(20)(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

CIFAR_DEPTHS = {20: 3, 32: 5, 44: 7, 56: 9}


class _OptionAExport(torch.autograd.Function):
    """Export-only twin of the option-A shortcut, emitting one ``Slice`` and one ``Pad``.

    Traced as plain ``F.pad``, torch writes a dozen shape-computing nodes (ConstantOfShape,
    Concat, Reshape, Transpose, Cast...) for the pads; this symbolic writes constant pads.
    """

    @staticmethod
    def forward(ctx: object, x: torch.Tensor, pad: int) -> torch.Tensor:  # noqa: D102
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, pad, pad), "constant", 0.0)

    @staticmethod
    def symbolic(g: object, x: object, pad: int) -> object:  # noqa: D102
        def const(values: list[int]) -> object:
            return g.op("Constant", value_t=torch.tensor(values, dtype=torch.int64))

        big = torch.iinfo(torch.int64).max
        sub = g.op("Slice", x, const([0, 0]), const([big, big]), const([2, 3]), const([2, 2]))
        return g.op("Pad", sub, const([0, pad, 0, 0, 0, pad, 0, 0]), mode_s="constant")


class OptionAShortcut(nn.Module):
    """Parameter-free "option A" shortcut: keep every second pixel, zero-pad channels.

    Exported to ONNX as ``Slice`` (axes 2, 3, step 2) then ``Pad`` (channels, constant 0).

    Example:
        >>> OptionAShortcut(8)(torch.ones(1, 16, 4, 4)).shape
        torch.Size([1, 32, 2, 2])
    """

    def __init__(self, pad_channels: int) -> None:
        super().__init__()
        self.pad_channels = pad_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.pad_channels
        if torch.onnx.is_in_onnx_export():
            return _OptionAExport.apply(x, p)
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, p, p), "constant", 0.0)


class CifarBasicBlock(nn.Module):
    """3x3 conv-BN-ReLU-3x3 conv-BN, plus identity or option-A shortcut, then ReLU."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        if stride != 1 or in_planes != planes:
            self.shortcut: nn.Module = OptionAShortcut(planes // 4)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for 32x32 inputs, key names as in akamaster/pytorch_resnet_cifar10.

    Example:
        >>> CifarResNet(3).linear.in_features
        64
    """

    def __init__(self, blocks_per_stage: int, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        in_planes = 16
        stages = []
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            blocks = []
            for i in range(blocks_per_stage):
                blocks.append(CifarBasicBlock(in_planes, planes, stride if i == 0 else 1))
                in_planes = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = torch.flatten(self.avgpool(x), 1)
        return self.linear(x)


def cifar_resnet(depth: int) -> CifarResNet:
    """A CIFAR ResNet of depth 20/32/44/56 with seeded random weights (``manual_seed(0)``)."""
    if depth not in CIFAR_DEPTHS:
        raise ValueError(f"CIFAR ResNet depth must be one of {sorted(CIFAR_DEPTHS)}, "
                         f"got {depth}")
    torch.manual_seed(0)
    return CifarResNet(CIFAR_DEPTHS[depth]).eval()


class LeNetDLG(nn.Module):
    """The LeNet of DLG (Zhu et al. 2019): sigmoid convs, one FC layer.

    Example:
        >>> LeNetDLG(10)(torch.zeros(1, 3, 32, 32)).shape
        torch.Size([1, 10])
    """

    def __init__(self, num_classes: int = 100) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 12, 5, padding=2, stride=2)
        self.act1 = nn.Sigmoid()
        self.conv2 = nn.Conv2d(12, 12, 5, padding=2, stride=2)
        self.act2 = nn.Sigmoid()
        self.conv3 = nn.Conv2d(12, 12, 5, padding=2, stride=1)
        self.act3 = nn.Sigmoid()
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.conv1(x))
        x = self.act2(self.conv2(x))
        x = self.act3(self.conv3(x))
        return self.fc(self.flatten(x))


def lenet_dlg(num_classes: int) -> LeNetDLG:
    """DLG's LeNet; after ``torch.manual_seed(0)`` every weight and bias ~ U(-0.5, 0.5).

    The draws happen in ``named_parameters()`` order (conv1.weight, conv1.bias, ...), so the
    values do not depend on torch's default initialisers.
    """
    model = LeNetDLG(num_classes)
    torch.manual_seed(0)
    with torch.no_grad():
        for _, param in model.named_parameters():
            param.uniform_(-0.5, 0.5)
    return model.eval()


class FeaturesNet(nn.Module):
    """Holds a conv stack as ``.features`` so ONNX names read ``/features/features.N/...``.

    Example:
        >>> net = FeaturesNet(nn.Sequential(nn.Conv2d(3, 4, 3)))
        >>> net(torch.zeros(1, 3, 8, 8)).shape
        torch.Size([1, 4, 6, 6])
    """

    def __init__(self, features: nn.Sequential) -> None:
        super().__init__()
        self.features = features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def torchvision_model(arch: str) -> nn.Module:
    """``torchvision.models.<arch>(weights=None)`` after ``torch.manual_seed(0)``, eval mode."""
    import torchvision

    torch.manual_seed(0)
    return getattr(torchvision.models, arch)(weights=None).eval()


def resnet18_cifar(num_classes: int = 10) -> nn.Module:
    """torchvision's ResNet-18 with the CIFAR stem (a 3x3 stride-1 first convolution, no max
    pool), as gradient-inversion papers attack it at 32x32 (Geiping et al. 2020; breaching's
    ``resnet18`` on CIFAR-10); ``torch.manual_seed(0)`` first, eval mode."""
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=num_classes)
    model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    model.maxpool = nn.Identity()
    return model.eval()


def features_model(arch: str) -> FeaturesNet:
    """The seeded ``torchvision.models.<arch>().features`` (same values as the full model's)."""
    return FeaturesNet(torchvision_model(arch).features).eval()


# Layer indices of the convolutions inside torchvision's ``features`` stacks.
VGG16_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
ALEXNET_CONV_INDICES = (0, 3, 6, 8, 10)
