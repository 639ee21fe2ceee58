"""VGG for CIFAR as in the SWA reference code (Izmailov et al., github.com/timgaripov/swa, ``models/vgg.py``)."""

from __future__ import annotations

import math

from torch import Tensor, nn

from .._checks import check_int, check_type, fail
from ._common import check_classes_and_channels, check_dropout, check_width, scaled

__all__ = ["VGG", "VGG_CONFIGS", "vgg16", "vgg16_bn"]

# Simonyan & Zisserman configurations A, B, D, E: output channels of 3x3 convolutions, "M" = 2x2 max-pool.
VGG_CONFIGS: dict[int, list[int | str]] = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


class VGG(nn.Module):
    """VGG-11/13/16/19 for 32x32 images, with or without batch normalization.

    Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition" (ICLR 2015), in the
    CIFAR variant used by Izmailov et al., "Averaging Weights Leads to Wider Optima and Better Generalization"
    (UAI 2018), reference code ``timgaripov/swa`` ``models/vgg.py``: 3x3 convolutions (+ BatchNorm) + ReLU with five
    2x2 max-pools, then ``Dropout - Linear(512, 512) - ReLU - Dropout - Linear(512, 512) - ReLU -
    Linear(512, num_classes)``. Convolution weights are drawn from ``N(0, 2 / n)`` with
    ``n = k * k * out_channels`` and biases are zero; linear layers keep PyTorch's default initialization.
    VGG16 on CIFAR-10 has 15,245,130 parameters. ReLUs are not in place (same values; friendlier to ``torch.func``).

    Input: ``(N, in_channels, 32, 32)`` (after five pools the feature map is 1x1, flattened to ``512 * width``
    features). Output: ``(N, num_classes)`` logits.

    Args:
        num_classes: number of outputs.
        depth: 11, 13, 16 or 19 (configurations A, B, D, E).
        batch_norm: insert BatchNorm2d after every convolution (VGG16BN).
        width: multiplier of every channel count and of the classifier's 512 hidden units (1.0 = reference);
            small values give tiny models for tests.
        in_channels: channels of the input images.
        dropout: dropout probability of the classifier (reference: 0.5).

    Example:
        >>> import torch
        >>> model = VGG(depth=11, width=0.125)
        >>> model(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        *,
        num_classes: int = 10,
        depth: int = 16,
        batch_norm: bool = False,
        width: float = 1.0,
        in_channels: int = 3,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        check_classes_and_channels(num_classes, in_channels)
        check_int("depth", depth)
        if depth not in VGG_CONFIGS:
            fail("depth", "one of " + ", ".join(map(str, VGG_CONFIGS)), depth)
        check_type("batch_norm", batch_norm, bool)
        width = check_width(width)
        dropout = check_dropout("dropout", dropout)

        layers: list[nn.Module] = []
        channels = in_channels
        for v in VGG_CONFIGS[depth]:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                continue
            out = scaled(int(v), width)
            layers.append(nn.Conv2d(channels, out, kernel_size=3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.ReLU())
            channels = out
        self.features = nn.Sequential(*layers)
        hidden = scaled(512, width)
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(channels, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)
        return self.classifier(x.flatten(1))


def vgg16(
    *, num_classes: int = 10, width: float = 1.0, in_channels: int = 3, dropout: float = 0.5, depth: int = 16
) -> VGG:
    """VGG16 without batch normalization (the SWA paper's ``VGG16``); ``depth`` may shrink it for tests."""
    return VGG(
        num_classes=num_classes, depth=depth, batch_norm=False, width=width, in_channels=in_channels, dropout=dropout
    )


def vgg16_bn(
    *, num_classes: int = 10, width: float = 1.0, in_channels: int = 3, dropout: float = 0.5, depth: int = 16
) -> VGG:
    """VGG16 with batch normalization (the SWA reference code's ``VGG16BN``)."""
    return VGG(
        num_classes=num_classes, depth=depth, batch_norm=True, width=width, in_channels=in_channels, dropout=dropout
    )
