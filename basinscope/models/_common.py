"""Argument checks shared by the model constructors."""

from __future__ import annotations

from typing import Any

from .._checks import check_int, check_positive, fail

__all__ = ["check_classes_and_channels", "check_dropout", "check_width", "scaled"]


def check_width(width: Any) -> float:
    """A channel-width multiplier: a finite number > 0."""
    return check_positive("width", width)


def scaled(channels: int, width: float) -> int:
    """``channels * width`` rounded, at least 1 (so tiny test models stay valid)."""
    return max(1, round(channels * width))


def check_dropout(name: str, p: Any) -> float:
    """A dropout probability in [0, 1)."""
    value = check_positive(name, p, allow_zero=True)
    if value >= 1:
        fail(name, "a probability in [0, 1)", p)
    return value


def check_classes_and_channels(num_classes: Any, in_channels: Any) -> None:
    check_int("num_classes", num_classes, minimum=1)
    check_int("in_channels", in_channels, minimum=1)
