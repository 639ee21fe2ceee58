"""Pre-activation ResNet for CIFAR as in the SWA reference code (``timgaripov/swa``, ``models/preresnet.py``)."""

from __future__ import annotations

import math

from torch import Tensor, nn

from .._checks import check_int, check_type, fail
from ._common import check_classes_and_channels, check_width, scaled

__all__ = ["PreResNet", "PreResNetBasicBlock", "PreResNetBottleneck"]


def _conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class PreResNetBasicBlock(nn.Module):
    """BN - ReLU - conv3x3 - BN - ReLU - conv3x3, plus the (projected) input."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.conv1 = _conv3x3(inplanes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv1(self.relu(self.bn1(x)))
        out = self.conv2(self.relu(self.bn2(out)))
        # as in the reference code, the shortcut projects the raw input, not the pre-activated one
        residual = x if self.downsample is None else self.downsample(x)
        return out + residual


class PreResNetBottleneck(nn.Module):
    """BN - ReLU - conv1x1 - BN - ReLU - conv3x3 - BN - ReLU - conv1x1 (x4 channels), plus the input."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, kernel_size=1, bias=False)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv1(self.relu(self.bn1(x)))
        out = self.conv2(self.relu(self.bn2(out)))
        out = self.conv3(self.relu(self.bn3(out)))
        residual = x if self.downsample is None else self.downsample(x)
        return out + residual


class PreResNet(nn.Module):
    """Pre-activation ResNet for CIFAR (PreResNet-110, PreResNet-164, ...).

    He, Zhang, Ren & Sun, "Identity Mappings in Deep Residual Networks" (ECCV 2016), in the version used by
    Izmailov et al., "Averaging Weights Leads to Wider Optima and Better Generalization" (UAI 2018), reference
    code ``timgaripov/swa`` ``models/preresnet.py`` (ported from ``bearpaw/pytorch-classification``):
    a 3x3 convolution to 16 channels, three stages of ``n`` blocks with 16, 32, 64 planes (strides 1, 2, 2;
    bottleneck blocks output 4x the planes), then BN - ReLU - global average pool - linear. With
    ``depth >= 44`` the blocks are bottlenecks and ``depth = 9n + 2``; otherwise basic blocks and
    ``depth = 6n + 2``. Convolution weights are drawn from ``N(0, 2 / n)`` with ``n = k * k * out_channels``;
    BatchNorm weights are 1 and biases 0. PreResNet-164 on CIFAR-10 has 1,703,258 parameters.

    The reference pools with ``AvgPool2d(8)``; here the pool is adaptive, which is the same for 32x32 inputs and
    also accepts smaller ones. ReLUs are not in place (same values; friendlier to ``torch.func``).

    Input: ``(N, in_channels, H, W)``, ``(N, 3, 32, 32)`` for CIFAR. Output: ``(N, num_classes)`` logits.

    Args:
        num_classes: number of outputs.
        depth: number of layers; 164 by default (the SWA paper's PreResNet-164).
        bottleneck: block type; ``None`` follows the reference rule (bottleneck iff ``depth >= 44``). Forcing
            ``True`` allows tiny bottleneck networks such as depth 11 for tests.
        width: multiplier of the 16/32/64 base channel counts (1.0 = reference).
        in_channels: channels of the input images.

    Example:
        >>> import torch
        >>> model = PreResNet(depth=8, width=0.25)
        >>> model(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        *,
        num_classes: int = 10,
        depth: int = 164,
        bottleneck: bool | None = None,
        width: float = 1.0,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        check_classes_and_channels(num_classes, in_channels)
        check_int("depth", depth, minimum=8)
        if bottleneck is not None:
            check_type("bottleneck", bottleneck, bool, "a bool or None")
        width = check_width(width)
        use_bottleneck = depth >= 44 if bottleneck is None else bottleneck
        if use_bottleneck:
            if (depth - 2) % 9 != 0:
                fail("depth", "9n + 2 for bottleneck blocks (e.g. 11, 47, 110, 164)", depth)
            n_blocks, block = (depth - 2) // 9, PreResNetBottleneck
        else:
            if (depth - 2) % 6 != 0:
                fail("depth", "6n + 2 for basic blocks (e.g. 8, 14, 20, 32)", depth)
            n_blocks, block = (depth - 2) // 6, PreResNetBasicBlock

        self.inplanes = scaled(16, width)
        self.conv1 = nn.Conv2d(in_channels, self.inplanes, kernel_size=3, padding=1, bias=False)
        self.layer1 = self._make_layer(block, scaled(16, width), n_blocks)
        self.layer2 = self._make_layer(block, scaled(32, width), n_blocks, stride=2)
        self.layer3 = self._make_layer(block, scaled(64, width), n_blocks, stride=2)
        features = scaled(64, width) * block.expansion
        self.bn = nn.BatchNorm2d(features)
        self.relu = nn.ReLU()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(features, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(
        self, block: type[PreResNetBasicBlock | PreResNetBottleneck], planes: int, blocks: int, stride: int = 1
    ) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, kernel_size=1, stride=stride, bias=False)
            )
        layers: list[nn.Module] = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers.extend(block(self.inplanes, planes) for _ in range(1, blocks))
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(x)
        x = self.layer1(x)  # 32x32 for CIFAR
        x = self.layer2(x)  # 16x16
        x = self.layer3(x)  # 8x8
        x = self.relu(self.bn(x))
        x = self.avgpool(x).flatten(1)
        return self.fc(x)
