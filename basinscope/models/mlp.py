"""Small models for MNIST-1D: an MLP and the 1-D CNN of the MNIST-1D paper (Greydanus & Kobak)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from .._checks import check_int, check_type, fail
from ._common import check_dropout

__all__ = ["CNN1D", "MLP", "cnn1d_bn_dropout"]


def _check_int_tuple(name: str, value: object, *, allow_empty: bool) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,)
    if not isinstance(value, Sequence) or isinstance(value, str):
        fail(name, "a sequence of positive integers", value, exc=TypeError)
    if not value and not allow_empty:
        fail(name, "a non-empty sequence of positive integers", value)
    return tuple(check_int(f"{name}[{i}]", v, minimum=1) for i, v in enumerate(value))


class MLP(nn.Module):
    """Fully connected ReLU network: ``Linear - [BatchNorm] - ReLU - [Dropout]`` per hidden layer, then ``Linear``.

    The MNIST-1D baseline of Greydanus & Kobak, "Scaling Down Deep Learning with MNIST-1D" (ICML 2024) is this
    network with two hidden layers of 100 units (the defaults). Inputs are flattened from dimension 1 on, so
    ``(N, 40)`` and ``(N, 1, 40)`` both work.

    Input: ``(N, input_size)``. Output: ``(N, num_classes)`` logits.

    Args:
        input_size: number of input features (40 for MNIST-1D).
        hidden: widths of the hidden layers (may be empty: a linear model).
        num_classes: number of outputs.
        batch_norm: add ``BatchNorm1d`` after every hidden linear layer.
        dropout: dropout probability after every hidden activation (0 = none).

    Example:
        >>> import torch
        >>> MLP()(torch.zeros(3, 40)).shape
        torch.Size([3, 10])
    """

    def __init__(
        self,
        *,
        input_size: int = 40,
        hidden: Sequence[int] = (100, 100),
        num_classes: int = 10,
        batch_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        check_int("input_size", input_size, minimum=1)
        widths = _check_int_tuple("hidden", hidden, allow_empty=True)
        check_int("num_classes", num_classes, minimum=1)
        check_type("batch_norm", batch_norm, bool)
        dropout = check_dropout("dropout", dropout)
        layers: list[nn.Module] = [nn.Flatten()]
        previous = input_size
        for w in widths:
            layers.append(nn.Linear(previous, w))
            if batch_norm:
                layers.append(nn.BatchNorm1d(w))
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            previous = w
        layers.append(nn.Linear(previous, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class CNN1D(nn.Module):
    """The small 1-D CNN of the MNIST-1D paper: three strided ``Conv1d`` + ReLU layers, then a linear layer.

    Greydanus & Kobak, "Scaling Down Deep Learning with MNIST-1D" (ICML 2024), reference code
    ``greydanus/mnist1d`` (``ConvBase``): 25 channels, kernel sizes 5, 3, 3, stride 2, padding 1; for length-40
    inputs the feature maps have lengths 19, 10, 5, so the linear layer maps 125 features to the classes
    (5,210 parameters in all).

    With ``batch_norm`` every hidden layer becomes ``Conv1d - BatchNorm1d - ReLU`` and with ``dropout > 0`` an
    element-wise ``Dropout`` follows every hidden ReLU: the SALR paper (§VI) trains all its networks "with batch
    normalization and dropout of probability 0.5 after each layer"; ``build_model("cnn1d_bn_dropout")`` is this
    network with both (``batch_norm=True, dropout=0.5``; 5,360 parameters, 150 BatchNorm buffers of running
    statistics).

    Input: ``(N, input_length)`` (a channel dimension is added) or ``(N, 1, input_length)``.
    Output: ``(N, num_classes)`` logits.

    Args:
        input_length: length of the input sequences (40 for MNIST-1D).
        channels: channels of every convolution.
        kernel_sizes: kernel size of each convolution (one layer per entry).
        stride: stride of every convolution.
        padding: zero padding of every convolution.
        num_classes: number of outputs.
        batch_norm: add ``BatchNorm1d`` after every convolution (before its ReLU).
        dropout: element-wise dropout probability after every hidden ReLU (0 = none).

    Example:
        >>> import torch
        >>> CNN1D()(torch.zeros(3, 40)).shape
        torch.Size([3, 10])
        >>> sum(p.numel() for p in cnn1d_bn_dropout().parameters())
        5360
    """

    def __init__(
        self,
        *,
        input_length: int = 40,
        channels: int = 25,
        kernel_sizes: Sequence[int] = (5, 3, 3),
        stride: int = 2,
        padding: int = 1,
        num_classes: int = 10,
        batch_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        check_int("input_length", input_length, minimum=1)
        check_int("channels", channels, minimum=1)
        kernels = _check_int_tuple("kernel_sizes", kernel_sizes, allow_empty=False)
        check_int("stride", stride, minimum=1)
        check_int("padding", padding, minimum=0)
        check_int("num_classes", num_classes, minimum=1)
        check_type("batch_norm", batch_norm, bool)
        dropout = check_dropout("dropout", dropout)
        layers: list[nn.Module] = []
        length, previous = input_length, 1
        for k in kernels:
            layers.append(nn.Conv1d(previous, channels, k, stride=stride, padding=padding))
            if batch_norm:
                layers.append(nn.BatchNorm1d(channels))
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            length = (length + 2 * padding - k) // stride + 1
            if length < 1:
                fail("input_length", f"a length that survives kernels {kernels} with stride {stride}", input_length)
            previous = channels
        self.features = nn.Sequential(*layers)
        self.input_length = input_length
        self.linear = nn.Linear(channels * length, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim == 2:
            x = x.unsqueeze(1)
        return self.linear(self.features(x).flatten(1))


def cnn1d_bn_dropout(*, num_classes: int = 10, input_length: int = 40, channels: int = 25) -> CNN1D:
    """:class:`CNN1D` as the SALR paper trains its networks (§VI): ``BatchNorm1d`` after every convolution and
    dropout of probability 0.5 after every hidden layer.

    The paper's CIFAR networks are convolutional (All-CNN-BN, ResNets, RegNetX), so the MNIST-1D CNN with the
    paper's two additions is the closest network here; the output layer has neither (it produces the logits).

    Example:
        >>> import torch
        >>> cnn1d_bn_dropout()(torch.zeros(3, 40)).shape
        torch.Size([3, 10])
    """
    return CNN1D(input_length=input_length, channels=channels, num_classes=num_classes, batch_norm=True, dropout=0.5)
