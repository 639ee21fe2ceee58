"""Wide ResNet for CIFAR as in the SWA reference code (``timgaripov/swa``, ``models/wide_resnet.py``)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_int, fail
from ._common import check_classes_and_channels, check_dropout

__all__ = ["WideBasic", "WideResNet"]


class WideBasic(nn.Module):
    """BN - ReLU - conv3x3 - dropout - BN - ReLU - conv3x3 (stride on the second), plus the (projected) input."""

    def __init__(self, in_planes: int, planes: int, dropout_rate: float, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, padding=1, bias=True)
        self.dropout = nn.Dropout(p=dropout_rate)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=True)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=True))

    def forward(self, x: Tensor) -> Tensor:
        out = self.dropout(self.conv1(F.relu(self.bn1(x))))
        out = self.conv2(F.relu(self.bn2(out)))
        return out + self.shortcut(x)


class WideResNet(nn.Module):
    """Wide residual network WRN-depth-k (WRN-28-10 by default).

    Zagoruyko & Komodakis, "Wide Residual Networks" (BMVC 2016), in the version used by Izmailov et al.,
    "Averaging Weights Leads to Wider Optima and Better Generalization" (UAI 2018), reference code
    ``timgaripov/swa`` ``models/wide_resnet.py`` (ported from ``meliketoy/wide-resnet.pytorch``): a 3x3
    convolution to 16 channels, three stages of ``n = (depth - 4) / 6`` :class:`WideBasic` blocks with
    ``16k, 32k, 64k`` channels (strides 1, 2, 2), then BN - ReLU - global average pool - linear. Convolutions have
    biases; all layers keep PyTorch's default initialization (the reference defines ``conv_init`` but does not
    apply it). WRN-28-10 on CIFAR-10 has 36,489,290 parameters.

    Faithful to the reference, the final BatchNorm has ``momentum=0.9``: in PyTorch's convention its running
    statistics are 90% the latest batch (a Torch7 port artifact), which matters when evaluating in eval mode
    without ``update_bn``. The reference pools with ``avg_pool2d(8)``; the pool here is adaptive, identical for
    32x32 inputs.

    Input: ``(N, in_channels, H, W)``, ``(N, 3, 32, 32)`` for CIFAR. Output: ``(N, num_classes)`` logits.

    Args:
        num_classes: number of outputs.
        depth: ``6n + 4`` (10, 16, 22, 28, ...).
        widen_factor: channel multiplier ``k``.
        dropout_rate: dropout between the two convolutions of a block (reference default 0).
        in_channels: channels of the input images.

    Example:
        >>> import torch
        >>> model = WideResNet(depth=10, widen_factor=1)
        >>> model(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        *,
        num_classes: int = 10,
        depth: int = 28,
        widen_factor: int = 10,
        dropout_rate: float = 0.0,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        check_classes_and_channels(num_classes, in_channels)
        check_int("depth", depth, minimum=10)
        if (depth - 4) % 6 != 0:
            fail("depth", "6n + 4 (e.g. 10, 16, 22, 28)", depth)
        check_int("widen_factor", widen_factor, minimum=1)
        dropout_rate = check_dropout("dropout_rate", dropout_rate)
        n_blocks = (depth - 4) // 6
        stages = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]

        self.in_planes = stages[0]
        self.conv1 = nn.Conv2d(in_channels, stages[0], kernel_size=3, padding=1, bias=True)
        self.layer1 = self._wide_layer(stages[1], n_blocks, dropout_rate, stride=1)
        self.layer2 = self._wide_layer(stages[2], n_blocks, dropout_rate, stride=2)
        self.layer3 = self._wide_layer(stages[3], n_blocks, dropout_rate, stride=2)
        self.bn1 = nn.BatchNorm2d(stages[3], momentum=0.9)
        self.linear = nn.Linear(stages[3], num_classes)

    def _wide_layer(self, planes: int, num_blocks: int, dropout_rate: float, stride: int) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (num_blocks - 1):
            layers.append(WideBasic(self.in_planes, planes, dropout_rate, s))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv1(x)
        out = self.layer1(out)
        out = self.layer2(out)
        out = self.layer3(out)
        out = F.relu(self.bn1(out))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)
