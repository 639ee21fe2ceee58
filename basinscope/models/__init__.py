"""Model zoo: the networks the loss-landscape experiments are run on.

Build one by name with :func:`build_model` (``available_models()`` lists the names) or use the classes directly.
All models return logits (the softmax belongs to ``nn.CrossEntropyLoss``).

=================================  ==============================================  =========================
name                               model                                           input
=================================  ==============================================  =========================
``toy_cnn``                        :class:`ToyCNN` (SWA Revisited, Fig. 1)          ``(N, 3, 32, 32)``
``vgg16`` / ``vgg16_bn``           :class:`VGG` (SWA reference code)                ``(N, 3, 32, 32)``
``preresnet`` (``preresnet164``)   :class:`PreResNet`, depth 164                    ``(N, 3, 32, 32)``
``wide_resnet`` (``wrn28_10``)     :class:`WideResNet`, WRN-28-10                   ``(N, 3, 32, 32)``
``mlp``                            :class:`MLP`, 40-100-100-10                      ``(N, 40)``
``cnn1d``                          :class:`CNN1D` (MNIST-1D paper)                  ``(N, 40)``
``cnn1d_bn_dropout``               :class:`CNN1D` + BatchNorm + dropout 0.5         ``(N, 40)``
                                   after each hidden layer (SALR paper, §VI)
=================================  ==============================================  =========================

Example:
    >>> from basinscope.models import build_model
    >>> model = build_model("preresnet", depth=8, width=0.25, num_classes=100)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from .._checks import check_type, fail
from .mlp import CNN1D, MLP, cnn1d_bn_dropout
from .preresnet import PreResNet, PreResNetBasicBlock, PreResNetBottleneck
from .toy_cnn import ToyCNN
from .vgg import VGG, VGG_CONFIGS, vgg16, vgg16_bn
from .wide_resnet import WideBasic, WideResNet

__all__ = [
    "CNN1D",
    "MLP",
    "VGG",
    "VGG_CONFIGS",
    "PreResNet",
    "PreResNetBasicBlock",
    "PreResNetBottleneck",
    "ToyCNN",
    "WideBasic",
    "WideResNet",
    "available_models",
    "build_model",
    "cnn1d_bn_dropout",
    "vgg16",
    "vgg16_bn",
]

_REGISTRY: dict[str, Callable[..., nn.Module]] = {
    "toy_cnn": ToyCNN,
    "vgg16": vgg16,
    "vgg16_bn": vgg16_bn,
    "preresnet": PreResNet,
    "preresnet164": PreResNet,
    "wide_resnet": WideResNet,
    "wrn28_10": WideResNet,
    "mlp": MLP,
    "cnn1d": CNN1D,
    "cnn1d_bn_dropout": cnn1d_bn_dropout,
}


def available_models() -> list[str]:
    """Names accepted by :func:`build_model` (aliases included)."""
    return list(_REGISTRY)


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a zoo model by name.

    Args:
        name: one of :func:`available_models` (``"preresnet164"`` and ``"wrn28_10"`` are aliases of
            ``"preresnet"`` and ``"wide_resnet"``, whose defaults are already depth 164 and WRN-28-10).
        **kwargs: constructor arguments of that model (e.g. ``num_classes``, ``width``, ``depth``).

    Raises:
        ValueError: unknown ``name``, or an invalid argument value.
        TypeError: an argument the model does not take, or of the wrong type.

    Example:
        >>> build_model("mlp", hidden=(32,)).net[1].out_features
        32
    """
    check_type("name", name, str)
    factory = _REGISTRY.get(name)
    if factory is None:
        fail("name", "one of " + ", ".join(map(repr, _REGISTRY)), name)
    accepted = [p for p in inspect.signature(factory).parameters if p not in ("self", "args", "kwargs")]
    for key in kwargs:
        if key not in accepted:
            expected = f"an argument of model {name!r} (one of {', '.join(accepted)})"
            fail(key, expected, f"unexpected keyword {key!r}", exc=TypeError, raw=True)
    return factory(**kwargs)
