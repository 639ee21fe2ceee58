"""The toy CNN of "Stochastic Weight Averaging Revisited" (Guo, Jin & Liu, Applied Sciences 13(5), 2023), Fig. 1."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from .._checks import check_int, fail
from ._common import check_classes_and_channels

__all__ = ["ToyCNN"]


class ToyCNN(nn.Module):
    """Conv - max-pool - conv - max-pool - flatten - fully connected - fully connected.

    The layer sequence is the toy CNN of Fig. 1 of Guo, Jin & Liu, "Stochastic Weight Averaging Revisited"
    (Applied Sciences, 2023). The figure gives the order of the layers, not their sizes; the defaults here are
    ours: 5x5 "same" convolutions with 32 and 64 channels, each followed by ReLU and a 2x2 max-pool, then a
    256-unit ReLU hidden layer and a linear output layer (about 1.1M parameters for CIFAR-10). The softmax
    belongs to the loss (``nn.CrossEntropyLoss``), so the model returns logits.

    Input: ``(N, in_channels, input_size, input_size)``, e.g. ``(N, 3, 32, 32)`` for CIFAR or
    ``(N, 1, 28, 28)`` for MNIST. Output: ``(N, num_classes)`` logits.

    Args:
        in_channels: channels of the input images.
        num_classes: number of outputs.
        widths: output channels of the two convolutions.
        hidden: units of the first fully connected layer.
        input_size: height (= width) of the input images, at least 4.
        kernel_size: odd kernel size of the convolutions (padded to keep the spatial size).

    Example:
        >>> import torch
        >>> model = ToyCNN(num_classes=10)
        >>> model(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        *,
        in_channels: int = 3,
        num_classes: int = 10,
        widths: Sequence[int] = (32, 64),
        hidden: int = 256,
        input_size: int = 32,
        kernel_size: int = 5,
    ) -> None:
        super().__init__()
        check_classes_and_channels(num_classes, in_channels)
        if not isinstance(widths, Sequence) or isinstance(widths, str) or len(widths) != 2:
            fail("widths", "a pair of channel counts", widths, exc=TypeError)
        for i, w in enumerate(widths):
            check_int(f"widths[{i}]", w, minimum=1)
        check_int("hidden", hidden, minimum=1)
        check_int("input_size", input_size, minimum=4)
        check_int("kernel_size", kernel_size, minimum=1)
        if kernel_size % 2 == 0:
            fail("kernel_size", "an odd integer", kernel_size)
        pad = kernel_size // 2
        side = input_size // 4
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], kernel_size, padding=pad),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(widths[0], widths[1], kernel_size, padding=pad),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(widths[1] * side * side, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))
